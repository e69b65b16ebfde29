using Grains.Abstractions;

namespace Runtime.Partitions;

/// <summary>
/// The decisions of a partition's reader, pure (no I/O, no clock reads): turns log records into work for sensor grains
/// (each sensor's readings in log order), skips telemetry whose idempotency key it applied, keeps the rule catalog in log
/// order, tracks the receipt time the partition has reached, and schedules sensors whose clock must run (a minute to
/// close, an offline deadline, a rule timer) without new readings. It changes its <see cref="State"/> in place.
/// </summary>
public sealed class PartitionLogic
{
    private const long MinuteMs = 60_000;

    /// <summary>How far back from its newest observation a location's outside observations are kept: longer than any allowed age of a joined value.</summary>
    public const long OutsideKeepMs = 6 * 60 * MinuteMs;

    /// <summary>Locations with outside conditions a partition keeps at most (each is in the partition's stored state).</summary>
    public const int MaxOutsideLocations = 1000;

    private readonly int _partition;
    private readonly int _partitions;
    private readonly long _idempotencyWindowMs;
    private readonly PartitionState _state;
    private readonly AppliedKeys _keys;
    private readonly SortedSet<(long WakeAtMs, string SensorId)> _schedule = new(ScheduleOrder.Instance);
    private RuleCatalog _rules;
    private OutsideConditions _outside;

    public PartitionLogic(int partition, int partitions, PartitionState state, TimeSpan idempotencyWindow)
    {
        ArgumentNullException.ThrowIfNull(state);
        _partition = partition;
        _partitions = partitions;
        _idempotencyWindowMs = (long)idempotencyWindow.TotalMilliseconds;
        _state = state;
        _keys = new AppliedKeys(state.AppliedKeySegments, state.AppliedKeys);
        _rules = RuleCatalog.From(state.Rules);
        _outside = state.Outside ?? OutsideConditions.Empty;
        foreach (var (sensorId, entry) in state.Sensors)
        {
            if (entry.WakeAtMs is { } wake)
            {
                _schedule.Add((wake, sensorId));
            }
        }
    }


    public long NextOffset => _state.NextOffset;

    public long ReceivedUpToMs => _state.ReceivedUpToMs;

    public RuleCatalog Rules => _rules;

    public OutsideConditions Outside => _outside;

    /// <summary>The earliest receipt time at which a sensor is due; null when none is.</summary>
    public long? NextWakeMs => _schedule.Count == 0 ? null : _schedule.Min.WakeAtMs;

    public int SensorCount => _state.Sensors.Count;

    /// <summary>
    /// Takes records from <paramref name="start"/> on into <paramref name="batch"/>, up to and including the first rule
    /// change (whose effects need the work before it delivered first). Returns how many records it took.
    /// </summary>
    public int Take(IReadOnlyList<LogRecord> records, int start, PartitionBatch batch)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(batch);
        batch.Rules = _rules;
        batch.Outside = _outside;
        var taken = 0;
        for (var i = start; i < records.Count; i++)
        {
            var record = records[i];
            taken++;
            if (record.Offset < _state.NextOffset)
            {
                continue; // a reader that resumed before the committed position
            }

            _state.NextOffset = record.Offset + 1;
            switch (record.Entry)
            {
                case TelemetryEntry telemetry:
                    TakeTelemetry(telemetry, record.Offset, 0, batch);
                    break;
                case TelemetryGroupEntry group:
                    var first = 0;
                    foreach (var telemetry in group.Entries)
                    {
                        TakeTelemetry(telemetry, record.Offset, first, batch);
                        first += telemetry.Readings.Length;
                    }

                    break;
                case TickEntry tick:
                    Advance(tick.TimeMs);
                    break;
                case SensorMetadataEntry metadata:
                    Advance(metadata.AtMs);
                    batch.Add(metadata.SensorId, SensorWorkItem.MetadataChange(LogPosition.Of(record.Offset, 0), metadata.AtMs, metadata.Metadata));
                    break;
                case RuleChangeEntry change:
                    Advance(change.AtMs);
                    ApplyRuleChange(change, batch);
                    batch.ReceivedUpToMs = _state.ReceivedUpToMs;
                    return taken;
                case OutsideConditionsEntry outside:
                    Advance(outside.AtMs);
                    ApplyOutsideConditions(outside);
                    batch.ReceivedUpToMs = _state.ReceivedUpToMs;
                    return taken;
            }
        }

