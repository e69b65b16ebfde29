using Grains.Abstractions;
using Runtime.Outputs;

namespace Runtime.InMemory;

/// <summary>
/// The embedded store: rules and read models in process memory behind one lock. Outputs are applied as the PostgreSQL
/// store upserts them: by id, merged with the stored row as <see cref="ReadModelMerge"/> says, a command once. With
/// <see cref="InMemoryOutputStreams"/>, aggregates, alert events and commands are also appended to the output streams.
/// Minute aggregates are kept for <paramref name="aggregateRetention"/> (default <see cref="EmbeddedOptions.AggregateRetention"/>).
/// </summary>
public sealed class InMemoryStore(TimeProvider time, InMemoryOutputStreams? outputStreams = null, TimeSpan? aggregateRetention = null)
    : IReadModelWriter, IReadStore, IRuleStore, IAggregateRetention
{
    private readonly TimeSpan _aggregateRetention = aggregateRetention ?? new EmbeddedOptions().AggregateRetention;
    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, SensorSummary> _sensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SortedDictionary<long, MinuteAggregate>> _aggregates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Alert> _alerts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<StoredCommand>> _commands = new(StringComparer.Ordinal);
    private readonly HashSet<string> _commandIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RuleDefinition> _rules = new(StringComparer.Ordinal);
    private long _ruleVersion;
    private readonly InMemoryOutputStreams? _outputs = outputStreams;

    private sealed class StoredCommand(DeviceCommand command)
    {
        public DeviceCommand Command { get; } = command;
        public long? DeliveredAtMs { get; set; }
    }

    public Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            foreach (var output in outputs)
            {
                Apply(output);
            }
            _outputs?.Append(outputs);
        }

        return Task.CompletedTask;
    }

    private void Apply(GrainOutput output)
    {
        switch (output)
        {
            case SensorSummary sensor:
                _sensors[sensor.SensorId] = ReadModelMerge.Sensor(sensor, _sensors.GetValueOrDefault(sensor.SensorId));
                break;
            case MinuteAggregate aggregate:
                if (!_aggregates.TryGetValue(aggregate.SensorId, out var minutes))
                {
                    _aggregates[aggregate.SensorId] = minutes = [];
                }
                minutes[aggregate.MinuteMs] = aggregate;
                break;
            case AlertEvent alert:
                _alerts[alert.Alert.Id] = ReadModelMerge.Alert(alert.Alert, _alerts.GetValueOrDefault(alert.Alert.Id));
                break;
            case DeviceCommand command when _commandIds.Add(command.CommandId):
                if (!_commands.TryGetValue(command.DeviceId, out var queue))
                {
                    _commands[command.DeviceId] = queue = [];
                }
                queue.Add(new StoredCommand(command));
                break;
        }
    }

    public Task<long> DeleteExpiredAggregatesAsync(CancellationToken cancellationToken)
    {
        var cutoffMs = (time.GetUtcNow() - _aggregateRetention).ToUnixTimeMilliseconds();
        long deleted = 0;
        List<long> expired = [];
        List<string> emptied = [];
        lock (_gate)
        {
            foreach (var (sensorId, minutes) in _aggregates)
            {
                foreach (var (minuteMs, aggregate) in minutes)
                {
                    if (minuteMs >= cutoffMs)
                    {
                        break; // oldest first: the rest are kept
                    }
                    expired.Add(minuteMs);
                    deleted += aggregate.Metrics.Length;
                }
                foreach (var minuteMs in expired)
                {
                    minutes.Remove(minuteMs);
                }
                expired.Clear();
                if (minutes.Count == 0)
                {
                    emptied.Add(sensorId);
                }
            }
            foreach (var sensorId in emptied)
            {
                _aggregates.Remove(sensorId);
            }
        }

        return Task.FromResult(deleted);
    }

    // ---- read models

    public Task<Page<SensorSummary>> ListSensorsAsync(string? search, int offset, int limit, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IEnumerable<SensorSummary> sensors = _sensors.Values;
            if (!string.IsNullOrWhiteSpace(search))
            {
                sensors = sensors.Where(s => Matches(s.SensorId, search) || Matches(s.Metadata?.Location, search) || Matches(s.Metadata?.Model, search));
            }
            var all = sensors.ToList();
            return Task.FromResult(new Page<SensorSummary>(all.Skip(offset).Take(limit).ToArray(), all.Count));
        }

        static bool Matches(string? value, string search) => value?.Contains(search, StringComparison.OrdinalIgnoreCase) == true;
    }

    public Task<SensorSummary?> GetSensorAsync(string sensorId, CancellationToken cancellationToken)
    {
        lock (_gate) return Task.FromResult(_sensors.GetValueOrDefault(sensorId));
    }

    public Task<IReadOnlyList<MinuteAggregate>> GetAggregatesAsync(string sensorId, long fromMs, long toMs, string? metric,
        CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<MinuteAggregate> result = _aggregates.TryGetValue(sensorId, out var minutes)
                ? minutes.Values.Where(a => a.MinuteMs >= fromMs && a.MinuteMs < toMs)
                    .Select(a => metric is null ? a : a with { Metrics = a.Metrics.Where(m => m.Metric == metric).ToArray() })
                    .Where(a => a.Metrics.Length > 0)
                    .ToArray()
                : [];
            return Task.FromResult(result);
        }
    }

    public Task<IReadOnlyList<Alert>> QueryAlertsAsync(AlertQuery query, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<Alert> result = _alerts.Values
                .Where(a => query.State is null || a.State == query.State)
                .Where(a => query.RuleId is null || a.RuleId == query.RuleId)
                .Where(a => query.SensorId is null || a.SensorId == query.SensorId)
                .Where(a => query.FromMs is null || a.OpenedAtMs >= query.FromMs)
                .Where(a => query.ToMs is null || a.OpenedAtMs < query.ToMs)
                .OrderByDescending(a => a.OpenedAtMs).ThenBy(a => a.Id, StringComparer.Ordinal)
                .Take(query.Limit)
                .ToArray();
            return Task.FromResult(result);
        }
    }

    public Task<Alert?> GetAlertAsync(string alertId, CancellationToken cancellationToken)
    {
        lock (_gate) return Task.FromResult(_alerts.GetValueOrDefault(alertId));
    }

    public Task<IReadOnlyList<DeviceCommand>> TakePendingCommandsAsync(string deviceId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_commands.TryGetValue(deviceId, out var queue))
            {
                return Task.FromResult<IReadOnlyList<DeviceCommand>>([]);
            }
            var pending = queue.Where(c => c.DeliveredAtMs is null).ToArray();
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            foreach (var command in pending)
            {
                command.DeliveredAtMs = now;
            }
            return Task.FromResult<IReadOnlyList<DeviceCommand>>(pending.Select(c => c.Command).ToArray());
        }
    }

    public Task<IReadOnlyList<DeviceCommand>> ListPendingCommandsAsync(string deviceId, int limit, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<DeviceCommand> result = _commands.TryGetValue(deviceId, out var queue)
                ? queue.Where(c => c.DeliveredAtMs is null).Take(Math.Max(0, limit)).Select(c => c.Command).ToArray()
                : [];
            return Task.FromResult(result);
        }
    }

    public Task<bool> MarkCommandDeliveredAsync(string deviceId, string commandId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var command = _commands.TryGetValue(deviceId, out var queue)
                ? queue.Find(c => c.DeliveredAtMs is null && string.Equals(c.Command.CommandId, commandId, StringComparison.Ordinal))
                : null;
            if (command is null)
            {
                return Task.FromResult(false);
            }
            command.DeliveredAtMs = time.GetUtcNow().ToUnixTimeMilliseconds();
            return Task.FromResult(true);
        }
    }

    public Task<IReadOnlyList<CommandRecord>> ListCommandsAsync(string deviceId, int limit, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<CommandRecord> result = _commands.TryGetValue(deviceId, out var queue)
                ? Enumerable.Reverse(queue).Take(Math.Max(0, limit)).Select(c => new CommandRecord(c.Command, c.DeliveredAtMs)).ToArray()
                : [];
            return Task.FromResult(result);
        }
    }

    // ---- rules

    public Task<IReadOnlyList<RuleDefinition>> ListAsync(CancellationToken cancellationToken)
    {
        lock (_gate) return Task.FromResult<IReadOnlyList<RuleDefinition>>(_rules.Values.OrderBy(r => r.Id, StringComparer.Ordinal).ToArray());
    }

    public Task<RuleDefinition?> GetAsync(string ruleId, CancellationToken cancellationToken)
    {
        lock (_gate) return Task.FromResult(_rules.GetValueOrDefault(ruleId));
    }

    public Task<long> NextVersionAsync(CancellationToken cancellationToken)
    {
        lock (_gate) return Task.FromResult(++_ruleVersion);
    }

    public Task<RuleCreation> CreateAsync(RuleDefinition rule, int maxRules, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_rules.ContainsKey(rule.Id) ? RuleCreation.Exists
                : _rules.Count >= maxRules ? RuleCreation.Full
                : _rules.TryAdd(rule.Id, rule) ? RuleCreation.Created : RuleCreation.Exists);
        }
    }

    public Task<bool> TryUpdateAsync(RuleDefinition rule, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_rules.ContainsKey(rule.Id))
            {
                return Task.FromResult(false);
            }
            _rules[rule.Id] = rule;
            return Task.FromResult(true);
        }
    }

    public Task<bool> TryDeleteAsync(string ruleId, CancellationToken cancellationToken)
    {
        lock (_gate) return Task.FromResult(_rules.Remove(ruleId));
    }
}
