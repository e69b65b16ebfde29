using System.Text.Json;
using Npgsql;

namespace Runtime.Postgres;

public sealed partial class PostgresStore
{
    public async Task EnsureClusterAsync(int partitions, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // A concurrent creator makes this INSERT wait for its commit and do nothing; the next statement then sees its row.
        await using (var command = new NpgsqlCommand("INSERT INTO cluster (partitions) VALUES ($1) ON CONFLICT (id) DO NOTHING",
            connection, transaction))
        {
            command.Parameters.Add(P(partitions));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        int existing;
        await using (var command = new NpgsqlCommand("SELECT partitions FROM cluster", connection, transaction))
        {
            existing = (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        if (existing != partitions)
        {
            throw new InvalidOperationException(
                $"The cluster was created with {existing} partitions; this silo is configured with {partitions}.");
        }
        await using (var command = new NpgsqlCommand(
            "INSERT INTO leases (partition) SELECT generate_series(0, $1 - 1) ON CONFLICT (partition) DO NOTHING",
            connection, transaction))
        {
            command.Parameters.Add(P(partitions));
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task HeartbeatAsync(SiloInfo silo, CancellationToken cancellationToken) => ExecuteAsync("""
        INSERT INTO membership (silo_id, address, started_at, last_heartbeat, activations, readings_applied, alerts_opened)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (silo_id) DO UPDATE SET address = excluded.address, started_at = excluded.started_at,
            last_heartbeat = excluded.last_heartbeat, activations = excluded.activations,
            readings_applied = excluded.readings_applied, alerts_opened = excluded.alerts_opened, seen_at = now()
        """, cancellationToken,
        P(silo.SiloId), P(silo.Address), P(silo.StartedAt.ToUniversalTime()), P(silo.LastHeartbeat.ToUniversalTime()),
        Jsonb(JsonSerializer.Serialize(silo.Activations, PostgresJsonContext.Default.IReadOnlyDictionaryStringInt32)),
        P(silo.ReadingsApplied), P(silo.AlertsOpened));

    public Task LeaveAsync(string siloId, CancellationToken cancellationToken) =>
        ExecuteAsync("DELETE FROM membership WHERE silo_id = $1", cancellationToken, P(siloId));

    public async Task<IReadOnlyList<SiloInfo>> SilosAsync(CancellationToken cancellationToken) => await QueryAsync(
        """
        SELECT silo_id, address, started_at, last_heartbeat, activations::text, readings_applied, alerts_opened
        FROM membership ORDER BY silo_id
        """,
        r => new SiloInfo(r.GetString(0), r.GetString(1), r.GetFieldValue<DateTimeOffset>(2), r.GetFieldValue<DateTimeOffset>(3),
            JsonSerializer.Deserialize(r.GetString(4), PostgresJsonContext.Default.IReadOnlyDictionaryStringInt32)!,
            r.GetInt64(5), r.GetInt64(6)),
        cancellationToken).ConfigureAwait(false);

    public async Task<IReadOnlyList<Lease>> LeasesAsync(CancellationToken cancellationToken) => await QueryAsync(
        "SELECT partition, owner, epoch, expires_at FROM leases ORDER BY partition", ReadLease, cancellationToken).ConfigureAwait(false);

    public async Task<Lease?> TryAcquireAsync(int partition, string siloId, TimeSpan duration, CancellationToken cancellationToken)
    {
        // Free or expired by the database clock; a concurrent taker blocks on the row and re-checks it after our commit.
        var taken = await QueryAsync("""
            UPDATE leases SET owner = $2, epoch = epoch + 1, expires_at = now() + $3
            WHERE partition = $1 AND (owner IS NULL OR expires_at <= now())
            RETURNING partition, owner, epoch, expires_at
            """, ReadLease, cancellationToken, P(partition), P(siloId), P(duration)).ConfigureAwait(false);
        return taken.Count == 0 ? null : taken[0];
    }

    public async Task<bool> RenewAsync(int partition, string siloId, long epoch, TimeSpan duration, CancellationToken cancellationToken) =>
        await ExecuteAsync("""
            UPDATE leases SET expires_at = now() + $4
            WHERE partition = $1 AND owner = $2 AND epoch = $3 AND expires_at > now()
            """, cancellationToken, P(partition), P(siloId), P(epoch), P(duration)).ConfigureAwait(false) == 1;

    public Task ReleaseAsync(int partition, string siloId, long epoch, CancellationToken cancellationToken) => ExecuteAsync("""
        UPDATE leases SET owner = NULL, expires_at = '-infinity'
        WHERE partition = $1 AND owner = $2 AND epoch = $3
        """, cancellationToken, P(partition), P(siloId), P(epoch));

    private static Lease ReadLease(NpgsqlDataReader r) => new(r.GetInt32(0), GetNullableString(r, 1), r.GetInt64(2), ReadTime(r, 3));

    /// <summary>A free lease expires at '-infinity', which is <see cref="DateTimeOffset.MinValue"/> as in the in-memory store.</summary>
    private static DateTimeOffset ReadTime(NpgsqlDataReader r, int ordinal) =>
        r.GetFieldValue<DateTime>(ordinal) is var t && t == DateTime.MinValue ? DateTimeOffset.MinValue : new DateTimeOffset(t, TimeSpan.Zero);
}
