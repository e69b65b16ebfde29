using Grains.Abstractions;

namespace Runtime.InMemory;

/// <summary>
/// The embedded store: leases, checkpoints, rules and read models in process memory behind one lock, so a
/// checkpoint is atomic with the epoch check that fences it, exactly as the PostgreSQL transaction is.
/// </summary>
public sealed class InMemoryStore(TimeProvider time) : ILeaseStore, ICheckpointStore, IReadStore, IRuleStore
{
    private readonly Lock _gate = new();
    private int _partitions;
    private Lease[] _leases = [];
    private readonly Dictionary<string, SiloInfo> _silos = new(StringComparer.Ordinal);
    private readonly Dictionary<int, PartitionCheckpoint> _checkpoints = [];
    private readonly Dictionary<int, Dictionary<string, long>> _appliedKeys = [];
    private readonly Dictionary<int, Dictionary<GrainId, GrainRecord>> _grains = [];
    private readonly SortedDictionary<string, SensorSummary> _sensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SortedDictionary<long, MinuteAggregate>> _aggregates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Alert> _alerts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<StoredCommand>> _commands = new(StringComparer.Ordinal);
    private readonly HashSet<string> _commandIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RuleDefinition> _rules = new(StringComparer.Ordinal);
    private long _ruleVersion;

    private sealed class StoredCommand(DeviceCommand command)
    {
        public DeviceCommand Command { get; } = command;
        public long? DeliveredAtMs { get; set; }
    }

    // ---- membership and leases

