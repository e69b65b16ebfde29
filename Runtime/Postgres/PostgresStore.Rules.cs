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

    public async Task<bool> TryCreateAsync(RuleDefinition rule, CancellationToken cancellationToken) =>
        await ExecuteAsync("INSERT INTO rules (rule_id, version, definition) VALUES ($1, $2, $3) ON CONFLICT (rule_id) DO NOTHING",
            cancellationToken, P(rule.Id), P(rule.Version), Jsonb(Serialize(rule))).ConfigureAwait(false) == 1;

    public async Task<bool> TryUpdateAsync(RuleDefinition rule, CancellationToken cancellationToken) =>
        await ExecuteAsync("UPDATE rules SET version = $2, definition = $3, updated_at = now() WHERE rule_id = $1",
            cancellationToken, P(rule.Id), P(rule.Version), Jsonb(Serialize(rule))).ConfigureAwait(false) == 1;

    public async Task<bool> TryDeleteAsync(string ruleId, CancellationToken cancellationToken) =>
        await ExecuteAsync("DELETE FROM rules WHERE rule_id = $1", cancellationToken, P(ruleId)).ConfigureAwait(false) == 1;

    private static string Serialize(RuleDefinition rule) => JsonSerializer.Serialize(rule, PostgresJsonContext.Default.RuleDefinition);

    private static RuleDefinition ReadRule(Npgsql.NpgsqlDataReader r) =>
        JsonSerializer.Deserialize(r.GetString(0), PostgresJsonContext.Default.RuleDefinition)!;
}
