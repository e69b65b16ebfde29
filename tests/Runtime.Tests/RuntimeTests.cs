using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Runtime.Hosting;
using Runtime.InMemory;

namespace Runtime.Tests;

public sealed class RuntimeTests
{
    private static readonly long T0 = DateTimeOffset.Parse("2026-02-01T08:00:00Z").ToUnixTimeMilliseconds();

    [Theory]
    [InlineData("AAAA", 8, 1)]
    [InlineData("sensor-1", 8, 1)]
    [InlineData("comuna_15", 16, 15)]
    [InlineData("hot", 8, 4)]
    // Values from an independent FNV-1a 32 computation: the partition of a key must never change between versions.
    public void Partition_of_a_key_is_fixed(string key, int partitions, int expected)
    {
        Assert.Equal(expected, Partitioner.PartitionOf(key, partitions));
    }

    [Fact]
    public void Partitions_spread_keys_evenly()
    {
        var counts = new int[8];
        for (var i = 0; i < 8000; i++)
        {
            counts[Partitioner.PartitionOf($"sensor-{i}", 8)]++;
        }
        Assert.All(counts, c => Assert.InRange(c, 850, 1150));
    }

    [Fact]
    public async Task A_checkpoint_with_an_old_epoch_is_refused_and_the_worker_stops()
    {
        var time = new ManualTime(DateTimeOffset.Parse("2026-03-01T00:00:00Z"));
        var store = new InMemoryStore(time);
        var log = new InMemoryInboxLog(1);
        await store.EnsureClusterAsync(1, CancellationToken.None);
        var options = TestCluster.DefaultOptions(1);
        var hosting = RuntimeServiceCollectionExtensions.CreateHosting(new());

        var old = await store.TryAcquireAsync(0, "old", TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Equal(1, old!.Epoch);
        var worker = new PartitionWorker(0, old.Epoch, options, log, store, new InMemoryLiveEvents(), hosting, time, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var run = worker.RunAsync(() => false, stop.Token);

        // The old owner pauses past its lease; another silo takes the partition with a higher epoch.
        time.Advance(TimeSpan.FromSeconds(6));
        var taken = await store.TryAcquireAsync(0, "new", TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Equal(2, taken!.Epoch);

        // The old owner resumes and processes a reading: its checkpoint is fenced off.
        await log.AppendAsync(0, [new TelemetryEntry([new Reading { SensorId = "s", TimestampMs = T0, Metrics = [new("t", 1)] }])], CancellationToken.None);
        var fenced = await Assert.ThrowsAsync<PartitionFencedException>(() => run);
        Assert.Contains("epoch 1 refused", fenced.Message);
        Assert.Null(await store.LoadPartitionAsync(0, CancellationToken.None));
        Assert.Empty(await store.LoadGrainsAsync(0, [GrainId.Sensor("s")], CancellationToken.None));
    }

    [Fact]
    public async Task A_replayed_grain_to_grain_message_is_applied_once()
    {
        await using var cluster = await TestCluster.StartAsync(1, partitions: 2);
        var rule = new RuleDefinition
        {
            Id = "dedup", Name = "Dedup", Enabled = true, Severity = Severity.Minor, Version = 1,
            Target = new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "t", Operator = ComparisonOperator.Greater, Value = 0 },
        };
        await cluster.Gateway.BroadcastRuleChangeAsync(rule.Id, rule, CancellationToken.None);
        var target = Partitioner.PartitionOf(rule.Id, 2);
        MessageEntry Signal(long offset, bool holding, long at) => new(GrainId.Rule("dedup"),
            new ConditionSignal { RuleId = "dedup", RuleVersion = 1, SensorId = "x", Holding = holding, EventTimeMs = at, Message = "m" },
            new MessageId(1 - target, offset, 0));

        await cluster.Log.AppendAsync(target, [Signal(5, true, T0), Signal(6, false, T0 + 1000), Signal(7, true, T0 + 2000)], CancellationToken.None);
        // The sender replays after a crash: its message from offset 6 arrives again and must not resolve the new alert.
        await cluster.Log.AppendAsync(target, [Signal(6, false, T0 + 1000)], CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();

        var alerts = await cluster.Store.QueryAlertsAsync(new AlertQuery(null, "dedup", null, null, null, 10), CancellationToken.None);
        Assert.Equal([(T0 + 2000, AlertState.Open), (T0, AlertState.Resolved)], alerts.Select(a => (a.StartedAtMs, a.State)));
    }

    [Fact]
    public async Task An_offline_rule_created_while_a_sensor_is_silent_fires_for_it()
    {
        await using var cluster = await TestCluster.StartAsync(2, partitions: 4, configure: o => o.IdleDeactivation = TimeSpan.Zero);
        await cluster.Gateway.AppendTelemetryAsync([new Reading { SensorId = "quiet", TimestampMs = T0, Metrics = [new("t", 1)] }], CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();
        Assert.All(cluster.Silos, s => Assert.Equal(0, s.ActivationCounts()[GrainTypes.Sensor]));

        var rule = new RuleDefinition
        {
            Id = "silent", Name = "Silent", Enabled = true, Severity = Severity.Critical, Version = 1,
            Target = new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition { Kind = ConditionKind.Offline, Minutes = 2 },
        };
        await cluster.Gateway.BroadcastRuleChangeAsync(rule.Id, rule, CancellationToken.None);
        await cluster.Gateway.TickAsync(T0 + 3 * 60_000, CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();

        var alert = Assert.Single(await cluster.Store.QueryAlertsAsync(new AlertQuery(null, "silent", null, null, null, 10), CancellationToken.None));
        Assert.Equal(("quiet", AlertState.Open, T0 + 2 * 60_000, "no data for 2 min"), (alert.SensorId, alert.State, alert.StartedAtMs, alert.Message));

        await cluster.Gateway.AppendTelemetryAsync([new Reading { SensorId = "quiet", TimestampMs = T0 + 3 * 60_000 + 1_000, Metrics = [new("t", 2)] }], CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();
        alert = Assert.Single(await cluster.Store.QueryAlertsAsync(new AlertQuery(null, "silent", null, null, null, 10), CancellationToken.None));
        Assert.Equal((AlertState.Resolved, T0 + 3 * 60_000 + 1_000), (alert.State, alert.ResolvedAtMs));
    }

    [Fact]
    public async Task An_idle_partition_gets_a_tick_that_closes_its_windows()
    {
        await using var cluster = await TestCluster.StartAsync(1, partitions: 1, grains: new() { AllowedLatenessMs = 0 }, configure: o =>
        {
            o.TicksEnabled = true;
            o.TickInterval = TimeSpan.FromMilliseconds(50);
        });
        var minuteAgo = DateTimeOffset.UtcNow.AddMinutes(-2).ToUnixTimeMilliseconds() / 60_000 * 60_000;
        await cluster.Gateway.AppendTelemetryAsync([new Reading { SensorId = "idle", TimestampMs = minuteAgo + 5_000, Metrics = [new("t", 7)] }], CancellationToken.None);

        await Eventually.Until(() => cluster.PublishedOf<MinuteAggregate>().Count == 1, TimeSpan.FromSeconds(10), "the minute closed by a tick");
        var closed = cluster.PublishedOf<MinuteAggregate>().Single();
        Assert.Equal(("idle", minuteAgo, 1L, 7.0), (closed.SensorId, closed.MinuteMs, closed.Metrics[0].Count, closed.Metrics[0].Sum));
    }

    [Fact]
    public async Task A_new_silo_takes_its_share_and_a_killed_one_is_taken_over_within_the_lease_time()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        Assert.All(cluster.Silos, s => Assert.Equal(4, s.OwnedPartitions.Count));

        await cluster.AddSiloAsync();
        await cluster.WaitForBalanceAsync();
        Assert.Equal([3, 3, 2], cluster.Silos.Select(s => s.OwnedPartitions.Count).OrderDescending());

        var victim = cluster.Silos[0];
        var orphaned = victim.OwnedPartitions.ToArray();
        var killedAt = DateTime.UtcNow;
        await cluster.KillAsync(victim);
        await Eventually.Until(() => orphaned.All(p => cluster.Silos.Any(s => s.OwnedPartitions.Contains(p))),
            TimeSpan.FromSeconds(10), "orphaned partitions taken over");
        var takeover = DateTime.UtcNow - killedAt;
        // Lease 1.5 s, membership checks every 0.2 s: well within lease time plus 2 s.
        Assert.True(takeover < TimeSpan.FromSeconds(3.5), $"takeover took {takeover.TotalSeconds:0.00} s");
        await cluster.WaitForBalanceAsync();
    }
}

/// <summary>A clock that moves only when told to.</summary>
public sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

public sealed class IdempotencyTests
{
    private static readonly long T0 = DateTimeOffset.Parse("2026-05-01T09:00:00Z").ToUnixTimeMilliseconds();

    [Fact]
    public async Task Telemetry_resent_with_its_key_is_counted_once_even_after_a_takeover()
    {
        await using var cluster = await TestCluster.StartAsync(1, partitions: 1);
        Reading[] Readings(double v) => [new Reading { SensorId = "idem", TimestampMs = T0 + 1_000, Metrics = [new("t", v)] }];

        await cluster.Gateway.AppendTelemetryAsync(Readings(1), "request-1", CancellationToken.None);
        await cluster.Gateway.AppendTelemetryAsync(Readings(1), "request-1", CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();
        // A new owner must know the key from the checkpoint, not from memory.
        await cluster.KillAsync(cluster.Silos[0]);
        await cluster.AddSiloAsync();
        await cluster.Gateway.AppendTelemetryAsync(Readings(1), "request-1", CancellationToken.None);
        await cluster.Gateway.AppendTelemetryAsync(Readings(2), "request-2", CancellationToken.None);
        await cluster.Gateway.AppendTelemetryAsync(Readings(4), null, CancellationToken.None);
        await cluster.Gateway.TickAsync(T0 + 5 * 60_000, CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();

        var minute = Assert.Single(await cluster.Store.GetAggregatesAsync("idem", T0, T0 + 60_000, null, CancellationToken.None));
        Assert.Equal((3L, 7.0), (minute.Metrics[0].Count, minute.Metrics[0].Sum));
    }
}
