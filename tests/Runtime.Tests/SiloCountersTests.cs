using Grains.Abstractions;

namespace Runtime.Tests;

/// <summary>The load counters a silo reports in its heartbeat (readings applied, alerts opened).</summary>
public sealed class SiloCountersTests
{
    private static readonly long T0 = DateTimeOffset.Parse("2026-05-02T10:00:00Z").ToUnixTimeMilliseconds();
    private static readonly CancellationToken None = CancellationToken.None;

    private static Reading[] Readings(string prefix, int sensors, int perSensor, double value, long atMs) =>
        Enumerable.Range(0, sensors).SelectMany(s => Enumerable.Range(0, perSensor).Select(i =>
            new Reading { SensorId = $"{prefix}-{s}", TimestampMs = atMs + i * 1_000, Metrics = [new("t", value)] })).ToArray();

    [Fact]
    public async Task Counters_count_applied_readings_and_opened_alerts_skip_duplicates_and_survive_a_hand_over()
    {
        await using var cluster = await TestCluster.StartAsync(1, partitions: 4);
        var rule = new RuleDefinition
        {
            Id = "counted", Name = "Counted", Enabled = true, Severity = Severity.Minor, Version = 1,
            Target = new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "t", Operator = ComparisonOperator.Greater, Value = 100 },
        };
        await cluster.Gateway.BroadcastRuleChangeAsync(rule.Id, rule, None);

        var cold = Readings("cold", 10, 3, 1, T0);
        await cluster.Gateway.AppendTelemetryAsync(cold, "batch-1", None);
        await cluster.Gateway.AppendTelemetryAsync(cold, "batch-1", None); // a resend: skipped, not counted
        await cluster.Gateway.AppendTelemetryAsync(Readings("hot", 2, 1, 150, T0 + 40_000), None);
        await cluster.WaitForQuiescenceAsync();
        await Eventually.Until(async () => (await cluster.Store.QueryAlertsAsync(new AlertQuery(null, "counted", null, null, null, 10), None)).Count == 2,
            TimeSpan.FromSeconds(10), "two alerts opened");
        var first = cluster.Silos[0];
        Assert.Equal((32L, 2L), first.Counters());

        // A second silo joins: the first hands two partitions over, and keeps what their workers counted.
        var second = await cluster.AddSiloAsync();
        await cluster.WaitForBalanceAsync();
        Assert.Equal(2, first.OwnedPartitions.Count);
        Assert.Equal((32L, 2L), first.Counters());
        Assert.Equal((0L, 0L), second.Counters());

        var more = Readings("cold", 10, 1, 2, T0 + 50_000);
        var toFirst = more.Count(r => first.OwnedPartitions.Contains(Partitioner.PartitionOf(r.SensorId, 4)));
        await cluster.Gateway.AppendTelemetryAsync(more, None);
        await cluster.WaitForQuiescenceAsync();
        var (firstReadings, firstAlerts) = first.Counters();
        Assert.Equal((32L + toFirst, 2L), (firstReadings, firstAlerts));
        Assert.Equal((10L - toFirst, 0L), second.Counters());

        // The heartbeat carries them to the membership.
        await Eventually.Until(async () =>
        {
            var silos = await cluster.Store.SilosAsync(None);
            return silos.Sum(s => s.ReadingsApplied) == 42 && silos.Sum(s => s.AlertsOpened) == 2
                && silos.Single(s => s.SiloId == first.SiloId).ReadingsApplied == firstReadings;
        }, TimeSpan.FromSeconds(10), "the counters in the silos' heartbeats");
    }
}
