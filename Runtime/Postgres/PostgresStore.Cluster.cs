using Npgsql;

namespace Runtime.Postgres;

public sealed partial class PostgresStore
{
    /// <summary>
    /// Records the partition count when the cluster is created, and checks it afterwards: an Api node and a silo that
    /// hash sensors to different partition counts would split a sensor's readings between two readers.
    /// </summary>
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
                $"The cluster was created with {existing} partitions; this node is configured with {partitions} (Silo:Partitions).");
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }
}