        batch.ReceivedUpToMs = _state.ReceivedUpToMs;
        return taken;
    }

    /// <summary>
    /// Adds the readings of one request's entry, unless its idempotency key was applied; <paramref name="firstIndex"/>
    /// is the index of its first reading in the record (a group's entries number on).
    /// </summary>
    private void TakeTelemetry(TelemetryEntry telemetry, long offset, int firstIndex, PartitionBatch batch)
    {
        Advance(telemetry.ReceivedAtMs);
        if (telemetry.IdempotencyKey is { } key && !_keys.TryApply(key, _state.ReceivedUpToMs, _idempotencyWindowMs))
        {
            batch.DuplicatesSkipped += telemetry.Readings.Length;
            return;
        }

        for (var index = 0; index < telemetry.Readings.Length; index++)
        {
            var reading = telemetry.Readings[index];
            batch.Add(reading.SensorId, new SensorWorkItem(LogPosition.Of(offset, firstIndex + index), telemetry.ReceivedAtMs, reading));
        }
    }

    /// <summary>Records where a sensor stands after a call, and when it is next due.</summary>
    public void Progress(string sensorId, SensorProgress progress)
    {
        var previous = _state.Sensors.TryGetValue(sensorId, out var entry) ? entry.WakeAtMs : null;
        if (progress.ClockMs == long.MinValue && progress.AppliedPosition < 0)
        {
            if (previous is { } scheduled)
            {
                _schedule.Remove((scheduled, sensorId));
            }

            _state.Sensors.Remove(sensorId);
            return;
        }

        _state.Sensors[sensorId] = new SensorEntry(progress.WakeAtMs, progress.ClockMs, progress.ClockReceivedAtMs, progress.LastSeenMs,
            progress.Location, progress.Model, progress.AppliedPosition);
        // A sensor with steady readings stays due at the close of its open minute: most calls leave the schedule as it is.
        if (previous != progress.WakeAtMs)
        {
            if (previous is { } scheduled)
            {
                _schedule.Remove((scheduled, sensorId));
            }

            if (progress.WakeAtMs is { } wake)
            {
                _schedule.Add((wake, sensorId));
            }
        }
    }

    /// <summary>The log position <paramref name="sensorId"/> last reported applied (-1: none known).</summary>
    public long AppliedPositionOf(string sensorId) =>
        _state.Sensors.TryGetValue(sensorId, out var entry) ? entry.AppliedPosition : -1;

    /// <summary>Whether a sensor is due by the receipt time reached and not yet taken.</summary>
    public bool HasDue => _schedule.Count > 0 && _schedule.Min.WakeAtMs <= _state.ReceivedUpToMs;

    /// <summary>
    /// Up to <paramref name="max"/> of the sensors due by the receipt time reached, in schedule order; they leave the
    /// schedule until their next progress. The others stay scheduled: a reading delivered before they are taken runs their
    /// clock as the wake would have, and its progress moves them to their next wake time.
    /// </summary>
    public IReadOnlyList<string> TakeDue(int max = int.MaxValue)
    {
        List<string>? due = null;
        while (_schedule.Count > 0 && _schedule.Min.WakeAtMs <= _state.ReceivedUpToMs && (due?.Count ?? 0) < max)
        {
            var (_, sensorId) = _schedule.Min;
            _schedule.Remove(_schedule.Min);
            _state.Sensors[sensorId] = _state.Sensors[sensorId] with { WakeAtMs = null };
            (due ??= []).Add(sensorId);
        }

        return due ?? (IReadOnlyList<string>)[];
    }

    /// <summary>
    /// A copy of the state as of now, to store while the logic goes on: the catalog brought up to date, the idempotency
    /// keys older than the window forgotten (here too; the segments of keys are shared, not copied).
    /// </summary>
    public PartitionState Snapshot()
    {
        _state.AppliedKeySegments = _keys.Snapshot(_state.ReceivedUpToMs - _idempotencyWindowMs);
        if (_state.AppliedKeys.Count > 0)
        {
            _state.AppliedKeys = new(StringComparer.Ordinal); // in the segments now
        }

        return new PartitionState
        {
            NextOffset = _state.NextOffset,
            ReceivedUpToMs = _state.ReceivedUpToMs,
            Rules = _rules.All.ToArray(),
            Outside = _outside,
            AppliedKeySegments = _state.AppliedKeySegments,
            Sensors = new Dictionary<string, SensorEntry>(_state.Sensors, StringComparer.Ordinal),
        };
    }

    private void Advance(long receivedAtMs)
    {
        if (receivedAtMs > _state.ReceivedUpToMs)
        {
            _state.ReceivedUpToMs = receivedAtMs;
        }
    }

    /// <summary>
    /// Applies a rule change to the catalog. The rule's own grain hears of it when its id hashes to this partition. A new
    /// or changed offline rule is planned for every sensor it targets from the sensor's entry: the sensor is woken at its
    /// deadline, and only a sensor silent that long is activated.
    /// </summary>
    private void ApplyRuleChange(RuleChangeEntry change, PartitionBatch batch)
    {
        _rules = change.Rule is null ? _rules.Without(change.RuleId) : _rules.With(change.Rule);
        if (Partitioner.PartitionOf(change.RuleId, _partitions) == _partition)
        {
            batch.RuleChanges.Add(new RuleDefinitionChange(change.RuleId, change.Rule, change.AtMs));
        }

        if (change.Rule is not { Enabled: true, Condition: { Kind: ConditionKind.Offline, Minutes: > 0 } } rule)
        {
            return;
        }

        var metadata = new SensorMetadata();
        foreach (var (sensorId, entry) in _state.Sensors.ToList())
        {
            if (entry.LastSeenMs is not { } lastSeen
                || !rule.Targets(sensorId, metadata with { Location = entry.Location, Model = entry.Model }))
            {
                continue;
            }

            var deadline = entry.ClockReceivedAtMs + Math.Max(0, lastSeen + rule.Condition.Minutes * MinuteMs - entry.ClockMs);
            if (entry.WakeAtMs is { } wake && wake <= deadline)
            {
                continue;
            }

            if (entry.WakeAtMs is { } previous)
            {
                _schedule.Remove((previous, sensorId));
            }

            _state.Sensors[sensorId] = entry with { WakeAtMs = deadline };
            _schedule.Add((deadline, sensorId));
        }
    }

    /// <summary>
    /// Adds observations of a location's outside conditions; the readings before them in the log were given the conditions
    /// as they were (the entry ends its batch). A location keeps what was observed within <see cref="OutsideKeepMs"/> of its
    /// newest observation plus the latest one before that; a new location beyond
    /// <see cref="MaxOutsideLocations"/> is ignored.
    /// </summary>
    private void ApplyOutsideConditions(OutsideConditionsEntry entry)
    {
        if (!_outside.Knows(entry.Location) && _outside.LocationCount >= MaxOutsideLocations)
        {
            return;
        }

        _outside = _outside.With(entry.Location, entry.Observations, OutsideKeepMs);
    }

    /// <summary>Wake-ups by time, then sensor id (ordinal): the same order after every restart.</summary>
    private sealed class ScheduleOrder : IComparer<(long WakeAtMs, string SensorId)>
    {
        public static readonly ScheduleOrder Instance = new();

        public int Compare((long WakeAtMs, string SensorId) x, (long WakeAtMs, string SensorId) y)
        {
            var c = x.WakeAtMs.CompareTo(y.WakeAtMs);
            return c != 0 ? c : string.CompareOrdinal(x.SensorId, y.SensorId);
        }
    }
}

