using Grains.Abstractions;
using Runtime.InMemory;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// The read models cannot be written for a while (PostgreSQL down, say): sensors that cannot store what they applied drop
/// it and reload, partitions replay from their stored positions, and once writes succeed again every reading is counted
/// exactly once. A sensor activation found behind what it reported to its partition never skips the readings between.
/// </summary>
public sealed class ReadModelOutageTests
{
    private const long Minute = 60_000;
    private static readonly long R0 = DirectWork.R0;

    /// <summary>A read-model writer that refuses every write while <see cref="Down"/> is set.</summary>
    private sealed class OutageWriter(IReadModelWriter inner) : IReadModelWriter
    {
        private int _refused;

        public volatile bool Down;

        public int Refused => Volatile.Read(ref _refused);

        public Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken)
        {
            if (Down)
            {
                Interlocked.Increment(ref _refused);
                return Task.FromException(new InvalidOperationException("the read models cannot be written (test outage)"));
            }

            return inner.WriteAsync(outputs, cancellationToken);
        }
    }

    private static Reading Reading(string sensor, long timeMs, double value) => DirectWork.Reading(sensor, timeMs, value);

    private static Task AppendAsync(TestSilos silos, long receivedAtMs, IEnumerable<Reading> readings) =>
        Task.WhenAll(readings.GroupBy(r => Partitioner.PartitionOf(r.SensorId, silos.Options.Partitions)).Select(g =>
            silos.Log.AppendAsync(g.Key, [new TelemetryEntry([.. g], null, receivedAtMs)], CancellationToken.None).AsTask()));

    private static SensorWork Work(long appliedAtLeast, string sensor, params int[] seconds) => DirectWork.Of(appliedAtLeast, sensor, seconds);

    [Fact]
    public async Task A_sensor_that_lost_what_it_applied_refuses_later_work_and_counts_everything_once_when_replayed()
    {
        var store = new InMemoryStore(TimeProvider.System);
        var writer = new OutageWriter(store);
        await using var silos = await TestSilos.StartAsync(1, writer: writer);
        // A sensor no partition feeds (the test is its partition): its readings at log offsets 1 to 6, one per second.
        var sensor = silos.Grains.GetGrain<ISensorGrain>("lost-work");
        Assert.Equal(LogPosition.Of(3, 0), (await sensor.ApplyAsync(Work(-1, "lost-work", 1, 2, 3))).AppliedPosition);
        Assert.Equal(LogPosition.Of(3, 0), await sensor.FlushAsync());
        Assert.Equal(LogPosition.Of(3, 0), await sensor.StoredAsync());
        Assert.Equal(LogPosition.Of(6, 0), (await sensor.ApplyAsync(Work(LogPosition.Of(3, 0), "lost-work", 4, 5, 6))).AppliedPosition);

        // It cannot store offsets 4 to 6: the activation drops them and the next one loads what was stored.
        writer.Down = true;
        // The wait for the flush fails, or, once the dropped activation is gone, a new one answers its stored position 3:
        // either way its partition learns that offsets 4 to 6 are not stored.
        Assert.Equal(LogPosition.Of(6, 0), await sensor.FlushAsync());
        long? stored = null;
        try
        {
            stored = await sensor.StoredAsync();
        }
        catch (InvalidOperationException e) when (e.Message.Contains("test outage", StringComparison.Ordinal) || e.Message.Contains("is reloading", StringComparison.Ordinal))
        {
        }

        Assert.True(stored is null || stored == LogPosition.Of(3, 0), $"stored {stored}");
        writer.Down = false;

        // Given offset 7 with "you applied offset 6", it refuses: applying it would skip 4 to 6 for good.
        InvalidOperationException? refused = null;
        await Waiting.Until(async () =>
        {
            try
            {
                await sensor.ApplyAsync(Work(LogPosition.Of(6, 0), "lost-work", 7));
            }
            catch (InvalidOperationException e) when (e.Message.Contains("is reloading", StringComparison.Ordinal))
            {
                return false; // the dropped activation, until Orleans has deactivated it
            }
            catch (InvalidOperationException e)
            {
                refused = e;
                return true;
            }

            throw new Xunit.Sdk.XunitException("offset 7 was applied over the lost offsets 4 to 6");
        }, TimeSpan.FromSeconds(10), "the reloaded activation answers");
        Assert.Contains($"has applied log position {LogPosition.Of(3, 0)} ", refused!.Message, StringComparison.Ordinal);

        // The partition's replay from its stored position (offset 4) is applied in full.
        Assert.Equal(LogPosition.Of(7, 0), (await sensor.ApplyAsync(Work(LogPosition.Of(3, 0), "lost-work", 4, 5, 6, 7))).AppliedPosition);
        var minute = (await sensor.GetViewAsync())!.CurrentMinute!;
        Assert.Equal(7, minute.Metrics.Single().Count);
        Assert.Equal(28, minute.Metrics.Single().Sum);
    }

    [Fact]
    public async Task Read_models_down_before_a_partition_stored_anything_it_replays_from_the_start()
    {
        // A partition that never stored a position and must replay goes back to the start of its log, not to the position
        // its memory had reached: the sensors that dropped what they applied get it all again.
        var store = new InMemoryStore(TimeProvider.System);
        var writer = new OutageWriter(store) { Down = true };
        await using var silos = await TestSilos.StartAsync(1, o => o.Partitions = 2, writer: writer);
        var sensors = Enumerable.Range(0, 8).Select(i => $"first-{i}").ToArray();
        async Task SecondAsync(int k) => await AppendAsync(silos, R0 + k * 1_000L, sensors.Select((s, i) => Reading(s, R0 + k * 1_000L, i + k)));

        for (var k = 0; k < 20; k++)
        {
            await SecondAsync(k);
        }

        await Waiting.Until(() => writer.Refused >= 2 * silos.Options.Partitions, TimeSpan.FromSeconds(10), "the first checkpoints refused");
        writer.Down = false;
        for (var k = 20; k < 60; k++)
        {
            await SecondAsync(k);
        }

        await silos.TickAsync(R0 + Minute + 30_000);
        await silos.WaitForQuiescenceAsync();
        foreach (var (sensor, i) in sensors.Select((s, i) => (s, i)))
        {
            var metric = Assert.Single(Assert.Single(await store.GetAggregatesAsync(sensor, R0, R0 + Minute, null, CancellationToken.None)).Metrics);
            Assert.Equal((60, (double)(60 * i + 1770), (double)i, (double)(i + 59)), (metric.Count, metric.Sum, metric.Min, metric.Max));
        }
    }

    [Fact]
    public async Task Read_models_down_under_load_every_reading_is_counted_exactly_once_when_they_return()
    {
        var store = new InMemoryStore(TimeProvider.System);
        var writer = new OutageWriter(store);
        await using var silos = await TestSilos.StartAsync(1, o => o.Partitions = 2, writer: writer);
        var sensors = Enumerable.Range(0, 24).Select(i => $"outage-{i:00}").ToArray();
        async Task SecondAsync(int k) => await AppendAsync(silos, R0 + k * 1_000L, sensors.Select((s, i) => Reading(s, R0 + k * 1_000L, i + k)));

        for (var k = 0; k < 20; k++)
        {
            await SecondAsync(k);
        }

        await silos.WaitForQuiescenceAsync();

        // Down for 20 s of readings: after each second appended, at least one more write is refused (checkpoints keep
        // failing and sensors keep dropping what they applied while the readers go on).
        writer.Down = true;
        for (var k = 20; k < 40; k++)
        {
            var refused = writer.Refused;
            await SecondAsync(k);
            await Waiting.Until(() => writer.Refused > refused, TimeSpan.FromSeconds(10), "a write refused");
        }

        writer.Down = false;
        for (var k = 40; k < 60; k++)
        {
            await SecondAsync(k);
        }

        // Receipt time past the minute's close (the allowed lateness is 5 s by default).
        await silos.TickAsync(R0 + Minute + 30_000);
        await silos.WaitForQuiescenceAsync();

        foreach (var (sensor, i) in sensors.Select((s, i) => (s, i)))
        {
            var minutes = await store.GetAggregatesAsync(sensor, R0, R0 + Minute, null, CancellationToken.None);
            var metric = Assert.Single(Assert.Single(minutes).Metrics);
            Assert.Equal((60, (double)(60 * i + 1770), (double)i, (double)(i + 59)), (metric.Count, metric.Sum, metric.Min, metric.Max));
            Assert.Equal(0, (await store.GetSensorAsync(sensor, CancellationToken.None))!.LateCount);
        }
    }
}
