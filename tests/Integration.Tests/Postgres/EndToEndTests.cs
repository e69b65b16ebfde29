using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Runtime;
using Runtime.Hosting;
using Runtime.InMemory;
using Runtime.Postgres;

namespace Integration.Tests.Postgres;

/// <summary>
/// The runtime on PostgreSQL: two silos (each with its own store, as two processes) share leases and checkpoints in
/// one database; one is killed mid-stream without ever having checkpointed, the other takes its partitions over
/// after the lease expires (database clock) and replays. Every reading is counted once and every alert opened once.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class EndToEndTests(PostgresServer server)
{
    private const int Partitions = 4;
    private const int Sensors = 12;
    private const int Seconds = 180;
    private static readonly CancellationToken None = CancellationToken.None;
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

    private static string SensorId(int s) => $"e2e-{s:00}";

    /// <summary>Exactly representable values, so sums are exact whatever the grouping.</summary>
    private static double Temperature(int s, int k) => 20 + (k * 7 + s * 3) % 15 + (k % 2) * 0.5;

    private static double Humidity(int s, int k) => 40 + (k + s) % 20;

    private static Reading[] Second(int k) => Enumerable.Range(0, Sensors).Select(s => new Reading
    {
        SensorId = SensorId(s),
        TimestampMs = T0 + k * 1000L,
        Metrics = [new MetricValue("temperature", Temperature(s, k)), new MetricValue("humidity", Humidity(s, k))],
    }).ToArray();

    [Fact]
    public async Task Two_silos_on_postgres_count_every_reading_once_and_open_every_alert_once_across_a_kill()
    {
        var connectionString = await server.CreateDatabaseAsync();
        await using var reader = PostgresTestSupport.Store(connectionString);
        await reader.MigrateAsync(None);
        await using var victimStore = PostgresTestSupport.Store(connectionString);
        await using var survivorStore = PostgresTestSupport.Store(connectionString);
        var log = new InMemoryInboxLog(Partitions);
        var live = new InMemoryLiveEvents();
        var gateway = new GrainGateway(log);
        var hosting = RuntimeServiceCollectionExtensions.CreateHosting(new SensorGrainOptions());
        var published = new List<GrainOutput>();
        using var recording = new CancellationTokenSource();
        var recorder = Task.Run(async () =>
        {
            try
            {
                await foreach (var output in live.SubscribeAsync(recording.Token))
                {
                    lock (published) published.Add(output);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        await Eventually.Until(() =>
        {
            live.Publish(new SensorSummary { SensorId = "probe", LastSeenMs = 0, Latest = [], LateCount = 0 });
            lock (published) return published.Count > 0;
        }, TimeSpan.FromSeconds(10), "the recorder subscribed");
        lock (published) published.Clear();

        // The victim never checkpoints: everything it applied must be replayed by the survivor.
        var victim = Silo("silo-0", victimStore, log, live, hosting, o =>
        {
            o.CheckpointInterval = TimeSpan.FromHours(1);
            o.CheckpointMaxRecords = 1_000_000;
        });
        var survivor = Silo("silo-1", survivorStore, log, live, hosting, _ => { });
        try
        {
            await victim.StartAsync(None);
            await survivor.StartAsync(None);
            await Eventually.Until(() => victim.OwnedPartitions.Count == 2 && survivor.OwnedPartitions.Count == 2,
                TimeSpan.FromSeconds(30), "two partitions per silo");
            var victimPartitions = victim.OwnedPartitions.ToArray();

            await gateway.BroadcastRuleChangeAsync(HotRule.Id, HotRule, None);
            await PostAsync(gateway, 0, Seconds / 2);
            await Eventually.Until(async () =>
            {
                foreach (var p in victimPartitions)
                {
                    if (victim.Worker(p)?.NextOffset != await log.EndOffsetAsync(p, None))
                    {
                        return false;
                    }
                }
                return true;
            }, TimeSpan.FromSeconds(30), "the victim applied all it was sent");
            await victim.KillAsync();
            await PostAsync(gateway, Seconds / 2, Seconds);

            await Eventually.Until(() => survivor.OwnedPartitions.Count == Partitions, TimeSpan.FromSeconds(30), "the survivor took every partition");
            await gateway.TickAsync(T0 + 10 * 60_000, None);
            var stableRounds = 0;
            await Eventually.Until(async () =>
            {
                var committed = await reader.CommittedOffsetsAsync(None);
                var done = true;
                for (var p = 0; p < Partitions; p++)
                {
                    done &= committed.GetValueOrDefault(p) == await log.EndOffsetAsync(p, None);
                }
                stableRounds = done ? stableRounds + 1 : 0;
                return stableRounds >= 3;
            }, TimeSpan.FromSeconds(40), "every partition processed and checkpointed in PostgreSQL");

            var leases = await reader.LeasesAsync(None);
            Assert.All(leases, l => Assert.Equal("silo-1", l.Owner));
            // Taken over at least once (a loaded machine may renew late and cycle a lease more than once).
            Assert.All(victimPartitions, p => Assert.True(leases[p].Epoch >= 2, $"partition {p} epoch {leases[p].Epoch}"));
            Assert.Equal(["silo-0", "silo-1"], (await reader.SilosAsync(None)).Select(s => s.SiloId));
            await AssertExactAggregatesAsync(reader);
            await AssertAlertsOpenedOnceAsync(reader, published);
            Assert.Equal(Enumerable.Range(0, Sensors).Select(SensorId), (await reader.ListSensorsAsync(null, 0, 100, None)).Items.Select(s => s.SensorId));
            // The takeover really replayed the victim's unsaved work: its outputs were published again, with the same ids.
            List<string> ids;
            lock (published) ids = published.Select(o => o.Id).ToList();
            Assert.True(ids.Count > ids.Distinct().Count(), "a replay republishes events with the ids they had");
        }
        finally
        {
            await survivor.StopAsync();
            await victim.KillAsync();
            await recording.CancelAsync();
            await recorder;
        }
        Assert.Equal(["silo-0"], (await reader.SilosAsync(None)).Select(s => s.SiloId));
        Assert.All(await reader.LeasesAsync(None), l => Assert.Null(l.Owner));
    }

    private static SiloNode Silo(string id, PostgresStore store, IInboxLog log, ILiveEvents live, GrainHosting hosting, Action<SiloOptions> configure)
    {
        var options = new SiloOptions
        {
            SiloId = id,
            Partitions = Partitions,
            LeaseDuration = TimeSpan.FromMilliseconds(1500),
            RenewInterval = TimeSpan.FromMilliseconds(200),
            CheckpointInterval = TimeSpan.FromMilliseconds(100),
            CheckpointMaxRecords = 25,
            TicksEnabled = false,
            ReadBatchSize = 16,
        };
        configure(options);
        return new SiloNode(options, log, store, store, live, hosting, TimeProvider.System, NullLoggerFactory.Instance);
    }

    private static async Task PostAsync(GrainGateway gateway, int from, int to)
    {
        for (var k = from; k < to; k++)
        {
            await gateway.AppendTelemetryAsync(Second(k), None);
        }
    }

    private static async Task AssertExactAggregatesAsync(PostgresStore store)
    {
        for (var s = 0; s < Sensors; s++)
        {
            var stored = await store.GetAggregatesAsync(SensorId(s), T0, T0 + 3_600_000, null, None);
            Assert.Equal(Enumerable.Range(0, Seconds / 60).Select(m => T0 + m * 60_000L), stored.Select(a => a.MinuteMs));
            for (var minute = 0; minute < Seconds / 60; minute++)
            {
                var ks = Enumerable.Range(minute * 60, 60).ToArray();
                var aggregate = stored[minute];
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
            Assert.Equal(values[0], actual.First);
            Assert.Equal(values[^1], actual.Last);
        }
    }

    private static async Task AssertAlertsOpenedOnceAsync(PostgresStore store, List<GrainOutput> published)
    {
        var alerts = await store.QueryAlertsAsync(new AlertQuery(null, "hot", null, null, null, 100_000), None);
        List<AlertEvent> opened;
        lock (published) opened = published.OfType<AlertEvent>().Where(e => e.Kind == AlertEventKind.Opened).ToList();
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
            // Every incident was resolved when the condition stopped holding, except one still holding at the end.
            Assert.Equal(mine.Select((_, i) => i == mine.Count - 1 && holding ? AlertState.Open : AlertState.Resolved), mine.Select(a => a.State));
            // Every "opened" published (replays included) belongs to one of those incidents.
            var openedIds = opened.Where(e => e.Alert.SensorId == SensorId(s)).Select(e => e.Alert.Id).Distinct().Order().ToList();
            Assert.Equal(mine.Select(a => a.Id).Order().ToList(), openedIds);
        }
        Assert.Equal(expectedTotal, alerts.Count);
        Assert.True(expectedTotal > Sensors, "the input must open several alerts per sensor");
    }
}
