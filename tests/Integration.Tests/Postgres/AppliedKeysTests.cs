using Runtime;
using Runtime.InMemory;

namespace Integration.Tests.Postgres;

/// <summary>Idempotency keys of applied telemetry: written with the checkpoint, loaded with it, forgotten when old.</summary>
[Collection(PostgresCollection.Name)]
public sealed class AppliedKeysTests(PostgresServer server)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Keys_are_stored_with_the_checkpoint_and_forgotten_before_the_window_in_both_stores()
    {
        var (postgres, _) = await server.MigratedStoreAsync();
        await using var _1 = postgres;
        var memory = new InMemoryStore(TimeProvider.System);
        foreach (var store in new ICheckpointStore[] { postgres, memory })
        {
            var leases = (ILeaseStore)store;
            await leases.EnsureClusterAsync(1, None);
            var lease = await leases.TryAcquireAsync(0, "a", TimeSpan.FromMinutes(5), None);
            Assert.True(await store.CommitAsync(new Checkpoint(0, lease!.Epoch, 10, 5_000, [], [], [],
                [new AppliedKey("k1", 1_000), new AppliedKey("k2", 4_000)], long.MinValue), None));
            Assert.True(await store.CommitAsync(new Checkpoint(0, lease.Epoch, 20, 9_000, null, [], [],
                [new AppliedKey("k3", 9_000), new AppliedKey("k1", 9_000)], 2_000), None));

            var loaded = await store.LoadPartitionAsync(0, None);
            // k1 was applied at 1,000 (the later copy is not a new application) and is older than 2,000: forgotten.
            Assert.Equal([new AppliedKey("k2", 4_000), new AppliedKey("k3", 9_000)], loaded!.AppliedKeys);
        }
    }
}
