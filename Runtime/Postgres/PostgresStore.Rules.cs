using Npgsql;
using System.Text.Json;
using Grains.Abstractions;

namespace Runtime.Postgres;

public sealed partial class PostgresStore
{
    public async Task<IReadOnlyList<RuleDefinition>> ListAsync(CancellationToken cancellationToken) =>
        await QueryAsync("SELECT definition::text FROM rules ORDER BY rule_id", ReadRule, cancellationToken).ConfigureAwait(false);

    public async Task<RuleDefinition?> GetAsync(string ruleId, CancellationToken cancellationToken)
    {
        var rows = await QueryAsync("SELECT definition::text FROM rules WHERE rule_id = $1", ReadRule, cancellationToken, P(ruleId))
            .ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    public async Task<long> NextVersionAsync(CancellationToken cancellationToken) =>
        (await QueryAsync("SELECT nextval('rule_versions')", r => r.GetInt64(0), cancellationToken).ConfigureAwait(false))[0];

    /// <summary>Creates behind a transaction-scoped advisory lock, so that the count and the insert of concurrent creates are serial.</summary>
    public async Task<RuleCreation> CreateAsync(RuleDefinition rule, int maxRules, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext('oiot.rules.create'))", connection, transaction))
        {
            await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        RuleCreation outcome;
        await using (var check = new NpgsqlCommand("""
            SELECT CASE WHEN EXISTS (SELECT 1 FROM rules WHERE rule_id = $1) THEN 1
                        WHEN (SELECT count(*) FROM rules) >= $2 THEN 2
                        ELSE 0 END
            """, connection, transaction))
        {
            check.Parameters.Add(P(rule.Id));
            check.Parameters.Add(P((long)maxRules));
            outcome = (RuleCreation)(int)(await check.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        if (outcome == RuleCreation.Created)
        {
            await using var insert = new NpgsqlCommand("INSERT INTO rules (rule_id, version, definition) VALUES ($1, $2, $3)", connection, transaction);
            insert.Parameters.Add(P(rule.Id));
            insert.Parameters.Add(P(rule.Version));
            insert.Parameters.Add(Jsonb(Serialize(rule)));
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return outcome;
    }

    public async Task<bool> TryUpdateAsync(RuleDefinition rule, CancellationToken cancellationToken) =>
        await ExecuteAsync("UPDATE rules SET version = $2, definition = $3, updated_at = now() WHERE rule_id = $1",
            cancellationToken, P(rule.Id), P(rule.Version), Jsonb(Serialize(rule))).ConfigureAwait(false) == 1;

    public async Task<bool> TryDeleteAsync(string ruleId, CancellationToken cancellationToken) =>
        await ExecuteAsync("DELETE FROM rules WHERE rule_id = $1", cancellationToken, P(ruleId)).ConfigureAwait(false) == 1;

    private static string Serialize(RuleDefinition rule) => JsonSerializer.Serialize(rule, PostgresJsonContext.Default.RuleDefinition);

    private static RuleDefinition ReadRule(Npgsql.NpgsqlDataReader r) =>
        JsonSerializer.Deserialize(r.GetString(0), PostgresJsonContext.Default.RuleDefinition)!;
}
