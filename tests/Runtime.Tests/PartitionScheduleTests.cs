using Grains.Abstractions;
using Runtime.Partitions;

namespace Runtime.Tests;

/// <summary>The partition's schedule of sensors whose clock must run without readings, as sensors report their progress.</summary>
public sealed class PartitionScheduleTests
{
    private static SensorProgress Progress(long applied, long? wakeAtMs) => new(applied, wakeAtMs, 1_000, 1_000, 1_000, null, null);

    private static void ReceiveUpTo(PartitionLogic logic, long timeMs) =>
        logic.Take([new LogRecord(logic.NextOffset, new TickEntry(timeMs))], 0, new PartitionBatch());

    [Fact]
    public void A_sensor_is_due_at_its_latest_wake_time_only_and_a_forgotten_sensor_not_at_all()
    {
        var logic = new PartitionLogic(0, 1, new PartitionState(), TimeSpan.FromMinutes(15));

        logic.Progress("a", Progress(1, 100_000));
        logic.Progress("b", Progress(2, 50_000));
        logic.Progress("c", Progress(3, 70_000));
        logic.Progress("a", Progress(4, 100_000)); // unchanged: still due once
        logic.Progress("b", Progress(5, 300_000)); // moved later
        logic.Progress("c", Progress(6, null)); // nothing to wait for
        logic.Progress("d", Progress(7, 80_000));
        logic.Progress("d", new SensorProgress(-1, null, long.MinValue, 0, null, null, null)); // the sensor has nothing: forgotten

        Assert.Equal(100_000, logic.NextWakeMs);
        ReceiveUpTo(logic, 99_999);
        Assert.Empty(logic.TakeDue());
        ReceiveUpTo(logic, 100_000);
        Assert.Equal(["a"], logic.TakeDue());
        Assert.Empty(logic.TakeDue());
        Assert.Equal(300_000, logic.NextWakeMs);
        ReceiveUpTo(logic, 400_000);
        Assert.Equal(["b"], logic.TakeDue());
        Assert.Null(logic.NextWakeMs);
        Assert.Equal(-1, logic.AppliedPositionOf("d"));
        Assert.Equal(6, logic.AppliedPositionOf("c"));
    }

    [Fact]
    public void Sensors_due_at_once_come_in_wake_order_and_report_no_wake_time_until_their_next_progress()
    {
        var logic = new PartitionLogic(0, 1, new PartitionState(), TimeSpan.FromMinutes(15));
        logic.Progress("z", Progress(1, 20_000));
        logic.Progress("y", Progress(2, 10_000));
        logic.Progress("x", Progress(3, 20_000));

        ReceiveUpTo(logic, 30_000);
        Assert.Equal(["y", "x", "z"], logic.TakeDue());

        // Due again at the same time as before: scheduled again, though its wake time is the one it had.
        logic.Progress("x", Progress(4, 20_000));
        Assert.Equal(["x"], logic.TakeDue());
    }

    [Fact]
    public void Sensors_due_at_once_are_taken_a_round_at_a_time_and_one_that_progresses_meanwhile_moves_to_its_next_wake()
    {
        var logic = new PartitionLogic(0, 1, new PartitionState(), TimeSpan.FromMinutes(15));
        foreach (var (sensor, i) in new[] { "a", "b", "c", "d", "e" }.Select((s, i) => (s, i)))
        {
            logic.Progress(sensor, Progress(i, 70_000 + i)); // a fleet whose minute closes at about the same time
        }

        ReceiveUpTo(logic, 80_000);
        Assert.True(logic.HasDue);
        Assert.Equal(["a", "b"], logic.TakeDue(2));
        Assert.True(logic.HasDue);
        // A reading reached "c" before its wake: its clock ran past the close, and it is due at the next one.
        logic.Progress("c", Progress(10, 130_002));
        Assert.Equal(["d", "e"], logic.TakeDue(2));
        Assert.False(logic.HasDue);
        Assert.Empty(logic.TakeDue(2));
        Assert.Equal(130_002, logic.NextWakeMs);
    }
}