/// <summary>The work of a run of log records: each sensor's readings (and operators' metadata changes) in log order, the rule grains to tell of a change, and the receipt time reached.</summary>
public sealed class PartitionBatch
{
    private readonly Dictionary<string, List<SensorWorkItem>> _sensors = new(StringComparer.Ordinal);

    /// <summary>Lists of earlier batches, cleared, for the next one (a batch has a list per sensor: thousands in a fleet).</summary>
    private readonly Stack<List<SensorWorkItem>> _spare = new();

    /// <summary>The catalog the readings of this batch are evaluated with (as of before a rule change that ends the batch).</summary>
    public RuleCatalog Rules { get; set; } = RuleCatalog.Empty;

    /// <summary>The outside conditions the minutes this batch closes are joined with (as of before an entry that ends the batch).</summary>
    public OutsideConditions Outside { get; set; } = OutsideConditions.Empty;

    public IReadOnlyDictionary<string, List<SensorWorkItem>> Sensors => _sensors;

    public List<RuleDefinitionChange> RuleChanges { get; } = [];

    public long ReceivedUpToMs { get; set; }

    public int Readings { get; private set; }

    public int DuplicatesSkipped { get; set; }

    public void Add(string sensorId, SensorWorkItem item)
    {
        if (!_sensors.TryGetValue(sensorId, out var items))
        {
            _sensors[sensorId] = items = _spare.TryPop(out var spare) ? spare : [];
        }

        items.Add(item);
        if (item.Reading is not null)
        {
            Readings++;
        }
    }

    public void Clear()
    {
        foreach (var items in _sensors.Values)
        {
            if (items.Capacity <= 64)
            {
                items.Clear();
                _spare.Push(items);
            }
        }

        _sensors.Clear();
        RuleChanges.Clear();
        Readings = 0;
        DuplicatesSkipped = 0;
    }
}
