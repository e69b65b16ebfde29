using System.Diagnostics;
using System.Text;
using Grains.Abstractions;
using Runtime;
using Xunit.Abstractions;

namespace Integration.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class CheckpointTests(PostgresServer server, ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);
    private static readonly long T0 = DateTimeOffset.Parse("2026-01-05T10:00:00Z").ToUnixTimeMilliseconds();

    [Fact]
    public async Task A_checkpoint_with_an_old_epoch_writes_nothing_and_one_with_the_current_epoch_writes_everything()
    {
        var (store, connectionString) = await server.MigratedStoreAsync();
        await using var _ = store;
        await store.EnsureClusterAsync(2, None);
        var first = await store.TryAcquireAsync(1, "a", Long, None);
        await store.ReleaseAsync(1, "a", first!.Epoch, None);
        var second = await store.TryAcquireAsync(1, "b", Long, None);
        Assert.Equal((1L, 2L), (first.Epoch, second!.Epoch));

        Assert.False(await store.CommitAsync(Checkpoint(1, epoch: 1, "stale"), None));
        Assert.False(await store.CommitAsync(Checkpoint(0, epoch: 0, "never owned"), None));
        foreach (var table in new[] { "checkpoints", "grains", "sensors", "minute_aggregates", "alerts", "commands" })
        {
            Assert.Equal(0L, await PostgresTestSupport.ScalarAsync<long>(connectionString, $"SELECT count(*) FROM {table}"));
        }

        Assert.True(await store.CommitAsync(Checkpoint(1, epoch: 2, "current"), None));
        Assert.Equal(new Dictionary<int, long> { [1] = 42 }, await store.CommittedOffsetsAsync(None));
        var checkpoint = await store.LoadPartitionAsync(1, None);
        Assert.Equal((42L, T0 + 5_000, "hot"), (checkpoint!.NextOffset, checkpoint.StreamTimeMs, Assert.Single(checkpoint.Rules).Id));
        Assert.Equal("current", Encoding.UTF8.GetString((await store.LoadGrainsAsync(1, [GrainId.Sensor("s1")], None))[GrainId.Sensor("s1")].State));
        Assert.Equal("current", (await store.GetSensorAsync("s1", None))!.Attributes!["tag"]);
        Assert.Equal(2, (await store.GetAggregatesAsync("s1", T0, T0 + 60_000, null, None)).Single().Metrics.Length);
        Assert.Equal(AlertState.Open, (await store.GetAlertAsync("alert-1", None))!.State);
        Assert.Equal(["cmd-1"], (await store.TakePendingCommandsAsync("s1", None)).Select(c => c.CommandId));

        // Released (no owner) with the same epoch: refused as well.
        await store.ReleaseAsync(1, "b", 2, None);
        Assert.False(await store.CommitAsync(Checkpoint(1, epoch: 2, "after release") with { NextOffset = 99 }, None));
        Assert.Equal(42L, (await store.LoadPartitionAsync(1, None))!.NextOffset);
    }

    [Fact]
    public async Task Grain_records_round_trip_with_wakeups_and_received_watermarks()
    {
        var (store, _) = await server.MigratedStoreAsync();
        await using var _1 = store;
        await store.EnsureClusterAsync(2, None);
        await store.TryAcquireAsync(0, "a", Long, None);
        await store.TryAcquireAsync(1, "a", Long, None);
        var s1 = GrainId.Sensor("s1");
        var s2 = GrainId.Sensor("s2");
        var r1 = GrainId.Rule("r1");
        byte[] binary = [0, 1, 2, 255, 0x7b, 0x22];
        var received = new Dictionary<int, MessageId> { [0] = new(0, 17, 2), [1] = new(1, 5, 0) };

        Assert.True(await store.CommitAsync(new Checkpoint(0, 1, 10, T0, null,
            [new(s1, "{\"v\":1}"u8.ToArray(), T0 + 60_000, null), new(s2, binary, null, null), new(r1, "{}"u8.ToArray(), T0 + 1, received)], []), None));
        Assert.True(await store.CommitAsync(new Checkpoint(1, 1, 3, T0, null, [new(GrainId.Sensor("other"), "{}"u8.ToArray(), T0, null)], []), None));

        var loaded = await store.LoadGrainsAsync(0, [s1, s2, r1, GrainId.Sensor("missing"), GrainId.Sensor("other")], None);
        Assert.Equal([r1, s1, s2], loaded.Keys.OrderBy(k => k.ToString(), StringComparer.Ordinal));
        Assert.Equal(("{\"v\":1}", (long?)(T0 + 60_000), (IReadOnlyDictionary<int, MessageId>?)null),
            (Encoding.UTF8.GetString(loaded[s1].State), loaded[s1].WakeAtMs, loaded[s1].Received));
        Assert.Equal(binary, loaded[s2].State);
        Assert.Null(loaded[s2].WakeAtMs);
        Assert.Equal(received, loaded[r1].Received);
        Assert.Equal([(r1, T0 + 1), (s1, T0 + 60_000)], await store.LoadWakeupsAsync(0, None));
        Assert.Equal([s1, s2], await store.LoadGrainIdsAsync(0, GrainTypes.Sensor, None));
        Assert.Equal([r1], await store.LoadGrainIdsAsync(0, GrainTypes.Rule, None));
        Assert.Equal([GrainId.Sensor("other")], await store.LoadGrainIdsAsync(1, GrainTypes.Sensor, None));
        Assert.Empty(await store.LoadGrainsAsync(0, [], None));

        // A later checkpoint overwrites: the wake-up fired (null now), the watermark moved, the state changed.
        var moved = new Dictionary<int, MessageId> { [0] = new(0, 20, 0) };
        Assert.True(await store.CommitAsync(new Checkpoint(0, 1, 11, T0, null, [new(r1, "{\"v\":2}"u8.ToArray(), null, moved)], []), None));
        var r1Now = (await store.LoadGrainsAsync(0, [r1], None))[r1];
        Assert.Equal(("{\"v\":2}", (long?)null), (Encoding.UTF8.GetString(r1Now.State), r1Now.WakeAtMs));
        Assert.Equal(moved, r1Now.Received);
        Assert.Equal([(s1, T0 + 60_000)], await store.LoadWakeupsAsync(0, None));
    }

    [Fact]
    public async Task Pending_commands_are_taken_once_oldest_first()
    {
        var (store, _) = await server.MigratedStoreAsync();
        await using var _1 = store;
        await store.EnsureClusterAsync(1, None);
        await store.TryAcquireAsync(0, "a", Long, None);

        Assert.True(await store.CommitAsync(new Checkpoint(0, 1, 1, T0, null, [],
            [Command("c2", "dev", T0 + 5), Command("c1", "dev", T0), Command("x", "other", T0), Command("c2", "dev", T0 + 9)]), None));
        Assert.True(await store.CommitAsync(new Checkpoint(0, 1, 2, T0, null, [], [Command("c3", "dev", T0 - 1), Command("c1", "dev", T0 + 7)]), None));

        var taken = await store.TakePendingCommandsAsync("dev", None);
        Assert.Equal([("c2", T0 + 5), ("c1", T0), ("c3", T0 - 1)], taken.Select(c => (c.CommandId, c.CreatedAtMs)));
        Assert.Equal(new Dictionary<string, string> { ["level"] = "c2" }, taken[0].Parameters);
        Assert.Empty(await store.TakePendingCommandsAsync("dev", None));

        // A replayed command already delivered stays delivered; a new one is pending.
        Assert.True(await store.CommitAsync(new Checkpoint(0, 1, 3, T0, null, [], [Command("c1", "dev", T0), Command("c4", "dev", T0)]), None));
        Assert.Equal(["c4"], (await store.TakePendingCommandsAsync("dev", None)).Select(c => c.CommandId));
        Assert.Empty(await store.TakePendingCommandsAsync("dev", None));
        Assert.Equal(["x"], (await store.TakePendingCommandsAsync("other", None)).Select(c => c.CommandId));
    }

    [Fact]
    public async Task Concurrent_takers_never_get_the_same_command()
    {
        var (store, _) = await server.MigratedStoreAsync();
        await using var _1 = store;
        await store.EnsureClusterAsync(1, None);
        await store.TryAcquireAsync(0, "a", Long, None);
        Assert.True(await store.CommitAsync(new Checkpoint(0, 1, 1, T0, null, [],
            Enumerable.Range(0, 200).Select(i => (GrainOutput)Command($"c{i:000}", "dev", T0 + i)).ToList()), None));

        var batches = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => store.TakePendingCommandsAsync("dev", None))));

        var all = batches.SelectMany(b => b).Select(c => c.CommandId).ToList();
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"c{i:000}"), all.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Expired_minute_aggregates_are_deleted()
    {
        var now = DateTimeOffset.Parse("2026-03-01T00:00:00Z");
        var clock = new ManualTimeProvider(now);
        var (store, _) = await server.MigratedStoreAsync(clock, retention: TimeSpan.FromDays(30));
        await using var _1 = store;
        await store.EnsureClusterAsync(1, None);
        await store.TryAcquireAsync(0, "a", Long, None);
        var cutoff = (now - TimeSpan.FromDays(30)).ToUnixTimeMilliseconds();
        long[] minutes = [cutoff - 120_000, cutoff - 60_000, cutoff, cutoff + 60_000];
        Assert.True(await store.CommitAsync(new Checkpoint(0, 1, 1, T0, null, [],
            minutes.SelectMany(m => new[] { Aggregate("s1", m), Aggregate("s2", m) }).ToList()), None));

        Assert.Equal(8L, await store.DeleteExpiredAggregatesAsync(None)); // 2 old minutes x 2 sensors x 2 metrics
        Assert.Equal(0L, await store.DeleteExpiredAggregatesAsync(None));
        Assert.Equal([cutoff, cutoff + 60_000], (await store.GetAggregatesAsync("s1", 0, long.MaxValue, null, None)).Select(a => a.MinuteMs));

        clock.Now = now.AddMinutes(1);
        Assert.Equal(4L, await store.DeleteExpiredAggregatesAsync(None));
        Assert.Equal([cutoff + 60_000], (await store.GetAggregatesAsync("s2", 0, long.MaxValue, null, None)).Select(a => a.MinuteMs));
    }

    /// <summary>Not a timed assertion: measures one large checkpoint and checks that all of it was written.</summary>
    [Fact]
    public async Task A_checkpoint_of_a_thousand_grains_and_a_thousand_outputs_is_written_whole()
    {
        var (store, connectionString) = await server.MigratedStoreAsync();
        await using var _ = store;
        await store.EnsureClusterAsync(1, None);
        await store.TryAcquireAsync(0, "a", Long, None);
        var state = Encoding.UTF8.GetBytes($"{{\"latest\":{{\"temperature\":21.5,\"humidity\":48}},\"windows\":{{}},\"pad\":\"{new string('x', 400)}\"}}");
        Checkpoint Make(int round) => new(0, 1, 1000 * (round + 1), T0, null,
            Enumerable.Range(0, 1000).Select(i => new GrainRecord(GrainId.Sensor($"s{i:0000}"), state, T0 + 120_000 + i,
                new Dictionary<int, MessageId> { [0] = new(0, round, i) })).ToList(),
            Enumerable.Range(0, 1000).Select(i => (i % 4) switch
            {
                0 => (GrainOutput)Aggregate($"s{i:0000}", T0 + round * 60_000L),
                1 => new SensorSummary { SensorId = $"s{i:0000}", LastSeenMs = T0 + round, Latest = new() { ["temperature"] = 21.5, ["humidity"] = 48 }, LateCount = 0 },
                2 => new AlertEvent { Kind = AlertEventKind.Opened, Alert = Alert($"alert-{round}-{i}") },
                _ => Command($"cmd-{round}-{i}", $"s{i:0000}", T0 + i),
            }).ToList());

        Assert.True(await store.CommitAsync(Make(0), None)); // warm-up: pool, types, plans
        var times = new List<double>();
        for (var round = 1; round <= 5; round++)
        {
            var checkpoint = Make(round);
            var watch = Stopwatch.StartNew();
            Assert.True(await store.CommitAsync(checkpoint, None));
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        output.WriteLine($"commit of 1000 grain records + 1000 outputs: {string.Join(", ", times.Select(t => $"{t:0.0}"))} ms; median {times.Order().ElementAt(2):0.0} ms");

        Assert.Equal(1000L, await PostgresTestSupport.ScalarAsync<long>(connectionString, "SELECT count(*) FROM grains"));
        Assert.Equal(6 * 250 * 2L, await PostgresTestSupport.ScalarAsync<long>(connectionString, "SELECT count(*) FROM minute_aggregates"));
        Assert.Equal(250L, await PostgresTestSupport.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sensors"));
        Assert.Equal(6 * 250L, await PostgresTestSupport.ScalarAsync<long>(connectionString, "SELECT count(*) FROM alerts"));
        Assert.Equal(6 * 250L, await PostgresTestSupport.ScalarAsync<long>(connectionString, "SELECT count(*) FROM commands"));
        Assert.Equal(1000, (await store.LoadWakeupsAsync(0, None)).Count);
        Assert.Equal(new MessageId(0, 5, 7), (await store.LoadGrainsAsync(0, [GrainId.Sensor("s0007")], None)).Single().Value.Received![0]);
    }

    private static Checkpoint Checkpoint(int partition, long epoch, string tag) => new(partition, epoch, 42, T0 + 5_000,
        [new RuleDefinition
        {
            Id = "hot", Name = "Hot", Enabled = true, Severity = Severity.Major, Version = 1,
            Target = new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "temperature", Operator = ComparisonOperator.Greater, Value = 30 },
        }],
        [new GrainRecord(GrainId.Sensor("s1"), Encoding.UTF8.GetBytes(tag), T0 + 60_000, null)],
        [
            new SensorSummary { SensorId = "s1", LastSeenMs = T0, Latest = new() { ["temperature"] = 31 }, Attributes = new() { ["tag"] = tag }, LateCount = 0 },
            Aggregate("s1", T0),
            new AlertEvent { Kind = AlertEventKind.Opened, Alert = Alert("alert-1") },
            Command("cmd-1", "s1", T0),
        ]);

    private static MinuteAggregate Aggregate(string sensorId, long minuteMs) => new()
    {
        SensorId = sensorId,
        MinuteMs = minuteMs,
        Metrics =
        [
            new MetricAggregate { Metric = "humidity", Count = 60, Min = 40, Max = 59, Sum = 2970, First = 40, Last = 59 },
            new MetricAggregate { Metric = "temperature", Count = 60, Min = 20, Max = 34.5, Sum = 1635, First = 20, Last = 34.5 },
        ],
    };

    private static Alert Alert(string id) => new()
    {
        Id = id, RuleId = "hot", RuleName = "Hot", RuleVersion = 1, SensorId = "s1", Severity = Severity.Major, State = AlertState.Open,
        StartedAtMs = T0, OpenedAtMs = T0, Value = 31, Threshold = 30, Message = "31 > 30",
    };

    private static DeviceCommand Command(string id, string deviceId, long createdAtMs) => new()
    {
        CommandId = id, DeviceId = deviceId, Command = "fan", RuleId = "hot", AlertId = "alert-1", CreatedAtMs = createdAtMs,
        Parameters = new() { ["level"] = id },
    };
}
