using Grains.Abstractions;
using Runtime.Hosting;
using StackExchange.Redis;
using Tests.Shared;

namespace Integration.Tests.Postgres;

/// <summary>
/// The grains on the durable providers: three Orleans silos write the read models to PostgreSQL and keep grain states
/// in Redis (configured as in production). One silo is killed mid-stream with work applied but not stored (rare
/// checkpoints); the others reload its partitions and grains from Redis and replay. In PostgreSQL every reading is
/// counted exactly once in its minute aggregate and every alert opened once.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class EndToEndTests(PostgresServer server)
{
    private const int Seconds = 180;
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly KnownInput Input = new("e2e", sensors: 24, seconds: Seconds);

    [Fact]
    public async Task Three_silos_on_redis_and_postgres_count_every_reading_once_and_open_every_alert_once_across_a_kill()
    {
        // Disposed in reverse order: the silos stop (writing their states and outputs) before the servers and the store go.
        await using var redis = new RedisServer();
        await redis.InitializeAsync();
        var (store, _) = await server.MigratedStoreAsync();
        await using var _1 = store;
        // Rare checkpoints until the kill: the killed silo leaves work that is applied but not stored, which the others must replay.
        await using var silos = await TestSilos.StartAsync(3, o =>
            {
                o.CheckpointInterval = TimeSpan.FromSeconds(30);
                o.CheckpointMaxRecords = 1_000_000;
            },
            writer: store,
            storage: silo => silo.AddOrleansIotRedisStorage(ConfigurationOptions.Parse(redis.ConnectionString)));
        await silos.Inbox.AppendRuleChangeAsync(KnownInput.HotRule.Id, KnownInput.HotRule, None);
        await Input.PostAsync(silos.Inbox, 0, Seconds / 2);
        await WaitAppliedAsync(silos);
        Assert.NotEmpty(silos.PublishedOf<GrainOutput>());

        var victim = silos.Cluster.Silos[1];
        var victimPartitions = (await silos.StatusesAsync()).Where(s => s?.Silo == victim.SiloAddress.ToParsableString()).ToList();
        Assert.NotEmpty(victimPartitions);
        Assert.True(victimPartitions.Any(s => s!.CommittedOffset < s.AppliedOffset), "the silo to kill has stored all it applied");
        await silos.Cluster.KillSiloAsync(victim);
        // From now on a checkpoint after every read (the silos share these options and read them as they go): the survivors
        // store their work as soon as they have read the rest of the input, instead of when the 30 s are up.
        silos.Options.CheckpointMaxRecords = 1;
        await Input.PostAsync(silos.Inbox, Seconds / 2, Seconds);
        await silos.TickAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 120_000);
        await silos.WaitForQuiescenceAsync();

        await Input.AssertExactAggregatesAsync(store);
        await Input.AssertAlertsOpenedOnceAsync(store, silos.PublishedOf<GrainOutput>());
        Assert.Equal(Enumerable.Range(0, Input.Sensors).Select(Input.SensorId),
            (await store.ListSensorsAsync(null, 0, 100, None)).Items.Select(s => s.SensorId));
        // Nothing went to the in-memory read models: PostgreSQL was the silos' writer.
        Assert.Equal(0, (await silos.Store.ListSensorsAsync(null, 0, 1, None)).Total);
        // The others really replayed the killed silo's unstored work: its outputs were published again, with the same ids.
        var ids = silos.PublishedOf<GrainOutput>().Select(o => o.Id).ToList();
        Assert.True(ids.Count > ids.Distinct().Count(), "a replay republishes events with the ids they had");
        Assert.DoesNotContain(await silos.StatusesAsync(), s => s?.Silo == victim.SiloAddress.ToParsableString());
        // The grain states are in Redis, under this cluster's service id ({ServiceId}/state/{grain id}/{state name}): every sensor's, and every partition's.
        await using var connection = await redis.ConnectAsync();
        var prefix = $"{silos.Cluster.Options.ServiceId}/state/";
        Assert.All(Enumerable.Range(0, Input.Sensors), s => Assert.True(
            connection.GetDatabase().KeyExists($"{prefix}sensor/{Input.SensorId(s)}/sensor"), $"no state of {Input.SensorId(s)} in Redis"));
        Assert.Equal(silos.Options.Partitions,
            connection.GetServer("127.0.0.1", redis.Port).Keys(pattern: $"{prefix}partition/*").Count());
    }

    /// <summary>Every partition's reader has read all that was appended (not necessarily committed it).</summary>
    private static Task WaitAppliedAsync(TestSilos silos) => Waiting.Until(async () =>
        (await silos.StatusesAsync()).All(s => s is not null && s.AppliedOffset == s.EndOffset), TimeSpan.FromSeconds(30), "every partition read to its end");
}
