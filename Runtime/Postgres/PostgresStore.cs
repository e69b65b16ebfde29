using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using Runtime.Outputs;

namespace Runtime.Postgres;

/// <summary>Thrown when the PostgreSQL server cannot be reached; the message names the server, never the password.</summary>
public sealed class PostgresUnavailableException(string message, Exception inner) : Exception(message, inner)
{
    /// <summary>
    /// True when <paramref name="exception"/> means that the server cannot be used now, so that the request may be
    /// retried later: no connection could be opened, or an open one was lost (the server shutting down or restarting:
    /// 57P01-57P03, a connection exception: class 08, too many connections: 53300; an I/O error or timeout).
    /// </summary>
    public static bool IsUnavailable(Exception exception) => exception switch
    {
        PostgresUnavailableException => true,
        PostgresException e => e.SqlState.StartsWith("08", StringComparison.Ordinal) || e.SqlState is "57P01" or "57P02" or "57P03" or "53300",
        NpgsqlException e => e.IsTransient,
        _ => false,
    };
}

/// <summary>
/// The PostgreSQL store: rules and the read models (sensors, minute aggregates, alerts, commands), with the semantics of
/// <see cref="InMemory.InMemoryStore"/>. Call <see cref="MigrateAsync"/> once at start; it is safe when several processes
/// start at once.
/// </summary>
public sealed partial class PostgresStore : IReadModelWriter, IReadStore, IRuleStore, IAggregateRetention, IAsyncDisposable
{
    private readonly PostgresOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<PostgresStore> _logger;
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _server;

    /// <summary>The output streams whose outputs the writer queues in the outbox (<see cref="OutputOptions.Streams"/>).</summary>
    private readonly IReadOnlyList<OutputStream> _outputStreams;

    /// <param name="outputStreams">The output streams kept; all when null.</param>
    public PostgresStore(PostgresOptions options, TimeProvider time, ILogger<PostgresStore> logger, IReadOnlyList<OutputStream>? outputStreams = null)
    {
        var validation = new PostgresOptionsValidator().Validate(null, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(nameof(PostgresOptions), typeof(PostgresOptions), validation.Failures);
        }
        _options = options;
        _time = time;
        _logger = logger;
        _outputStreams = outputStreams ?? OutputMessages.Streams;
        var builder = new NpgsqlConnectionStringBuilder(options.ConnectionString);
        _server = $"PostgreSQL server {builder.Host}:{builder.Port}, database '{builder.Database ?? builder.Username ?? "(default)"}'"
            + (builder.Username is { Length: > 0 } user ? $", user '{user}'" : "");
        _dataSource = NpgsqlDataSource.Create(builder);
    }

    /// <summary>Applies the schema scripts not applied yet, in order, in one transaction serialized by an advisory lock.</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction))
        {
            command.Parameters.Add(P(PostgresMigrations.AdvisoryLockKey));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await using (var command = new NpgsqlCommand(PostgresMigrations.CreateMigrationsTable, connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        var applied = new HashSet<int>();
        await using (var command = new NpgsqlCommand("SELECT version FROM schema_migrations", connection, transaction))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                applied.Add(reader.GetInt32(0));
            }
        }
        var count = 0;
        foreach (var (version, name, sql) in PostgresMigrations.All)
        {
            if (applied.Contains(version))
            {
                continue;
            }
            await using (var script = new NpgsqlCommand(sql, connection, transaction))
            {
                await script.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await using (var record = new NpgsqlCommand("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", connection, transaction))
            {
                record.Parameters.Add(P(version));
                record.Parameters.Add(P(name));
                await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            LogMigrationApplied(_logger, version, name);
            count++;
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        if (count == 0)
        {
            LogSchemaCurrent(_logger, PostgresMigrations.All[^1].Version);
        }
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    /// <summary>Opens a pooled connection; a server that cannot be reached gives an error naming it (not its password).</summary>
    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            throw new PostgresUnavailableException($"Cannot connect to the {_server}: {e.Message}", e);
        }
    }

    private async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken, params NpgsqlParameter[] parameters)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddRange(parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<List<T>> QueryAsync<T>(string sql, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken,
        params NpgsqlParameter[] parameters)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddRange(parameters);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add(read(reader));
        }
        return rows;
    }

    private static NpgsqlParameter<T> P<T>(T value) => new() { TypedValue = value };

    private static NpgsqlParameter<T> P<T>(T value, NpgsqlDbType type) => new() { TypedValue = value, NpgsqlDbType = type };

    private static NpgsqlParameter<string?> Jsonb(string? json) => P(json, NpgsqlDbType.Jsonb);

    private static NpgsqlParameter<string?[]> JsonbArray(string?[] json) => P(json, NpgsqlDbType.Array | NpgsqlDbType.Jsonb);

    private static T? GetNullable<T>(NpgsqlDataReader reader, int ordinal) where T : struct =>
        reader.IsDBNull(ordinal) ? null : reader.GetFieldValue<T>(ordinal);

    private static string? GetNullableString(NpgsqlDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    [LoggerMessage(Level = LogLevel.Information, Message = "PostgreSQL schema migration {Version} applied: {Name}")]
    private static partial void LogMigrationApplied(ILogger logger, int version, string name);

    [LoggerMessage(Level = LogLevel.Debug, Message = "PostgreSQL schema is current (version {Version})")]
    private static partial void LogSchemaCurrent(ILogger logger, int version);
}
