using System.Diagnostics;
using Grains.Abstractions;
using Runtime;
using Xunit.Abstractions;

namespace Integration.Tests.Postgres;

/// <summary>
/// What silos write into the read models (<see cref="IReadModelWriter.WriteAsync"/>) and what the Api reads back, in both
/// stores with the same inputs and the same expected reads: the guards that keep a replay or a paused writer from undoing
/// newer rows (a sensor summary by its applied log position, an alert's lifecycle, a command inserted once), pending
/// commands, and large writes. Retention is PostgreSQL's only.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReadModelWriterTests(PostgresServer server, ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly long T0 = DateTimeOffset.Parse("2026-01-05T10:00:00Z").ToUnixTimeMilliseconds();

    public static TheoryData<string> Kinds => StoreUnderTest.Kinds;

    // ---- sensor summaries

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_sensor_summary_is_replaced_only_by_one_at_an_equal_or_higher_applied_position(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);

        await store.WriteAsync(Summary("s1", position: 10, temperature: 21));
        // A replay (or a paused silo) sends an older summary of s1, in the same write as s2's first one.
        await store.WriteAsync(Summary("s1", position: 5, temperature: 99), Summary("s2", position: 1, temperature: 30));
        await AssertSensorsAsync(store, Summary("s1", 10, 21), Summary("s2", 1, 30));

        // The same position again (a state flushed twice): replaces.
        await store.WriteAsync(Summary("s1", position: 10, temperature: 22));
        await AssertSensorsAsync(store, Summary("s1", 10, 22), Summary("s2", 1, 30));

        await store.WriteAsync(Summary("s2", position: 0, temperature: -1), Summary("s1", position: 11, temperature: 23));
        await AssertSensorsAsync(store, Summary("s1", 11, 23), Summary("s2", 1, 30));

        await store.WriteAsync(Summary("s2", position: 1_000_000_000_000, temperature: 31));
        await store.WriteAsync(Summary("s2", position: 999_999_999_999, temperature: 0));
        await AssertSensorsAsync(store, Summary("s1", 11, 23), Summary("s2", 1_000_000_000_000, 31));
    }

    // ---- alerts

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task An_alert_keeps_its_acknowledgement_against_a_replayed_opening_and_a_resolution_wins(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);
        var opened = Alert("a");
        var acknowledged = Acknowledged(opened);
        var resolved = Resolved(acknowledged);

        await store.WriteAsync(Event(AlertEventKind.Opened, opened));
        await AssertAlertAsync(store, opened);
        await store.WriteAsync(Event(AlertEventKind.Acknowledged, acknowledged));
        await AssertAlertAsync(store, acknowledged);

        // A replayed "opened" (the alert as it was before the acknowledgement) leaves it acknowledged.
        await store.WriteAsync(Event(AlertEventKind.Opened, opened));
        await AssertAlertAsync(store, acknowledged);

        await store.WriteAsync(Event(AlertEventKind.Resolved, resolved));
        await AssertAlertAsync(store, resolved);

        // Neither a replayed opening nor a replayed acknowledgement takes it back from resolved.
        await store.WriteAsync(Event(AlertEventKind.Opened, opened));
        await store.WriteAsync(Event(AlertEventKind.Acknowledged, acknowledged));
        await store.WriteAsync(Event(AlertEventKind.Opened, opened), Event(AlertEventKind.Acknowledged, acknowledged));
        await AssertAlertAsync(store, resolved);
        Assert.Empty(await store.Reader.QueryAlertsAsync(new AlertQuery(AlertState.Open, null, null, null, null, 100), None));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task An_alert_never_goes_back_from_resolved_to_open(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);
        var opened = Alert("b");
        var resolved = Resolved(opened);
        var other = Alert("c");

        await store.WriteAsync(Event(AlertEventKind.Opened, opened), Event(AlertEventKind.Opened, other));
        await store.WriteAsync(Event(AlertEventKind.Resolved, resolved));
        await AssertAlertAsync(store, resolved);

        await store.WriteAsync(Event(AlertEventKind.Opened, opened));
        await AssertAlertAsync(store, resolved);
        // An acknowledgement of the open alert that arrives after the resolution (a replay): still resolved, not acknowledged.
        await store.WriteAsync(Event(AlertEventKind.Acknowledged, Acknowledged(opened)));
        await AssertAlertAsync(store, resolved);

        Assert.Equal([other.Id], (await store.Reader.QueryAlertsAsync(new AlertQuery(AlertState.Open, null, null, null, null, 100), None)).Select(a => a.Id));
        Assert.Equal([resolved.Id], (await store.Reader.QueryAlertsAsync(new AlertQuery(AlertState.Resolved, null, null, null, null, 100), None)).Select(a => a.Id));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_resolution_after_an_acknowledgement_resolves_and_keeps_the_acknowledgement(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);
        var opened = Alert("d");
        var acknowledged = Acknowledged(opened);
        // Resolved from the alert as it was before the acknowledgement (no acknowledgement in it).
        var resolved = Resolved(opened);

        await store.WriteAsync(Event(AlertEventKind.Opened, opened));
        await store.WriteAsync(Event(AlertEventKind.Acknowledged, acknowledged));
        await store.WriteAsync(Event(AlertEventKind.Resolved, resolved));

        await AssertAlertAsync(store, resolved with { AcknowledgedAtMs = acknowledged.AcknowledgedAtMs, AcknowledgedBy = acknowledged.AcknowledgedBy });
    }

    // ---- commands

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_command_is_inserted_once_and_a_repeat_keeps_its_content_and_its_delivery_state(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);
        var c1 = Command("c1", "dev", T0);
        var c2 = Command("c2", "dev", T0 + 1);
        var c3 = Command("c3", "dev", T0 + 2);
        await store.WriteAsync(c1, c2);
        Assert.Equal(["c1", "c2"], (await store.Reader.TakePendingCommandsAsync("dev", None)).Select(c => c.CommandId));

        // Repeats of a delivered command (with other content, as a changed replay would have) and of a pending one.
        await store.WriteAsync(c1 with { Command = "heater", Parameters = new() { ["level"] = "9" }, CreatedAtMs = T0 + 99 }, c3);
        await store.WriteAsync(c3 with { Command = "other" }, c2 with { AlertId = "other" });

        await AssertCommandsAsync(store, "dev", (c3, false), (c2, true), (c1, true));
        Assert.Equal([c3.CommandId], (await store.Reader.TakePendingCommandsAsync("dev", None)).Select(c => c.CommandId));
        await store.WriteAsync(c3, c1, c2);
        Assert.Empty(await store.Reader.TakePendingCommandsAsync("dev", None));
        await AssertCommandsAsync(store, "dev", (c3, true), (c2, true), (c1, true));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Pending_commands_are_taken_once_oldest_first(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);

        await store.WriteAsync(Command("c2", "dev", T0 + 5), Command("c1", "dev", T0), Command("x", "other", T0), Command("c2", "dev", T0 + 9));
        await store.WriteAsync(Command("c3", "dev", T0 - 1), Command("c1", "dev", T0 + 7));

        var taken = await store.Reader.TakePendingCommandsAsync("dev", None);
        Assert.Equal([("c2", T0 + 5), ("c1", T0), ("c3", T0 - 1)], taken.Select(c => (c.CommandId, c.CreatedAtMs)));
        Assert.Equal(new Dictionary<string, string> { ["level"] = "c2" }, taken[0].Parameters);
        Assert.Empty(await store.Reader.TakePendingCommandsAsync("dev", None));

        // A replayed command already delivered stays delivered; a new one is pending.
        await store.WriteAsync(Command("c1", "dev", T0), Command("c4", "dev", T0));
        Assert.Equal(["c4"], (await store.Reader.TakePendingCommandsAsync("dev", None)).Select(c => c.CommandId));
        Assert.Empty(await store.Reader.TakePendingCommandsAsync("dev", None));
        Assert.Equal(["x"], (await store.Reader.TakePendingCommandsAsync("other", None)).Select(c => c.CommandId));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Concurrent_takers_never_get_the_same_command(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);
        await store.Writer.WriteAsync(Enumerable.Range(0, 200).Select(i => (GrainOutput)Command($"c{i:000}", "dev", T0 + i)).ToList(), None);

        var batches = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => store.Reader.TakePendingCommandsAsync("dev", None))));

        var all = batches.SelectMany(b => b).Select(c => c.CommandId).ToList();
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"c{i:000}"), all.Order(StringComparer.Ordinal));
        // Each taker got its commands in order.
        Assert.All(batches, b => Assert.Equal(b.Select(c => c.CommandId).Order(StringComparer.Ordinal), b.Select(c => c.CommandId)));
    }

    // ---- aggregates

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_minute_aggregate_is_replaced_as_a_whole(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);
        var both = Aggregate("s1", T0);
        var onlyTemperature = both with { Metrics = [both.Metrics[1] with { Count = 61 }] };

        await store.WriteAsync(both, Aggregate("s1", T0 + 60_000));
        await store.WriteAsync(onlyTemperature);

        Canonical.AssertSame("aggregates", new[] { onlyTemperature, Aggregate("s1", T0 + 60_000) },
            await store.Reader.GetAggregatesAsync("s1", T0, T0 + 120_000, null, None));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_minute_aggregate_keeps_its_outside_values_and_a_replacement_replaces_them(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);
        var joined = Aggregate("s1", T0) with { Outside = [new MetricValue("humidity", 81.5), new MetricValue("temperature", -2.25)] };
        var later = Aggregate("s1", T0 + 60_000) with { Outside = [new MetricValue("temperature", 1e15)] };

        await store.WriteAsync(joined, later, Aggregate("s2", T0));
        Canonical.AssertSame("aggregates", new[] { joined, later }, await store.Reader.GetAggregatesAsync("s1", T0, T0 + 120_000, null, None));
        // Filtered by a metric, a minute keeps its outside values.
        Canonical.AssertSame("humidity only", new[] { joined with { Metrics = [joined.Metrics[0]] }, later with { Metrics = [later.Metrics[0]] } },
            await store.Reader.GetAggregatesAsync("s1", T0, T0 + 120_000, "humidity", None));
        Canonical.AssertSame("no outside values", new[] { Aggregate("s2", T0) }, await store.Reader.GetAggregatesAsync("s2", T0, T0 + 60_000, null, None));

        // Written again (a replay of a minute whose conditions came later is not possible, but a rewrite replaces all).
        await store.WriteAsync(joined with { Outside = null });
        Canonical.AssertSame("replaced", new[] { Aggregate("s1", T0) }, await store.Reader.GetAggregatesAsync("s1", T0, T0 + 60_000, null, None));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Expired_minute_aggregates_are_deleted(string kind)
    {
        var now = DateTimeOffset.Parse("2026-03-01T00:00:00Z");
        var clock = new ManualTimeProvider(now);
        await using var store = await StoreUnderTest.OpenAsync(server, kind, clock, retention: TimeSpan.FromDays(30));
        var cutoff = (now - TimeSpan.FromDays(30)).ToUnixTimeMilliseconds();
        long[] minutes = [cutoff - 120_000, cutoff - 60_000, cutoff, cutoff + 60_000];
        await store.Writer.WriteAsync(minutes.SelectMany(m => new GrainOutput[]
        {
            Aggregate("s1", m) with { Outside = [new MetricValue("temperature", 3)] },
            Aggregate("s2", m),
        }).ToList(), None);

        Assert.Equal(8L, await store.Retention.DeleteExpiredAggregatesAsync(None)); // 2 old minutes x 2 sensors x 2 metrics
        Assert.Equal(0L, await store.Retention.DeleteExpiredAggregatesAsync(None));
        var kept = await store.Reader.GetAggregatesAsync("s1", 0, long.MaxValue, null, None);
        Assert.Equal([cutoff, cutoff + 60_000], kept.Select(a => a.MinuteMs));
        Assert.All(kept, a => Assert.Equal([new MetricValue("temperature", 3)], a.Outside!));
        if (store.ConnectionString is { } connectionString)
        {
            Assert.Equal(2, await PostgresTestSupport.ScalarAsync<long>(connectionString, "SELECT count(*) FROM minute_outside"));
        }

        clock.Now = now.AddMinutes(1);
        Assert.Equal(4L, await store.Retention.DeleteExpiredAggregatesAsync(None));
        Assert.Equal([cutoff + 60_000], (await store.Reader.GetAggregatesAsync("s2", 0, long.MaxValue, null, None)).Select(a => a.MinuteMs));
    }

    // ---- large writes

    /// <summary>Not a timed assertion: measures writes of a thousand outputs and checks that each was written whole.</summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_thousand_outputs_are_written_whole_in_one_call(string kind)
    {
        await using var store = await StoreUnderTest.OpenAsync(server, kind);
        static string Id(int i) => $"s{i:0000}";
        List<GrainOutput> Make(int round) => Enumerable.Range(0, 1000).Select(i => (i % 4) switch
        {
            0 => (GrainOutput)Aggregate(Id(i), T0 + round * 60_000L),
            1 => Summary(Id(i), position: round, temperature: round + i / 1000.0),
            2 => Event(AlertEventKind.Opened, Alert($"alert-{round}-{i}") with { SensorId = Id(i), OpenedAtMs = T0 + round }),
            _ => Command($"cmd-{round}-{i}", Id(i), T0 + round),
        }).ToList();

        await store.Writer.WriteAsync(Make(0), None); // warm-up: pool, types, plans
        var times = new List<double>();
        for (var round = 1; round <= 5; round++)
        {
            var outputs = Make(round);
            var watch = Stopwatch.StartNew();
            await store.Writer.WriteAsync(outputs, None);
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        output.WriteLine($"{kind}: write of 1000 outputs: {string.Join(", ", times.Select(t => $"{t:0.0}"))} ms; median {times.Order().ElementAt(2):0.0} ms");

        var sensors = await store.Reader.ListSensorsAsync(null, 0, 1000, None);
        Assert.Equal(250, sensors.Total);
        Canonical.AssertSame("sensors", Enumerable.Range(0, 250).Select(k => Canonical.Shown(Summary(Id(4 * k + 1), 5, 5 + (4 * k + 1) / 1000.0))),
            sensors.Items.Select(Canonical.Shown));
        var alerts = await store.Reader.QueryAlertsAsync(new AlertQuery(null, null, null, null, null, 10_000), None);
        Assert.Equal(6 * 250, alerts.Count);
        Assert.Equal(250, alerts.Count(a => a.OpenedAtMs == T0 + 5));
        for (var k = 0; k < 250; k++)
        {
            Assert.Equal(Enumerable.Range(0, 6).Select(r => T0 + r * 60_000L),
                (await store.Reader.GetAggregatesAsync(Id(4 * k), T0, T0 + 3_600_000, null, None)).Select(a => a.MinuteMs));
            Assert.Equal(Enumerable.Range(0, 6).Select(r => $"cmd-{5 - r}-{4 * k + 3}"),
                (await store.Reader.ListCommandsAsync(Id(4 * k + 3), 100, None)).Select(c => c.Command.CommandId));
        }
    }

    /// <summary>
    /// A fleet's minute close rewrites thousands of aggregates of one minute, which the planner cannot know share their
    /// minute. In benchmarks it merge-joined the keys to the table on minute_ms alone (96 s for 5,000 keys against 91,166
    /// rows), and, with statistics older than the rows (five rows a minute analyzed, then 200,000 written for one), it
    /// looked each key up through the minute index and read the whole minute per key (17 s). Each key must be looked up by
    /// the primary key, with fresh statistics or stale ones, as the statistics of the table's indexes show.
    /// </summary>
    [Fact]
    public async Task Rewriting_a_minute_close_looks_every_key_up_by_the_primary_key()
    {
        await using var store = await StoreUnderTest.OpenAsync(server, StoreUnderTest.Postgres);
        var connectionString = store.ConnectionString!;
        const int Keys = 2_000;
        async Task<(long Primary, long Minute)> ScansAsync() =>
            (await PostgresTestSupport.ScalarAsync<long>(connectionString,
                "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'minute_aggregates_pkey'"),
             await PostgresTestSupport.ScalarAsync<long>(connectionString,
                "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'minute_aggregates_minute'"));
        Task InsertAsync(int sensors, string prefix, int fromMinute, int toMinute) => PostgresTestSupport.ScalarAsync<int>(connectionString, $"""
            INSERT INTO minute_aggregates (sensor_id, minute_ms, metric, count, min, max, sum, first, last)
            SELECT '{prefix}' || lpad(s::text, 4, '0'), {T0} + m * 60000, metric, 60, 1, 2, 90, 1, 2
            FROM generate_series(0, {sensors - 1}) s, generate_series({fromMinute}, {toMinute}) m, unnest(ARRAY['humidity', 'temperature']) metric;
            SELECT 1
            """);
        async Task RewriteAsync(long minuteMs, string what)
        {
            var before = await ScansAsync();
            await store.Writer.WriteAsync(Enumerable.Range(0, Keys).Select(s => (GrainOutput)Aggregate($"s{s:0000}", minuteMs)).ToList(), None);
            var after = before;
            await global::Tests.Shared.Waiting.Until(async () => (after = await ScansAsync()).Primary >= before.Primary + Keys, TimeSpan.FromSeconds(30),
                $"{what}: the primary key scanned once per key (PostgreSQL reports a backend's statistics within seconds)");
            Assert.True(before.Minute == after.Minute, $"{what}: the minute index was scanned {after.Minute - before.Minute} times");
            Assert.Equal(1635.0, await PostgresTestSupport.ScalarAsync<double>(connectionString,
                $"SELECT sum FROM minute_aggregates WHERE sensor_id = 's1999' AND minute_ms = {minuteMs} AND metric = 'temperature'"));
        }

        // Stale statistics: a day of five sensors analyzed, then the close of a fleet of 2,000 written.
        await InsertAsync(5, "q", -1440, -1);
        await PostgresTestSupport.ScalarAsync<int>(connectionString, "ANALYZE minute_aggregates; SELECT 1");
        await InsertAsync(Keys, "s", 0, 0);
        await RewriteAsync(T0, "stale statistics");

        // Fresh statistics of 30 minutes of the fleet before the close.
        await InsertAsync(Keys, "s", -30, -1);
        await PostgresTestSupport.ScalarAsync<int>(connectionString, "ANALYZE minute_aggregates; SELECT 1");
        await RewriteAsync(T0, "fresh statistics");
        Assert.Equal(5 * 1440 * 2 + Keys * 31L * 2, await PostgresTestSupport.ScalarAsync<long>(connectionString, "SELECT count(*) FROM minute_aggregates"));
    }

    // ---- helpers

    private static async Task AssertSensorsAsync(StoreUnderTest store, params SensorSummary[] expected)
    {
        foreach (var sensor in expected)
        {
            Canonical.AssertSame($"{store}: GetSensor({sensor.SensorId})", Canonical.Shown(sensor), Canonical.Shown(await store.Reader.GetSensorAsync(sensor.SensorId, None)));
        }
        var page = await store.Reader.ListSensorsAsync(null, 0, 100, None);
        Canonical.AssertSame($"{store}: ListSensors", expected.Select(Canonical.Shown), page.Items.Select(Canonical.Shown));
        Assert.Equal(expected.Length, page.Total);
    }

    private static async Task AssertAlertAsync(StoreUnderTest store, Alert expected)
    {
        Canonical.AssertSame($"{store}: GetAlert({expected.Id})", expected, await store.Reader.GetAlertAsync(expected.Id, None));
        var listed = await store.Reader.QueryAlertsAsync(new AlertQuery(null, null, expected.SensorId, null, null, 100), None);
        Canonical.AssertSame($"{store}: QueryAlerts", expected, Assert.Single(listed, a => a.Id == expected.Id));
    }

    /// <summary>The device's command history, newest first: the commands as first written, and whether each was delivered.</summary>
    private static async Task AssertCommandsAsync(StoreUnderTest store, string deviceId, params (DeviceCommand Command, bool Delivered)[] expected)
    {
        var history = await store.Reader.ListCommandsAsync(deviceId, 100, None);
        Canonical.AssertSame($"{store}: ListCommands({deviceId})", expected.Select(e => new { e.Command, e.Delivered }),
            history.Select(c => new { c.Command, Delivered = c.DeliveredAtMs is not null }));
    }

    private static SensorSummary Summary(string sensorId, long position, double temperature) => new()
    {
        SensorId = sensorId,
        LastSeenMs = T0 + position,
        Metadata = new SensorMetadata { Location = $"room {position}", Model = "HW-MD202" },
        Latest = new() { ["temperature"] = temperature, ["humidity"] = 50 },
        Attributes = new() { ["position"] = $"{position}" },
        LateCount = position % 7,
        AppliedPosition = position,
    };

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

    private static Alert Acknowledged(Alert alert) => alert with { AcknowledgedAtMs = T0 + 10_000, AcknowledgedBy = "operator" };

    private static Alert Resolved(Alert alert) => alert with { State = AlertState.Resolved, ResolvedAtMs = T0 + 60_000, ResolvedReason = "29 <= 30" };

    private static AlertEvent Event(AlertEventKind kind, Alert alert) => new() { Kind = kind, Alert = alert };

    private static DeviceCommand Command(string id, string deviceId, long createdAtMs) => new()
    {
        CommandId = id, DeviceId = deviceId, Command = "fan", RuleId = "hot", AlertId = "alert-1", CreatedAtMs = createdAtMs,
        Parameters = new() { ["level"] = id },
    };
}
