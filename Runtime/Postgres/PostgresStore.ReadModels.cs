using System.Text;
using System.Text.Json;
using Grains.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Runtime.Postgres;

public sealed partial class PostgresStore
{
    private const string SensorColumns = "sensor_id, last_seen_ms, metadata::text, latest::text, attributes::text, late_count, applied_position, operator_metadata::text";

    /// <summary>
    /// Case-insensitive "contains" on id, location and model, as <see cref="StringComparison.OrdinalIgnoreCase"/>: both
    /// sides upper-cased character by character (under the database's default collation; ASCII in any locale).
    /// </summary>
    private const string SensorSearch = """
        (strpos(upper(sensor_id COLLATE "default"), upper($1)) > 0
         OR strpos(upper(location), upper($1)) > 0 OR strpos(upper(model), upper($1)) > 0)
        """;

    public async Task<Page<SensorSummary>> ListSensorsAsync(string? search, int offset, int limit, CancellationToken cancellationToken)
    {
        var filtered = !string.IsNullOrWhiteSpace(search);
        var where = filtered ? "WHERE " + SensorSearch : "";
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand($"SELECT count(*) FROM sensors {where}"),
                new NpgsqlBatchCommand($"SELECT {SensorColumns} FROM sensors {where} ORDER BY sensor_id OFFSET ${(filtered ? 2 : 1)} LIMIT ${(filtered ? 3 : 2)}"),
            },
        };
        if (filtered)
        {
            batch.BatchCommands[0].Parameters.Add(P(search!));
            batch.BatchCommands[1].Parameters.Add(P(search!));
        }
        batch.BatchCommands[1].Parameters.Add(P(Math.Max(0, offset)));
        batch.BatchCommands[1].Parameters.Add(P(Math.Max(0, limit)));
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var total = reader.GetInt64(0);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var items = new List<SensorSummary>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            items.Add(ReadSensor(reader));
        }
        return new Page<SensorSummary>(items, checked((int)total));
    }

    public async Task<SensorSummary?> GetSensorAsync(string sensorId, CancellationToken cancellationToken)
    {
        var rows = await QueryAsync($"SELECT {SensorColumns} FROM sensors WHERE sensor_id = $1", ReadSensor, cancellationToken, P(sensorId))
            .ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    public async Task<IReadOnlyList<MinuteAggregate>> GetAggregatesAsync(string sensorId, long fromMs, long toMs, string? metric,
        CancellationToken cancellationToken)
    {
        // One round trip: the minutes' metrics, then their outside values.
        var rows = new List<(long MinuteMs, MetricAggregate Metric)>();
        var outsideRows = new List<(long MinuteMs, MetricValue Value)>();
        await using (var connection = await OpenAsync(cancellationToken).ConfigureAwait(false))
        await using (var batch = new NpgsqlBatch(connection))
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                SELECT minute_ms, metric, count, min, max, sum, first, last FROM minute_aggregates
                WHERE sensor_id = $1 AND minute_ms >= $2 AND minute_ms < $3 AND ($4::text IS NULL OR metric = $4)
                ORDER BY minute_ms, metric
                """)
            {
                Parameters = { P(sensorId), P(fromMs), P(toMs), P(metric, NpgsqlDbType.Text) },
            });
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                SELECT minute_ms, metric, value FROM minute_outside WHERE sensor_id = $1 AND minute_ms >= $2 AND minute_ms < $3
                ORDER BY minute_ms, metric
                """)
            {
                Parameters = { P(sensorId), P(fromMs), P(toMs) },
            });
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add((reader.GetInt64(0), new MetricAggregate
                {
                    Metric = reader.GetString(1),
                    Count = reader.GetInt64(2),
                    Min = reader.GetDouble(3),
                    Max = reader.GetDouble(4),
                    Sum = reader.GetDouble(5),
                    First = reader.GetDouble(6),
                    Last = reader.GetDouble(7),
                }));
            }
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                outsideRows.Add((reader.GetInt64(0), new MetricValue(reader.GetString(1), reader.GetDouble(2))));
            }
        }
        var outside = outsideRows.ToLookup(o => o.MinuteMs, o => o.Value);
        var result = new List<MinuteAggregate>();
        for (var i = 0; i < rows.Count;)
        {
            var j = i;
            while (j < rows.Count && rows[j].MinuteMs == rows[i].MinuteMs)
            {
                j++;
            }
            var values = outside[rows[i].MinuteMs].ToArray();
            result.Add(new MinuteAggregate
            {
                SensorId = sensorId,
                MinuteMs = rows[i].MinuteMs,
                Metrics = rows[i..j].Select(r => r.Metric).ToArray(),
                Outside = values.Length == 0 ? null : values,
            });
            i = j;
        }
        return result;
    }

    public async Task<IReadOnlyList<Alert>> QueryAlertsAsync(AlertQuery query, CancellationToken cancellationToken)
    {
        var sql = new StringBuilder("SELECT ").Append(AlertColumns).Append(" FROM alerts WHERE true");
        var parameters = new List<NpgsqlParameter>();
        void Filter(string condition, NpgsqlParameter parameter)
        {
            parameters.Add(parameter);
            sql.Append(" AND ").Append(condition).Append(" $").Append(parameters.Count);
        }
        if (query.State is { } state)
        {
            Filter("state =", P(StateName(state)));
        }
        if (query.RuleId is { } ruleId)
        {
            Filter("rule_id =", P(ruleId));
        }
        if (query.SensorId is { } sensorId)
        {
            Filter("sensor_id =", P(sensorId));
        }
        if (query.FromMs is { } fromMs)
        {
            Filter("opened_at_ms >=", P(fromMs));
        }
        if (query.ToMs is { } toMs)
        {
            Filter("opened_at_ms <", P(toMs));
        }
        parameters.Add(P(Math.Max(0, query.Limit)));
        sql.Append(" ORDER BY opened_at_ms DESC, alert_id LIMIT $").Append(parameters.Count);
        return await QueryAsync(sql.ToString(), ReadAlert, cancellationToken, [.. parameters]).ConfigureAwait(false);
    }

    public async Task<Alert?> GetAlertAsync(string alertId, CancellationToken cancellationToken)
    {
        var rows = await QueryAsync($"SELECT {AlertColumns} FROM alerts WHERE alert_id = $1", ReadAlert, cancellationToken, P(alertId))
            .ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    /// <summary>Marks the device's pending commands delivered and returns them, oldest (first stored) first, in one statement.</summary>
    public async Task<IReadOnlyList<DeviceCommand>> TakePendingCommandsAsync(string deviceId, CancellationToken cancellationToken) =>
        await QueryAsync("""
            WITH taken AS (
                UPDATE commands SET delivered_at = now()
                WHERE device_id = $1 AND delivered_at IS NULL
                RETURNING seq, command_id, device_id, command, parameters, rule_id, alert_id, created_at_ms)
            SELECT command_id, device_id, command, parameters::text, rule_id, alert_id, created_at_ms FROM taken ORDER BY seq
            """, ReadCommand, cancellationToken, P(deviceId)).ConfigureAwait(false);

    /// <summary>The device's pending commands, oldest (first stored) first; changes nothing.</summary>
    public async Task<IReadOnlyList<DeviceCommand>> ListPendingCommandsAsync(string deviceId, int limit, CancellationToken cancellationToken) =>
        await QueryAsync("""
            SELECT command_id, device_id, command, parameters::text, rule_id, alert_id, created_at_ms
            FROM commands WHERE device_id = $1 AND delivered_at IS NULL ORDER BY seq LIMIT $2
            """, ReadCommand, cancellationToken, P(deviceId), P(Math.Max(0, limit))).ConfigureAwait(false);

    public async Task<bool> MarkCommandDeliveredAsync(string deviceId, string commandId, CancellationToken cancellationToken) =>
        (await QueryAsync("""
            UPDATE commands SET delivered_at = now() WHERE device_id = $1 AND command_id = $2 AND delivered_at IS NULL RETURNING 1
            """, r => r.GetInt32(0), cancellationToken, P(deviceId), P(commandId)).ConfigureAwait(false)).Count == 1;

    private static DeviceCommand ReadCommand(NpgsqlDataReader r) => new()
    {
        CommandId = r.GetString(0),
        DeviceId = r.GetString(1),
        Command = r.GetString(2),
        Parameters = r.IsDBNull(3) ? null : JsonSerializer.Deserialize(r.GetString(3), PostgresJsonContext.Default.DictionaryStringString),
        RuleId = r.GetString(4),
        AlertId = r.GetString(5),
        CreatedAtMs = r.GetInt64(6),
    };

    /// <summary>The device's commands, newest (last stored) first; the delivery time is the database clock's, in epoch ms.</summary>
    public async Task<IReadOnlyList<CommandRecord>> ListCommandsAsync(string deviceId, int limit, CancellationToken cancellationToken) =>
        await QueryAsync("""
            SELECT command_id, device_id, command, parameters::text, rule_id, alert_id, created_at_ms,
                   (extract(epoch FROM delivered_at) * 1000)::bigint
            FROM commands WHERE device_id = $1 ORDER BY seq DESC LIMIT $2
            """, r => new CommandRecord(ReadCommand(r), GetNullable<long>(r, 7)), cancellationToken, P(deviceId), P(Math.Max(0, limit))).ConfigureAwait(false);

    /// <summary>
    /// Deletes the minute aggregates whose minute started more than <see cref="PostgresOptions.AggregateRetention"/> ago,
    /// in batches so that no transaction grows large; returns how many rows (one per metric of a minute) were deleted.
    /// </summary>
    public async Task<long> DeleteExpiredAggregatesAsync(CancellationToken cancellationToken)
    {
        const int batchSize = 10_000;
        var cutoffMs = (_time.GetUtcNow() - _options.AggregateRetention).ToUnixTimeMilliseconds();
        long total = 0;
        while (true)
        {
            var deleted = await ExecuteAsync("""
                DELETE FROM minute_aggregates WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM minute_aggregates WHERE minute_ms < $1 LIMIT $2))
                """, cancellationToken, P(cutoffMs), P(batchSize)).ConfigureAwait(false);
            var outside = await ExecuteAsync("""
                DELETE FROM minute_outside WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM minute_outside WHERE minute_ms < $1 LIMIT $2))
                """, cancellationToken, P(cutoffMs), P(batchSize)).ConfigureAwait(false);
            total += deleted;
            if (deleted < batchSize && outside < batchSize)
            {
                break;
            }
        }
        return total;
    }

    private const string AlertColumns = """
        alert_id, rule_id, rule_name, rule_version, sensor_id, severity, state, started_at_ms, opened_at_ms,
        resolved_at_ms, resolved_reason, acknowledged_at_ms, acknowledged_by, value, threshold, message
        """;

    private static Alert ReadAlert(NpgsqlDataReader r) => new()
    {
        Id = r.GetString(0),
        RuleId = r.GetString(1),
        RuleName = r.GetString(2),
        RuleVersion = r.GetInt64(3),
        SensorId = r.GetString(4),
        Severity = Enum.Parse<Severity>(r.GetString(5)),
        State = Enum.Parse<AlertState>(r.GetString(6)),
        StartedAtMs = r.GetInt64(7),
        OpenedAtMs = r.GetInt64(8),
        ResolvedAtMs = GetNullable<long>(r, 9),
        ResolvedReason = GetNullableString(r, 10),
        AcknowledgedAtMs = GetNullable<long>(r, 11),
        AcknowledgedBy = GetNullableString(r, 12),
        Value = GetNullable<double>(r, 13),
        Threshold = GetNullable<double>(r, 14),
        Message = r.GetString(15),
    };

    private static SensorSummary ReadSensor(NpgsqlDataReader r) => new()
    {
        SensorId = r.GetString(0),
        LastSeenMs = GetNullable<long>(r, 1),
        Metadata = r.IsDBNull(2) ? null : JsonSerializer.Deserialize(r.GetString(2), PostgresJsonContext.Default.SensorMetadata),
        Latest = JsonSerializer.Deserialize(r.GetString(3), PostgresJsonContext.Default.DictionaryStringDouble)!,
        Attributes = r.IsDBNull(4) ? null : JsonSerializer.Deserialize(r.GetString(4), PostgresJsonContext.Default.DictionaryStringString),
        LateCount = r.GetInt64(5),
        AppliedPosition = r.GetInt64(6),
        OperatorMetadata = r.IsDBNull(7) ? null : JsonSerializer.Deserialize(r.GetString(7), PostgresJsonContext.Default.OperatorMetadata),
    };
}
