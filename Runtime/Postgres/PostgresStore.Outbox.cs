using System.Net.Sockets;
using Grains.Abstractions;
using Npgsql;
using Runtime.Outputs;

namespace Runtime.Postgres;

public sealed partial class PostgresStore
{
    /// <summary>Key of the session advisory lock the output relay holds ("OIotRely").</summary>
    private const long OutputRelayLockKey = 0x4F49_6F74_5265_6C79;

    /// <summary>
    /// Queues the outputs of the streams kept in the outbox, in the read models' transaction: a row per (stream, id), so
    /// an output a replay writes again is not queued again (within <see cref="OutputOptions.DedupeWindow"/>).
    /// </summary>
    private static void AddOutbox(NpgsqlBatch batch, IReadOnlyList<GrainOutput> outputs, IReadOnlyList<OutputStream> kept)
    {
        var messages = OutputMessages.Of(outputs, kept);
        if (messages.Count == 0)
        {
            return;
        }
        var streams = new short[messages.Count];
        var ids = new string[messages.Count];
        var types = new string[messages.Count];
        var bodies = new byte[messages.Count][];
        for (var i = 0; i < messages.Count; i++)
        {
            streams[i] = (short)messages[i].Stream;
            ids[i] = messages[i].Id;
            types[i] = messages[i].Type;
            bodies[i] = messages[i].Body;
        }
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            INSERT INTO output_outbox (stream, output_id, type, body)
            SELECT o.stream, o.output_id, o.type, o.body
            FROM unnest($1::smallint[], $2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY AS o(stream, output_id, type, body, i)
            ORDER BY o.i
            ON CONFLICT (stream, output_id) DO NOTHING
            """)
        {
            Parameters = { P(streams), P(ids), P(types), P(bodies) },
        });
    }

    /// <summary>
    /// Takes the output relay's lock (a session advisory lock on a connection of its own, outside the pool): null when
    /// another process holds it. The relay runs every query on the lease's connection, so a relay whose session the
    /// server ended (and whose lock another may now hold) can change nothing any more.
    /// </summary>
    public async Task<OutputRelayLease?> TryTakeOutputRelayLockAsync(CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(_options.ConnectionString) { Pooling = false };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock($1)", connection);
            command.Parameters.Add(P(OutputRelayLockKey));
            if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true)
            {
                return new OutputRelayLease(connection);
            }
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new PostgresUnavailableException($"Cannot connect to the {_server}: {e.Message}", e);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        await connection.DisposeAsync().ConfigureAwait(false);
        return null;
    }
}

/// <summary>The output relay's hold on its lock and the queries it runs on the lock's connection.</summary>
public sealed class OutputRelayLease(NpgsqlConnection connection) : IAsyncDisposable
{
    /// <summary>
    /// The stream's numbered rows not yet marked appended, in order; when there are none, numbers up to
    /// <paramref name="max"/> queued rows (in the order they were queued) with the stream's next sequence numbers and
    /// returns those.
    /// </summary>
    public async Task<List<(long Seq, OutputMessage Message)>> NextAsync(OutputStream stream, int max, CancellationToken cancellationToken)
    {
        var numbered = await ReadAsync("""
            SELECT seq, output_id, type, body FROM output_outbox
            WHERE stream = $1 AND seq IS NOT NULL AND NOT appended ORDER BY seq LIMIT $2
            """, stream, max, null, cancellationToken).ConfigureAwait(false);
        if (numbered.Count > 0)
        {
            return numbered;
        }
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var rows = await ReadAsync("""
            WITH next AS (SELECT next_seq FROM output_streams WHERE stream = $1 FOR UPDATE),
            queued AS (
                SELECT output_id, row_number() OVER (ORDER BY n) - 1 AS k
                FROM (SELECT output_id, n FROM output_outbox WHERE stream = $1 AND seq IS NULL ORDER BY n LIMIT $2) q)
            UPDATE output_outbox o SET seq = next.next_seq + queued.k
            FROM queued, next
            WHERE o.stream = $1 AND o.output_id = queued.output_id
            RETURNING o.seq, o.output_id, o.type, o.body
            """, stream, max, transaction, cancellationToken).ConfigureAwait(false);
        if (rows.Count > 0)
        {
            await using var bump = new NpgsqlCommand("UPDATE output_streams SET next_seq = next_seq + $2 WHERE stream = $1", connection, transaction);
            bump.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)stream });
            bump.Parameters.Add(new NpgsqlParameter<long> { TypedValue = rows.Count });
            await bump.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        rows.Sort((a, b) => a.Seq.CompareTo(b.Seq));
        return rows;
    }

    /// <summary>Marks the stream's rows numbered up to <paramref name="seq"/> appended and drops their bodies.</summary>
    public async Task MarkAppendedAsync(OutputStream stream, long seq, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "UPDATE output_outbox SET appended = true, body = NULL WHERE stream = $1 AND seq IS NOT NULL AND NOT appended AND seq <= $2", connection);
        command.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)stream });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = seq });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes appended rows queued longer ago than <paramref name="window"/>, at most 50,000 a call; returns how many.</summary>
    public async Task<int> PruneAsync(TimeSpan window, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            DELETE FROM output_outbox WHERE ctid IN (
                SELECT ctid FROM output_outbox WHERE appended AND created_at < now() - $1 LIMIT 50000)
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = window });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Fails when the lease's session is gone (the lock may be another's now).</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT 1", connection);
        await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => connection.DisposeAsync();

    private async Task<List<(long Seq, OutputMessage Message)>> ReadAsync(string sql, OutputStream stream, int max, NpgsqlTransaction? transaction,
        CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)stream });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = max });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<(long, OutputMessage)>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add((reader.GetInt64(0), new OutputMessage(stream, reader.GetString(1), reader.GetString(2), reader.GetFieldValue<byte[]>(3))));
        }
        return rows;
    }
}
