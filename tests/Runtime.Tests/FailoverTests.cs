using System.Collections.Immutable;
using Grains.Abstractions;

namespace Runtime.Tests;

/// <summary>
/// The guarantees under failure: every reading counted exactly once in its minute aggregate and no alert opened
/// twice, across an abrupt stop (no final checkpoint, replay by the new owner) and a graceful hand-over.
/// </summary>
public sealed class FailoverTests
{
    private const int Sensors = 40;
    private const int Seconds = 180;
    private static readonly long T0 = DateTimeOffset.Parse("2026-01-05T10:00:00Z").ToUnixTimeMilliseconds();

    private static readonly RuleDefinition HotRule = new()
    {
        Id = "hot",
        Name = "Hot",
        Enabled = true,
        Severity = Severity.Major,
        Version = 1,
        Target = new RuleTarget { Kind = TargetKind.All },
        Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "temperature", Source = ConditionSource.Raw, Operator = ComparisonOperator.Greater, Value = 30 },
    };

    private static string SensorId(int s) => $"fo-{s:000}";

    /// <summary>Exactly representable values, so sums are exact whatever the grouping.</summary>
    private static double Temperature(int s, int k) => 20 + (k * 7 + s * 3) % 15 + (k % 2) * 0.5;

    private static double Humidity(int s, int k) => 40 + (k + s) % 20;

    private static Reading[] Second(int k) => Enumerable.Range(0, Sensors).Select(s => new Reading
    {
        SensorId = SensorId(s),
        TimestampMs = T0 + k * 1000L,
        Metrics = [new MetricValue("temperature", Temperature(s, k)), new MetricValue("humidity", Humidity(s, k))],
    }).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Abrupt_stop_mid_stream_loses_no_reading_and_counts_none_twice(bool deactivateAtOnce)
    {
        await using var cluster = await TestCluster.StartAsync(3, configure: o =>
        {
            if (deactivateAtOnce)
            {
                o.IdleDeactivation = TimeSpan.Zero;
            }
            if (o.SiloId == "silo-0")
            {
                // The victim never checkpoints: everything it applied must be replayed by the silos that take over.
                o.CheckpointInterval = TimeSpan.FromHours(1);
                o.CheckpointMaxRecords = 1_000_000;
            }
        });
        await cluster.Gateway.BroadcastRuleChangeAsync(HotRule.Id, HotRule, CancellationToken.None);

        await PostAsync(cluster, 0, Seconds / 2);
        var victim = cluster.Silos.Single(s => s.SiloId == "silo-0");
        await Eventually.Until(async () =>
        {
            foreach (var p in victim.OwnedPartitions)
            {
                if (victim.Worker(p)?.NextOffset != await cluster.Log.EndOffsetAsync(p, CancellationToken.None))
                {
                    return false;
                }
            }
            return true;
        }, TimeSpan.FromSeconds(20), "the victim applied all it was sent");
        var published = cluster.PublishedOf<GrainOutput>().Count;
        await cluster.KillAsync(victim);
        await PostAsync(cluster, Seconds / 2, Seconds);
        await cluster.WaitForBalanceAsync();
        await cluster.Gateway.TickAsync(T0 + 10 * 60_000, CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();

        await AssertExactAggregatesAsync(cluster);
        await AssertAlertsOpenedOnceAsync(cluster);
        // The takeover really replayed the victim's uncheckpointed work: its outputs were published again, with the same ids.
        Assert.True(published > 0);
        var ids = cluster.PublishedOf<GrainOutput>().Select(o => o.Id).ToList();
        Assert.True(ids.Count > ids.Distinct().Count(), "a replay republishes events with the ids they had");
    }

    [Fact]
    public async Task Graceful_restart_hands_over_without_replaying()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.Gateway.BroadcastRuleChangeAsync(HotRule.Id, HotRule, CancellationToken.None);

        await PostAsync(cluster, 0, Seconds / 2);
        await cluster.StopAsync(cluster.Silos[1]);
        await cluster.AddSiloAsync();
        await PostAsync(cluster, Seconds / 2, Seconds);
        await cluster.WaitForBalanceAsync();
        await cluster.Gateway.TickAsync(T0 + 10 * 60_000, CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();

        await AssertExactAggregatesAsync(cluster);
        await AssertAlertsOpenedOnceAsync(cluster);
        // A hand-over after a final checkpoint replays nothing: no live event was published twice.
        var ids = cluster.PublishedOf<GrainOutput>().Select(o => o.Id).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    private static async Task PostAsync(TestCluster cluster, int from, int to)
    {
        for (var k = from; k < to; k++)
        {
            await cluster.Gateway.AppendTelemetryAsync(Second(k), CancellationToken.None);
            if (k % 10 == 0)
            {
                await Task.Yield();
            }
        }
    }

    private static async Task AssertExactAggregatesAsync(TestCluster cluster)
    {
        for (var s = 0; s < Sensors; s++)
        {
            var stored = await cluster.Store.GetAggregatesAsync(SensorId(s), T0, T0 + 3_600_000, null, CancellationToken.None);
            Assert.Equal(Seconds / 60, stored.Count);
            for (var minute = 0; minute < Seconds / 60; minute++)
            {
                var ks = Enumerable.Range(minute * 60, 60).ToArray();
                var aggregate = stored[minute];
                Assert.Equal(T0 + minute * 60_000L, aggregate.MinuteMs);
                Assert.Equal(["humidity", "temperature"], aggregate.Metrics.Select(m => m.Metric));
                AssertMetric(ks.Select(k => Humidity(s, k)).ToArray(), aggregate.Metrics[0]);
                AssertMetric(ks.Select(k => Temperature(s, k)).ToArray(), aggregate.Metrics[1]);
            }
        }

        static void AssertMetric(double[] values, MetricAggregate actual)
        {
            Assert.Equal(values.Length, actual.Count);
            Assert.Equal(values.Min(), actual.Min);
            Assert.Equal(values.Max(), actual.Max);
            Assert.Equal(values.Sum(), actual.Sum);
            Assert.Equal(values.Sum() / values.Length, actual.Avg);
            Assert.Equal(values[0], actual.First);
            Assert.Equal(values[^1], actual.Last);
        }
    }

    private static async Task AssertAlertsOpenedOnceAsync(TestCluster cluster)
    {
        var alerts = await cluster.Store.QueryAlertsAsync(new AlertQuery(null, "hot", null, null, null, 100_000), CancellationToken.None);
        var opened = cluster.PublishedOf<AlertEvent>().Where(e => e.Kind == AlertEventKind.Opened).ToList();
        var expectedTotal = 0;
        for (var s = 0; s < Sensors; s++)
        {
            // Expected incidents: each time the raw condition starts holding, in the order the sensor sent readings.
            var expectedStarts = new List<long>();
            var holding = false;
            for (var k = 0; k < Seconds; k++)
            {
                var now = Temperature(s, k) > 30;
                if (now && !holding)
                {
                    expectedStarts.Add(T0 + k * 1000L);
                }
                holding = now;
            }
            expectedTotal += expectedStarts.Count;
            var mine = alerts.Where(a => a.SensorId == SensorId(s)).OrderBy(a => a.StartedAtMs).ToList();
            Assert.Equal(expectedStarts, mine.Select(a => a.StartedAtMs));
            Assert.Equal(mine.Select(a => AlertIds.For("hot", 1, SensorId(s), a.StartedAtMs)), mine.Select(a => a.Id));
            Assert.True(mine.Count(a => a.State == AlertState.Open) <= 1);
            // Every "opened" published for this sensor (replays included) belongs to one of those incidents.
            var openedIds = opened.Where(e => e.Alert.SensorId == SensorId(s)).Select(e => e.Alert.Id).Distinct().Order().ToList();
            Assert.Equal(mine.Select(a => a.Id).Order().ToList(), openedIds);
        }
        Assert.True(expectedTotal > Sensors, "the input must open several alerts per sensor");
    }
}
