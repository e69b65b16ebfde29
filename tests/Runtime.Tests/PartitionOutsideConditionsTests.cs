using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Runtime.Partitions;

namespace Runtime.Tests;

/// <summary>
/// A partition applies outside conditions in log order: readings before an entry close their minutes with the conditions
/// as they were (the entry ends the batch), those after it with the new ones; the conditions are part of the partition's
/// stored state, so a partition activated from it (after a move or a crash) joins the same values.
/// </summary>
public sealed class PartitionOutsideConditionsTests
{
    private const long T0 = 1_700_000_040_000;

    private static OutsideObservation Observed(long timeMs, double temperature) =>
        new() { TimestampMs = timeMs, Metrics = [new MetricValue("temperature", temperature)] };

    private static TelemetryEntry Telemetry(long timeMs) =>
        new([new Reading { SensorId = "s1", TimestampMs = timeMs, Metrics = [new MetricValue("temperature", 20)] }], null, timeMs);

    [Fact]
    public void An_entry_ends_its_batch_and_the_conditions_survive_the_stored_state()
    {
        var logic = new PartitionLogic(0, 1, new PartitionState(), TimeSpan.FromMinutes(15));
        LogRecord[] records =
        [
            new(0, Telemetry(T0)),
            new(1, new OutsideConditionsEntry("garden", [Observed(T0, 9)], T0 + 1_000)),
            new(2, Telemetry(T0 + 2_000)),
            new(3, new OutsideConditionsEntry("garden", [Observed(T0 + 2_500, 10)], T0 + 3_000)),
            new(4, new OutsideConditionsEntry("roof", [Observed(T0, -1)], T0 + 3_000)),
        ];

        var first = new PartitionBatch();
        Assert.Equal(2, logic.Take(records, 0, first));
        Assert.Same(OutsideConditions.Empty, first.Outside);
        Assert.Single(first.Sensors["s1"]);
        Assert.Equal(T0 + 1_000, first.ReceivedUpToMs);

        var second = new PartitionBatch();
        Assert.Equal(2, logic.Take(records, 2, second));
        Assert.Equal([new MetricValue("temperature", 9)], second.Outside.At("garden", T0 + 60_000, 3_600_000)!);
        Assert.Equal([new MetricValue("temperature", 10)], logic.Outside.At("garden", T0 + 60_000, 3_600_000)!);

        var third = new PartitionBatch();
        Assert.Equal(1, logic.Take(records, 4, third));
        Assert.Equal(2, logic.Outside.LocationCount);

        // Stored (with Orleans' serializer, as the partition grain's state is) and loaded by a new activation.
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        var stored = serializer.Deserialize<PartitionState>(serializer.SerializeToArray(logic.Snapshot()))!;
        var resumed = new PartitionLogic(0, 1, stored, TimeSpan.FromMinutes(15));
        Assert.Equal(5, resumed.NextOffset);
        Assert.Equal([new MetricValue("temperature", 10)], resumed.Outside.At("garden", T0 + 60_000, 3_600_000)!);
        Assert.Equal([new MetricValue("temperature", -1)], resumed.Outside.At("roof", T0 + 60_000, 3_600_000)!);
        Assert.Equal([T0, T0 + 2_500], resumed.Outside.Locations.Single(l => l.Key == "garden").Value.Select(o => o.TimestampMs));
    }

    [Fact]
    public void A_partition_keeps_the_conditions_of_at_most_1000_locations()
    {
        var logic = new PartitionLogic(0, 1, new PartitionState(), TimeSpan.FromMinutes(15));
        var records = Enumerable.Range(0, PartitionLogic.MaxOutsideLocations + 1)
            .Select(i => new LogRecord(i, new OutsideConditionsEntry($"l{i}", [Observed(T0, i)], T0)))
            .Append(new LogRecord(PartitionLogic.MaxOutsideLocations + 1, new OutsideConditionsEntry("l0", [Observed(T0 + 1, 42)], T0)))
            .ToArray();
        for (var start = 0; start < records.Length;)
        {
            start += logic.Take(records, start, new PartitionBatch());
        }

        Assert.Equal(PartitionLogic.MaxOutsideLocations, logic.Outside.LocationCount);
        Assert.Null(logic.Outside.At($"l{PartitionLogic.MaxOutsideLocations}", T0 + 1, 60_000));
        Assert.Equal([new MetricValue("temperature", 42)], logic.Outside.At("l0", T0 + 2, 60_000)!);
    }
}
