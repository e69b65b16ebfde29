using System.Text.Json;
using Grains.Abstractions;
using Npgsql;
using NpgsqlTypes;
using Runtime.Outputs;

namespace Runtime.Postgres;

public sealed partial class PostgresStore
{
    /// <summary>
    /// Writes outputs in one transaction of set-based statements (arrays through unnest), whatever their number. They
    /// upsert by their deterministic ids, merged as <see cref="ReadModelMerge"/> says, within the call and with the stored
    /// rows alike (the upserts' conditions are the same rules in SQL): a sensor summary never replaces a newer one (by
    /// applied log position), an alert never goes back from resolved or loses its acknowledgement, a command is inserted
    /// once. A replay or a paused writer cannot undo newer rows. Aggregates, alert events and commands are queued for the
    /// output streams in the same transaction (<see cref="AddOutbox"/>).
    /// </summary>
    public async Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken)
    {
        if (outputs.Count == 0)
        {
            return;
        }
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection, transaction);
        AddOutputs(batch, outputs, _outputStreams);
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static void AddOutputs(NpgsqlBatch batch, IReadOnlyList<GrainOutput> outputs, IReadOnlyList<OutputStream> kept)
    {
        if (outputs.Count == 0)
        {
            return;
        }
        var sensors = new List<SensorSummary>();
        var aggregates = new List<MinuteAggregate>();
        var alerts = new List<Alert>();
        var commands = new List<DeviceCommand>();
        foreach (var output in outputs)
        {
            switch (output)
            {
                case SensorSummary sensor: sensors.Add(sensor); break;
                case MinuteAggregate aggregate: aggregates.Add(aggregate); break;
                case AlertEvent alert: alerts.Add(alert.Alert); break;
                case DeviceCommand command: commands.Add(command); break;
            }
        }
        if (sensors.Count > 0)
        {
            AddSensors(batch, ReadModelMerge.PerKey(sensors, s => s.SensorId, ReadModelMerge.Sensor));
        }
        if (aggregates.Count > 0)
        {
            AddAggregates(batch, LastPerKey(aggregates, a => (a.SensorId, a.MinuteMs)));
        }
        if (alerts.Count > 0)
        {
            AddAlerts(batch, ReadModelMerge.PerKey(alerts, a => a.Id, ReadModelMerge.Alert));
        }
        if (commands.Count > 0)
        {
            AddCommands(batch, commands.DistinctBy(c => c.CommandId, StringComparer.Ordinal).ToList());
        }
        AddOutbox(batch, outputs, kept);
    }

    private static void AddSensors(NpgsqlBatch batch, List<SensorSummary> rows)
    {
        var ids = new string[rows.Count];
        var lastSeen = new long?[rows.Count];
        var locations = new string?[rows.Count];
        var models = new string?[rows.Count];
        var metadata = new string?[rows.Count];
        var operatorMetadata = new string?[rows.Count];
        var latest = new string?[rows.Count];
        var attributes = new string?[rows.Count];
        var late = new long[rows.Count];
        var applied = new long[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            var s = rows[i];
            ids[i] = s.SensorId;
            lastSeen[i] = s.LastSeenMs;
            locations[i] = s.Metadata?.Location;
            models[i] = s.Metadata?.Model;
            metadata[i] = s.Metadata is null ? null : JsonSerializer.Serialize(s.Metadata, PostgresJsonContext.Default.SensorMetadata);
            operatorMetadata[i] = s.OperatorMetadata is null ? null : JsonSerializer.Serialize(s.OperatorMetadata, PostgresJsonContext.Default.OperatorMetadata);
            latest[i] = JsonSerializer.Serialize(s.Latest, PostgresJsonContext.Default.DictionaryStringDouble);
            attributes[i] = s.Attributes is null ? null : JsonSerializer.Serialize(s.Attributes, PostgresJsonContext.Default.DictionaryStringString);
            late[i] = s.LateCount;
            applied[i] = s.AppliedPosition;
        }
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            INSERT INTO sensors (sensor_id, last_seen_ms, location, model, metadata, latest, attributes, late_count, applied_position,
                operator_metadata)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::jsonb[], $8::bigint[], $9::bigint[],
                $10::jsonb[])
            ON CONFLICT (sensor_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, location = excluded.location,
                model = excluded.model, metadata = excluded.metadata, latest = excluded.latest, attributes = excluded.attributes,
                late_count = excluded.late_count, applied_position = excluded.applied_position, operator_metadata = excluded.operator_metadata
            WHERE sensors.applied_position <= excluded.applied_position
            """)
        {
            Parameters = { P(ids), P(lastSeen), P(locations), P(models), JsonbArray(metadata), JsonbArray(latest), JsonbArray(attributes), P(late), P(applied),
                JsonbArray(operatorMetadata) },
        });
    }

    /// <summary>A minute's aggregate replaces the stored one as a whole: its rows are deleted, then its metrics and outside values inserted.</summary>
    private static void AddAggregates(NpgsqlBatch batch, List<MinuteAggregate> aggregates)
    {
        var minuteSensors = new string[aggregates.Count];
        var minutes = new long[aggregates.Count];
        var rows = new List<(string SensorId, long MinuteMs, MetricAggregate Metric)>(aggregates.Count * 4);
        for (var i = 0; i < aggregates.Count; i++)
        {
            var a = aggregates[i];
            minuteSensors[i] = a.SensorId;
            minutes[i] = a.MinuteMs;
            foreach (var metric in LastPerKey(a.Metrics, m => m.Metric))
            {
                rows.Add((a.SensorId, a.MinuteMs, metric));
            }
        }
        // The deletes below join the keys to the tables by their primary keys, a lookup per key, whatever the planner
        // estimates. At a fleet's minute close every key has the same minute, which the planner cannot know: it took the
        // keys to be spread over the table's minutes, chose a merge join on minute_ms alone and compared every key with
        // every row of that minute (5,000 keys against 91,166 rows: 420 million comparisons, 96 s instead of 74 ms). A hash
        // join would read the whole table, which grows with the retention. For the rest of this transaction only.
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('enable_mergejoin', 'off', true), set_config('enable_hashjoin', 'off', true)"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            DELETE FROM minute_aggregates a USING unnest($1::text[], $2::bigint[]) AS k(sensor_id, minute_ms)
            WHERE a.sensor_id = k.sensor_id AND a.minute_ms = k.minute_ms
            """)
        {
            Parameters = { P(minuteSensors), P(minutes) },
        });
        var sensorIds = new string[rows.Count];
        var minuteMs = new long[rows.Count];
        var names = new string[rows.Count];
        var counts = new long[rows.Count];
        var min = new double[rows.Count];
        var max = new double[rows.Count];
        var sum = new double[rows.Count];
        var first = new double[rows.Count];
        var last = new double[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            var (sensorId, minute, m) = rows[i];
            sensorIds[i] = sensorId;
            minuteMs[i] = minute;
            names[i] = m.Metric;
            counts[i] = m.Count;
            min[i] = m.Min;
            max[i] = m.Max;
            sum[i] = m.Sum;
            first[i] = m.First;
            last[i] = m.Last;
        }
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            INSERT INTO minute_aggregates (sensor_id, minute_ms, metric, count, min, max, sum, first, last)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[])
            """)
        {
            Parameters = { P(sensorIds), P(minuteMs), P(names), P(counts), P(min), P(max), P(sum), P(first), P(last) },
        });
        var outsideSensors = new List<string>();
        var outsideMinutes = new List<long>();
        var outsideNames = new List<string>();
        var outsideValues = new List<double>();
        foreach (var a in aggregates)
        {
            foreach (var o in a.Outside ?? [])
            {
                outsideSensors.Add(a.SensorId);
                outsideMinutes.Add(a.MinuteMs);
                outsideNames.Add(o.Name);
                outsideValues.Add(o.Value);
            }
        }
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            DELETE FROM minute_outside o USING unnest($1::text[], $2::bigint[]) AS k(sensor_id, minute_ms)
            WHERE o.sensor_id = k.sensor_id AND o.minute_ms = k.minute_ms
            """)
        {
            Parameters = { P(minuteSensors), P(minutes) },
        });
        if (outsideSensors.Count > 0)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO minute_outside (sensor_id, minute_ms, metric, value)
                SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::float8[])
                ON CONFLICT DO NOTHING
                """)
            {
                Parameters = { P(outsideSensors.ToArray()), P(outsideMinutes.ToArray()), P(outsideNames.ToArray()), P(outsideValues.ToArray()) },
            });
        }
    }

    private static void AddAlerts(NpgsqlBatch batch, List<Alert> rows)
    {
        var n = rows.Count;
        var ids = new string[n];
        var ruleIds = new string[n];
        var ruleNames = new string[n];
        var ruleVersions = new long[n];
        var sensorIds = new string[n];
        var severities = new string[n];
        var states = new string[n];
        var started = new long[n];
        var opened = new long[n];
        var resolved = new long?[n];
        var resolvedReasons = new string?[n];
        var acknowledged = new long?[n];
        var acknowledgedBy = new string?[n];
        var values = new double?[n];
        var thresholds = new double?[n];
        var messages = new string[n];
        for (var i = 0; i < n; i++)
        {
            var a = rows[i];
            ids[i] = a.Id;
            ruleIds[i] = a.RuleId;
            ruleNames[i] = a.RuleName;
            ruleVersions[i] = a.RuleVersion;
            sensorIds[i] = a.SensorId;
            severities[i] = SeverityName(a.Severity);
            states[i] = StateName(a.State);
            started[i] = a.StartedAtMs;
            opened[i] = a.OpenedAtMs;
            resolved[i] = a.ResolvedAtMs;
            resolvedReasons[i] = a.ResolvedReason;
            acknowledged[i] = a.AcknowledgedAtMs;
            acknowledgedBy[i] = a.AcknowledgedBy;
            values[i] = a.Value;
            thresholds[i] = a.Threshold;
            messages[i] = a.Message;
        }
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            INSERT INTO alerts (alert_id, rule_id, rule_name, rule_version, sensor_id, severity, state, started_at_ms, opened_at_ms,
                resolved_at_ms, resolved_reason, acknowledged_at_ms, acknowledged_by, value, threshold, message)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[],
                $9::bigint[], $10::bigint[], $11::text[], $12::bigint[], $13::text[], $14::float8[], $15::float8[], $16::text[])
            ON CONFLICT (alert_id) DO UPDATE SET rule_id = excluded.rule_id, rule_name = excluded.rule_name,
                rule_version = excluded.rule_version, sensor_id = excluded.sensor_id, severity = excluded.severity,
                state = excluded.state, started_at_ms = excluded.started_at_ms, opened_at_ms = excluded.opened_at_ms,
                resolved_at_ms = excluded.resolved_at_ms, resolved_reason = excluded.resolved_reason,
                acknowledged_at_ms = COALESCE(excluded.acknowledged_at_ms, alerts.acknowledged_at_ms),
                acknowledged_by = COALESCE(excluded.acknowledged_by, alerts.acknowledged_by),
                value = excluded.value, threshold = excluded.threshold, message = excluded.message
            WHERE (alerts.state <> 'Resolved' OR excluded.state = 'Resolved')
                AND (alerts.acknowledged_at_ms IS NULL OR excluded.acknowledged_at_ms IS NOT NULL OR excluded.state = 'Resolved')
            """)
        {
            Parameters =
            {
                P(ids), P(ruleIds), P(ruleNames), P(ruleVersions), P(sensorIds), P(severities), P(states), P(started), P(opened),
                P(resolved), P(resolvedReasons), P(acknowledged), P(acknowledgedBy), P(values), P(thresholds), P(messages),
            },
        });
    }

    /// <summary>Commands are inserted in output order (their seq is the delivery order) and skipped when their id exists.</summary>
    private static void AddCommands(NpgsqlBatch batch, List<DeviceCommand> rows)
    {
        var n = rows.Count;
        var ids = new string[n];
        var devices = new string[n];
        var commands = new string[n];
        var parameters = new string?[n];
        var ruleIds = new string[n];
        var alertIds = new string[n];
        var created = new long[n];
        for (var i = 0; i < n; i++)
        {
            var c = rows[i];
            ids[i] = c.CommandId;
            devices[i] = c.DeviceId;
            commands[i] = c.Command;
            parameters[i] = c.Parameters is null ? null : JsonSerializer.Serialize(c.Parameters, PostgresJsonContext.Default.DictionaryStringString);
            ruleIds[i] = c.RuleId;
            alertIds[i] = c.AlertId;
            created[i] = c.CreatedAtMs;
        }
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            INSERT INTO commands (command_id, device_id, command, parameters, rule_id, alert_id, created_at_ms)
            SELECT c.command_id, c.device_id, c.command, c.parameters, c.rule_id, c.alert_id, c.created_at_ms
            FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::bigint[])
                WITH ORDINALITY AS c(command_id, device_id, command, parameters, rule_id, alert_id, created_at_ms, n)
            ORDER BY c.n
            ON CONFLICT (command_id) DO NOTHING
            """)
        {
            Parameters = { P(ids), P(devices), P(commands), JsonbArray(parameters), P(ruleIds), P(alertIds), P(created) },
        });
    }

    /// <summary>The rows with distinct keys, each with the value of its last occurrence, in order of first occurrence.</summary>
    private static List<T> LastPerKey<T, TKey>(IReadOnlyList<T> items, Func<T, TKey> key) where TKey : notnull
    {
        var index = new Dictionary<TKey, int>(items.Count);
        var rows = new List<T>(items.Count);
        foreach (var item in items)
        {
            if (index.TryGetValue(key(item), out var i))
            {
                rows[i] = item;
            }
            else
            {
                index[key(item)] = rows.Count;
                rows.Add(item);
            }
        }
        return rows;
    }

    private static string SeverityName(Severity severity) => severity switch
    {
        Severity.Critical => "Critical",
        Severity.Major => "Major",
        Severity.Minor => "Minor",
        Severity.Warning => "Warning",
        Severity.Info => "Info",
        _ => throw new ArgumentOutOfRangeException(nameof(severity), severity, null),
    };

    private static string StateName(AlertState state) => state switch
    {
        AlertState.Open => "Open",
        AlertState.Resolved => "Resolved",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };
}
