using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Runtime;
using Runtime.InMemory;
using Runtime.Postgres;

namespace Integration.Tests.Postgres;

/// <summary>Per-test databases and stores on the run's private server.</summary>
public static class PostgresTestSupport
{
    public static PostgresStore Store(string connectionString, TimeProvider? time = null, TimeSpan? retention = null) =>
        new(new PostgresOptions { ConnectionString = connectionString, AggregateRetention = retention ?? TimeSpan.FromDays(30) },
            time ?? TimeProvider.System, NullLogger<PostgresStore>.Instance);

    /// <summary>A fresh database with the schema applied, and a store on it.</summary>
    public static async Task<(PostgresStore Store, string ConnectionString)> MigratedStoreAsync(this PostgresServer server,
        TimeProvider? time = null, TimeSpan? retention = null)
    {
        var connectionString = await server.CreateDatabaseAsync();
        var store = Store(connectionString, time, retention);
        await store.MigrateAsync(CancellationToken.None);
        return (store, connectionString);
    }

    public static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    public static async Task<List<T>> ColumnAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<T>();
        while (await reader.ReadAsync())
        {
            values.Add(reader.GetFieldValue<T>(0));
        }
        return values;
    }
}

/// <summary>A clock the test sets.</summary>
public sealed class ManualTimeProvider(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>
/// A read-model store of the kind a theory names, as the silos write it (<see cref="IReadModelWriter"/>) and the Api reads
/// it (<see cref="IReadStore"/>): <see cref="Memory"/> (the embedded mode's) or <see cref="Postgres"/> (the durable mode's,
/// on a fresh database of the run's server).
/// </summary>
public sealed class StoreUnderTest : IAsyncDisposable
{
    public const string Memory = "memory";
    public const string Postgres = "postgres";

    private readonly IAsyncDisposable? _lifetime;

    private StoreUnderTest(string kind, IReadModelWriter writer, IReadStore reader, IAggregateRetention retention, IAsyncDisposable? lifetime)
    {
        Kind = kind;
        Writer = writer;
        Reader = reader;
        Retention = retention;
        _lifetime = lifetime;
    }

    public static TheoryData<string> Kinds => new() { Memory, Postgres };

    public string Kind { get; }

    public IReadModelWriter Writer { get; }

    public IReadStore Reader { get; }

    public IAggregateRetention Retention { get; }

    /// <summary>The database of a PostgreSQL store (null for the in-memory one).</summary>
    public string? ConnectionString { get; private init; }

    public static async Task<StoreUnderTest> OpenAsync(PostgresServer server, string kind, TimeProvider? time = null, TimeSpan? retention = null)
    {
        switch (kind)
        {
            case Memory:
                var memory = new InMemoryStore(time ?? TimeProvider.System, aggregateRetention: retention);
                return new StoreUnderTest(kind, memory, memory, memory, null);
            case Postgres:
                var (store, connectionString) = await server.MigratedStoreAsync(time, retention);
                return new StoreUnderTest(kind, store, store, store, store) { ConnectionString = connectionString };
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "memory or postgres");
        }
    }

    public Task WriteAsync(params GrainOutput[] outputs) => Writer.WriteAsync(outputs, CancellationToken.None);

    public ValueTask DisposeAsync() => _lifetime?.DisposeAsync() ?? ValueTask.CompletedTask;

    public override string ToString() => Kind;
}