    public Task EnsureClusterAsync(int partitions, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_partitions == 0)
            {
                _partitions = partitions;
                _leases = Enumerable.Range(0, partitions).Select(p => new Lease(p, null, 0, DateTimeOffset.MinValue)).ToArray();
            }
            else if (_partitions != partitions)
            {
                throw new InvalidOperationException(
                    $"The cluster was created with {_partitions} partitions; this silo is configured with {partitions}.");
            }
        }
        return Task.CompletedTask;
    }

    public Task HeartbeatAsync(SiloInfo silo, CancellationToken cancellationToken)
    {
        lock (_gate) _silos[silo.SiloId] = silo;
        return Task.CompletedTask;
    }

    public Task LeaveAsync(string siloId, CancellationToken cancellationToken)
    {
        lock (_gate) _silos.Remove(siloId);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<SiloInfo>> SilosAsync(CancellationToken cancellationToken)
    {
        lock (_gate) return Task.FromResult<IReadOnlyList<SiloInfo>>(_silos.Values.OrderBy(s => s.SiloId, StringComparer.Ordinal).ToArray());
    }

    public Task<IReadOnlyList<Lease>> LeasesAsync(CancellationToken cancellationToken)
    {
        lock (_gate) return Task.FromResult<IReadOnlyList<Lease>>(_leases.ToArray());
    }

    public Task<Lease?> TryAcquireAsync(int partition, string siloId, TimeSpan duration, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var now = time.GetUtcNow();
            var lease = _leases[partition];
            if (lease.Owner is not null && lease.ExpiresAt > now)
            {
                return Task.FromResult<Lease?>(null);
            }
            var taken = new Lease(partition, siloId, lease.Epoch + 1, now + duration);
            _leases[partition] = taken;
            return Task.FromResult<Lease?>(taken);
        }
    }

    public Task<bool> RenewAsync(int partition, string siloId, long epoch, TimeSpan duration, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var lease = _leases[partition];
            var now = time.GetUtcNow();
            if (lease.Owner != siloId || lease.Epoch != epoch || lease.ExpiresAt <= now)
            {
                return Task.FromResult(false);
            }
            _leases[partition] = lease with { ExpiresAt = now + duration };
            return Task.FromResult(true);
        }
    }

    public Task ReleaseAsync(int partition, string siloId, long epoch, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var lease = _leases[partition];
            if (lease.Owner == siloId && lease.Epoch == epoch)
            {
                _leases[partition] = lease with { Owner = null, ExpiresAt = DateTimeOffset.MinValue };
            }
        }
        return Task.CompletedTask;
    }

    // ---- checkpoints

    public Task<PartitionCheckpoint?> LoadPartitionAsync(int partition, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var checkpoint = _checkpoints.GetValueOrDefault(partition);
            return Task.FromResult(checkpoint is null ? null : checkpoint with
            {
                AppliedKeys = _appliedKeys.TryGetValue(partition, out var keys)
                    ? keys.Select(k => new AppliedKey(k.Key, k.Value)).OrderBy(k => k.AtMs).ThenBy(k => k.Key, StringComparer.Ordinal).ToArray()
                    : [],
            });
        }
    }

    public Task<IReadOnlyDictionary<GrainId, GrainRecord>> LoadGrainsAsync(int partition, IReadOnlyCollection<GrainId> ids, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var found = new Dictionary<GrainId, GrainRecord>();
            if (_grains.TryGetValue(partition, out var grains))
            {
                foreach (var id in ids)
                {
                    if (grains.TryGetValue(id, out var record))
                    {
                        found[id] = record;
                    }
                }
            }
            return Task.FromResult<IReadOnlyDictionary<GrainId, GrainRecord>>(found);
        }
    }

    public Task<IReadOnlyList<GrainId>> LoadGrainIdsAsync(int partition, string grainType, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<GrainId> ids = _grains.TryGetValue(partition, out var grains)
                ? grains.Keys.Where(id => id.Type == grainType).ToArray()
                : [];
            return Task.FromResult(ids);
        }
    }

    public Task<IReadOnlyList<(GrainId Id, long WakeAtMs)>> LoadWakeupsAsync(int partition, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<(GrainId, long)> wakeups = _grains.TryGetValue(partition, out var grains)
                ? grains.Values.Where(g => g.WakeAtMs is not null).Select(g => (g.Id, g.WakeAtMs!.Value)).ToArray()
                : [];
            return Task.FromResult(wakeups);
        }
    }

    /// <summary>Raised after a checkpoint committed: the partition and the offset it will resume from.</summary>
    public event Action<int, long>? CheckpointCommitted;

    public Task<bool> CommitAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var lease = _leases[checkpoint.Partition];
            if (lease.Epoch != checkpoint.Epoch || lease.Owner is null)
            {
                return Task.FromResult(false);
            }
            var previous = _checkpoints.GetValueOrDefault(checkpoint.Partition);
            _checkpoints[checkpoint.Partition] = new PartitionCheckpoint(checkpoint.Partition, checkpoint.NextOffset,
                checkpoint.StreamTimeMs, checkpoint.Rules ?? previous?.Rules ?? []);
            if (!_grains.TryGetValue(checkpoint.Partition, out var grains))
            {
                _grains[checkpoint.Partition] = grains = [];
            }
            foreach (var grain in checkpoint.Grains)
            {
                grains[grain.Id] = grain;
            }
            if (!_appliedKeys.TryGetValue(checkpoint.Partition, out var keys))
            {
                _appliedKeys[checkpoint.Partition] = keys = new(StringComparer.Ordinal);
            }
            foreach (var key in checkpoint.NewKeys ?? [])
            {
                keys.TryAdd(key.Key, key.AtMs);
            }
            foreach (var old in keys.Where(k => k.Value < checkpoint.ForgetKeysBeforeMs).Select(k => k.Key).ToList())
            {
                keys.Remove(old);
            }
            foreach (var output in checkpoint.Outputs)
            {
                Apply(output);
            }
        }
        CheckpointCommitted?.Invoke(checkpoint.Partition, checkpoint.NextOffset);
        return Task.FromResult(true);
    }

    public Task<IReadOnlyDictionary<int, long>> CommittedOffsetsAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyDictionary<int, long>>(_checkpoints.ToDictionary(c => c.Key, c => c.Value.NextOffset));
        }
    }

    private void Apply(GrainOutput output)
    {
        switch (output)
        {
            case SensorSummary sensor:
                _sensors[sensor.SensorId] = sensor;
                break;
            case MinuteAggregate aggregate:
                if (!_aggregates.TryGetValue(aggregate.SensorId, out var minutes))
                {
                    _aggregates[aggregate.SensorId] = minutes = [];
                }
                minutes[aggregate.MinuteMs] = aggregate;
                break;
            case AlertEvent alert:
                _alerts[alert.Alert.Id] = alert.Alert;
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

    public Task<bool> TryCreateAsync(RuleDefinition rule, CancellationToken cancellationToken)
    {
        lock (_gate) return Task.FromResult(_rules.TryAdd(rule.Id, rule));
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
