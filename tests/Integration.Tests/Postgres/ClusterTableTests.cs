namespace Integration.Tests.Postgres;

/// <summary>The cluster row: the partition count every Api node and silo of a cluster must share.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ClusterTableTests(PostgresServer server)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Cluster_is_created_once_and_a_different_partition_count_is_refused()
    {
        var (store, connectionString) = await server.MigratedStoreAsync();
        await using var _ = store;
        await using var other = PostgresTestSupport.Store(connectionString);

        await Task.WhenAll(store.EnsureClusterAsync(8, None), other.EnsureClusterAsync(8, None));
        await store.EnsureClusterAsync(8, None);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => other.EnsureClusterAsync(4, None));

        Assert.Equal("The cluster was created with 8 partitions; this node is configured with 4 (Silo:Partitions).", error.Message);
        Assert.Equal([8], await PostgresTestSupport.ColumnAsync<int>(connectionString, "SELECT partitions FROM cluster"));
        await other.EnsureClusterAsync(8, None);
    }

    [Fact]
    public async Task Of_nodes_starting_at_once_with_different_counts_the_first_creates_the_cluster_and_the_others_are_refused()
    {
        var (store, connectionString) = await server.MigratedStoreAsync();
        await using var _ = store;
        var nodes = Enumerable.Range(0, 6).Select(_ => PostgresTestSupport.Store(connectionString)).ToArray();
        try
        {
            var results = await Task.WhenAll(nodes.Select((node, i) => Task.Run(async () =>
            {
                try
                {
                    await node.EnsureClusterAsync(i % 2 == 0 ? 4 : 6, None);
                    return (Partitions: i % 2 == 0 ? 4 : 6, Refused: false);
                }
                catch (InvalidOperationException)
                {
                    return (Partitions: i % 2 == 0 ? 4 : 6, Refused: true);
                }
            })));

            var created = Assert.Single(await PostgresTestSupport.ColumnAsync<int>(connectionString, "SELECT partitions FROM cluster"));
            Assert.All(results, r => Assert.Equal(r.Partitions != created, r.Refused));
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_partition_count_below_one_is_refused_before_anything_is_stored()
    {
        var (store, connectionString) = await server.MigratedStoreAsync();
        await using var _ = store;

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.EnsureClusterAsync(0, None));

        Assert.Equal(0L, await PostgresTestSupport.ScalarAsync<long>(connectionString, "SELECT count(*) FROM cluster"));
    }
}
