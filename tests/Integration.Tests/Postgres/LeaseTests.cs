using Runtime;

namespace Integration.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class LeaseTests(PostgresServer server)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Cluster_is_created_once_and_a_different_partition_count_is_refused()
    {
        var (store, connectionString) = await server.MigratedStoreAsync();
        await using var _ = store;
        await using var other = PostgresTestSupport.Store(connectionString);

        await Task.WhenAll(store.EnsureClusterAsync(8, None), other.EnsureClusterAsync(8, None));
        await store.EnsureClusterAsync(8, None);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => other.EnsureClusterAsync(4, None));

        Assert.Equal("The cluster was created with 8 partitions; this silo is configured with 4.", error.Message);
        var leases = await store.LeasesAsync(None);
        Assert.Equal(Enumerable.Range(0, 8), leases.Select(l => l.Partition));
        Assert.All(leases, l => Assert.Equal((null, 0L, DateTimeOffset.MinValue), (l.Owner, l.Epoch, l.ExpiresAt)));
    }

    [Fact]
    public async Task Acquire_renew_release_follow_owner_and_epoch()
    {
        var (store, _) = await server.MigratedStoreAsync();
        await using var _1 = store;
        await store.EnsureClusterAsync(4, None);

        var a = await store.TryAcquireAsync(2, "a", Long, None);
        Assert.NotNull(a);
        Assert.Equal((2, "a", 1L), (a.Partition, a.Owner, a.Epoch));
        Assert.InRange(a.ExpiresAt - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(4), TimeSpan.FromMinutes(6));
        Assert.Null(await store.TryAcquireAsync(2, "b", Long, None));
        Assert.Null(await store.TryAcquireAsync(2, "a", Long, None));

        Assert.True(await store.RenewAsync(2, "a", 1, Long, None));
        Assert.False(await store.RenewAsync(2, "a", 2, Long, None));
        Assert.False(await store.RenewAsync(2, "b", 1, Long, None));
        Assert.False(await store.RenewAsync(3, "a", 1, Long, None));

        await store.ReleaseAsync(2, "b", 1, None);
        await store.ReleaseAsync(2, "a", 0, None);
        Assert.Equal(("a", 1L), (await store.LeasesAsync(None))[2] is var held ? (held.Owner, held.Epoch) : default);

        await store.ReleaseAsync(2, "a", 1, None);
        var released = (await store.LeasesAsync(None))[2];
        Assert.Equal(new Lease(2, null, 1, DateTimeOffset.MinValue), released);
        Assert.False(await store.RenewAsync(2, "a", 1, Long, None));

        var b = await store.TryAcquireAsync(2, "b", Long, None);
        Assert.Equal(("b", 2L), (b!.Owner, b.Epoch));
        Assert.Equal(b, (await store.LeasesAsync(None))[2]);
        Assert.Equal([0L, 0L, 2L, 0L], (await store.LeasesAsync(None)).Select(l => l.Epoch));
    }

    [Fact]
    public async Task An_expired_lease_can_be_taken_with_the_next_epoch_and_not_renewed_by_its_old_owner()
    {
        var (store, connectionString) = await server.MigratedStoreAsync();
        await using var _ = store;
        await store.EnsureClusterAsync(1, None);

        var a = await store.TryAcquireAsync(0, "a", TimeSpan.FromMilliseconds(400), None);
        Assert.Equal(1L, a!.Epoch);
        Assert.Null(await store.TryAcquireAsync(0, "b", Long, None));

        Lease? b = null;
        await Eventually.Until(async () => (b = await store.TryAcquireAsync(0, "b", Long, None)) is not null,
            TimeSpan.FromSeconds(10), "the lease expired and was taken");

        Assert.Equal(("b", 2L), (b!.Owner, b.Epoch));
        Assert.False(await store.RenewAsync(0, "a", 1, Long, None));
        Assert.True(await store.RenewAsync(0, "b", 2, Long, None));
        // Expiry is computed by the database clock.
        Assert.InRange(await PostgresTestSupport.ScalarAsync<double>(connectionString,
            "SELECT extract(epoch FROM expires_at - now())::float8 FROM leases WHERE partition = 0"), 299, 300);
    }

    [Fact]
    public async Task Only_one_of_many_concurrent_takers_gets_a_lease()
    {
        var (store, _) = await server.MigratedStoreAsync();
        await using var _1 = store;
        await store.EnsureClusterAsync(1, None);

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => store.TryAcquireAsync(0, $"s{i}", Long, None))));

        var winner = Assert.Single(results, r => r is not null);
        Assert.Equal(1L, winner!.Epoch);
        Assert.Equal(winner, (await store.LeasesAsync(None))[0]);
    }

    [Fact]
    public async Task Membership_keeps_the_latest_heartbeat_of_each_silo()
    {
        var (store, _) = await server.MigratedStoreAsync();
        await using var _1 = store;
        var started = DateTimeOffset.Parse("2026-01-05T10:00:00.123+02:00");

        await store.HeartbeatAsync(new SiloInfo("b", "http://b", started, started, new Dictionary<string, int> { ["sensor"] = 1 }), None);
        await store.HeartbeatAsync(new SiloInfo("a", "http://a", started, started.AddSeconds(1), new Dictionary<string, int>()), None);
        await store.HeartbeatAsync(new SiloInfo("b", "http://b2", started, started.AddSeconds(2), new Dictionary<string, int> { ["sensor"] = 3, ["rule"] = 1 }), None);
        var silos = await store.SilosAsync(None);
        await store.LeaveAsync("a", None);

        Assert.Equal(["a", "b"], silos.Select(s => s.SiloId));
        Assert.Equal(("http://b2", started, started.AddSeconds(2)), (silos[1].Address, silos[1].StartedAt, silos[1].LastHeartbeat));
        Assert.Equal(TimeSpan.Zero, silos[1].LastHeartbeat.Offset);
        Assert.Equal(new Dictionary<string, int> { ["sensor"] = 3, ["rule"] = 1 }, silos[1].Activations);
        Assert.Empty(silos[0].Activations);
        Assert.Equal(["b"], (await store.SilosAsync(None)).Select(s => s.SiloId));
    }

    [Fact]
    public async Task Membership_keeps_the_load_counters_of_the_latest_heartbeat()
    {
        var (store, _) = await server.MigratedStoreAsync();
        await using var _1 = store;
        var started = DateTimeOffset.Parse("2026-01-05T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var activations = new Dictionary<string, int> { ["sensor"] = 2 };

        await store.HeartbeatAsync(new SiloInfo("c", "http://c", started, started.AddSeconds(1), activations), None);
        var first = Assert.Single(await store.SilosAsync(None));
        await store.HeartbeatAsync(new SiloInfo("c", "http://c", started, started.AddSeconds(2), activations, 5_000_000_123, 17), None);
        var second = Assert.Single(await store.SilosAsync(None));

        Assert.Equal((0L, 0L), (first.ReadingsApplied, first.AlertsOpened));
        Assert.Equal((5_000_000_123L, 17L), (second.ReadingsApplied, second.AlertsOpened));
    }
}
