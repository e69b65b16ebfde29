using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Runtime;
using Runtime.Hosting;
using Runtime.InMemory;
using Runtime.Postgres;
using Tests.Shared;

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
    private const int Seconds = 180;
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly KnownInput Input = new("e2e", sensors: 12, seconds: Seconds);
    private static readonly RuleDefinition HotRule = KnownInput.HotRule;
    private static readonly long T0 = KnownInput.T0;

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
            await Input.PostAsync(gateway, 0, Seconds / 2);
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
            await Input.PostAsync(gateway, Seconds / 2, Seconds);

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
            await Input.AssertExactAggregatesAsync(reader);
            List<GrainOutput> outputs;
            lock (published) outputs = published.ToList();
            await Input.AssertAlertsOpenedOnceAsync(reader, outputs);
            Assert.Equal(Enumerable.Range(0, Input.Sensors).Select(Input.SensorId), (await reader.ListSensorsAsync(null, 0, 100, None)).Items.Select(s => s.SensorId));
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
}
