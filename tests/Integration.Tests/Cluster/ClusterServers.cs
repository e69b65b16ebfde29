using Integration.Tests.RabbitMq;

namespace Integration.Tests.Cluster;

/// <summary>
/// The private PostgreSQL, RabbitMQ and Redis servers of the process-level cluster tests, shared by them (each test
/// takes a fresh database, stream prefix and Orleans cluster and service id). They are not the servers of the
/// PostgreSQL, RabbitMQ and Redis collections: these tests stop and restart them, which must not disturb tests running
/// in parallel.
/// </summary>
public sealed class ClusterServers : IAsyncLifetime
{
    public PostgresServer Postgres { get; } = new();

    public RabbitMqServer RabbitMq { get; } = new();

    public RedisServer Redis { get; } = new();

    public Task InitializeAsync() => Task.WhenAll(Postgres.InitializeAsync(), RabbitMq.InitializeAsync(), Redis.InitializeAsync());

    public async Task DisposeAsync()
    {
        try
        {
            await RabbitMq.DisposeAsync();
        }
        finally
        {
            try
            {
                await Redis.DisposeAsync();
            }
            finally
            {
                await Postgres.DisposeAsync();
            }
        }
    }
}

/// <summary>
/// Runs alone, after the parallel collections: four .NET processes and two servers under load would starve the
/// timing-sensitive tests of other collections on a small machine, and would be starved by them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection : ICollectionFixture<ClusterServers>
{
    public const string Name = "Cluster processes";
}
