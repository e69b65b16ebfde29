using System.Buffers;
using System.Globalization;
using System.Numerics;
using Grains.Abstractions;

namespace Grains;

/// <summary>
/// The logic of one sensor's grain: keeps latest values, the last readings and metadata, aggregates every metric per UTC
/// minute in event time, closes a minute once the sensor's clock passes its end plus the allowed lateness, fires offline
/// rules on that clock, and tells rule grains when a rule's condition starts or stops holding for this sensor (edges
/// only). Pure: no I/O, no clock reads (time comes from the readings and their receipt times), no static state, so
/// replaying the same log from the same state makes the same decisions.
/// <para>
/// The sensor's clock is its own: it moves with the event times of its readings (never past their receipt time, so a
/// device whose clock runs ahead closes nothing early) and, between readings, with receipt time. Another device's
/// timestamps never move it.
/// </para>
/// <para>
/// Memory and allocations: the state is slot-based (see <see cref="SensorState"/>). Applying a reading allocates
/// nothing in the steady state; only a new metric or attribute name, a new minute, changed metadata, a rule catalog
/// change and a signal to a rule grain allocate.
/// </para>
/// </summary>
public sealed class SensorLogic
{
    private const long MinuteMs = 60_000;
    private const int StackLimit = 64;

    private readonly SensorState _state;
    private readonly SensorGrainOptions _options;
    private readonly SensorNameTable _names;

    /// <summary>The stamp of the rule catalog <see cref="SensorState.Rules"/> was last synchronized with (null: synchronize at next use).</summary>
    private ulong? _syncedRules;

    /// <summary>The effective metadata (device's merged with operator's), computed when first needed after a change.</summary>
    private SensorMetadata? _effective;
    private bool _effectiveCurrent;

    /// <param name="names">Strings shared between the sensors of a silo; null: a table of this sensor's own.</param>
    public SensorLogic(string sensorId, SensorState? state, SensorGrainOptions options, SensorNameTable? names = null)
    {
        ArgumentNullException.ThrowIfNull(sensorId);
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _names = names ?? new SensorNameTable();
        _state = state is null ? new SensorState(sensorId) : Shared(state, _names);
        if (!ReferenceEquals(_state.SensorId, sensorId) && string.Equals(_state.SensorId, sensorId, StringComparison.Ordinal))
        {
            _state.SensorId = sensorId; // one instance of the id per sensor: the grain key already holds it
        }
        else if (string.IsNullOrEmpty(_state.SensorId))
        {
            _state.SensorId = sensorId;
        }
    }

    private string SensorId => _state.SensorId;

    /// <summary>The state to store (the same instance the logic changes).</summary>
    public SensorState State => _state;

    /// <summary>The greatest log position applied (-1: none).</summary>
    public long AppliedPosition => _state.AppliedPosition;

    /// <summary>
    /// The outside conditions of the locations as of the sensor's partition's position in the log (the grain sets them
    /// from its work): a minute that closes is joined with the values current at its end at the sensor's location.
    /// </summary>
    public OutsideConditions Outside { get; set; } = OutsideConditions.Empty;

    /// <summary>True once the sensor received a reading (counted or late).</summary>
    public bool Exists => _state.ClockMs != long.MinValue;

    /// <summary>True once the sensor received a reading or an operator set its metadata (a sensor registered before its first reading).</summary>
    public bool Known => Exists || _state.OperatorMetadata is not null;

    /// <summary>The sensor's clock as last set (<see cref="long.MinValue"/> before the first reading).</summary>
    public long ClockMs => _state.ClockMs;

    /// <summary>The receipt time at which <see cref="ClockMs"/> was last read.</summary>
    public long ClockReceivedAtMs => _state.ClockReceivedAtMs;

    public long? LastSeenMs => _state.LastSeenMs;

    /// <summary>The effective metadata: the device's, overridden field by field and tag by tag by the operator's (<see cref="SensorMetadataMerge"/>).</summary>
    public SensorMetadata? Metadata
    {
        get
        {
            if (!_effectiveCurrent)
            {
                _effective = SensorMetadataMerge.Effective(_state.Metadata, _state.OperatorMetadata);
                _effectiveCurrent = true;
            }

            return _effective;
        }
    }

    /// <summary>What an operator set; null when nothing.</summary>
    public OperatorMetadata? OperatorMetadata => _state.OperatorMetadata;

    /// <summary>
    /// Applies the work item at its log position: a reading (<see cref="Apply(long, Reading, long, RuleCatalog, IGrainEffects)"/>)
    /// or an operator's metadata change (<see cref="SetOperatorMetadata"/>); false when that position was already applied.
    /// </summary>
    public bool Apply(SensorWorkItem item, RuleCatalog rules, IGrainEffects effects)
    {
        if (item.Reading is { } reading)
        {
            return Apply(item.Position, reading, item.ReceivedAtMs, rules, effects);
        }

        ArgumentNullException.ThrowIfNull(item.OperatorMetadata, nameof(item));
        return SetOperatorMetadata(item.Position, item.OperatorMetadata, rules, effects);
    }

    /// <summary>
    /// An operator's metadata change at <paramref name="position"/> of the sensor's partition log: <paramref name="metadata"/>
    /// replaces what the operator had set (empty: nothing is set any more, the device's values show again). From this
    /// position on, rules target the sensor by the new effective location and model: a rule that stops targeting it while
    /// its condition holds is told the condition stopped holding (its alert resolves), a rule that starts targeting it
    /// evaluates the readings that come after. The sensor's clock does not move (a change is not a reading). False (and
    /// nothing changes) when that position was already applied.
    /// </summary>
    public bool SetOperatorMetadata(long position, OperatorMetadata metadata, RuleCatalog rules, IGrainEffects effects)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(effects);
        if (position <= _state.AppliedPosition)
        {
            return false;
        }

        _state.AppliedPosition = position;
        _state.OperatorMetadata = metadata.IsEmpty ? null : Shared(metadata, _names);
        _effectiveCurrent = false;
        Retarget(rules, effects);
        return true;
    }

    /// <summary>
    /// Applies the reading at <paramref name="position"/> (<see cref="LogPosition"/>) of the sensor's partition log,
    /// received at <paramref name="receivedAtMs"/>; false (and nothing changes) when that position was already applied.
    /// </summary>
    public bool Apply(long position, Reading reading, long receivedAtMs, RuleCatalog rules, IGrainEffects effects)
    {
        if (position <= _state.AppliedPosition)
        {
            return false;
        }

        _state.AppliedPosition = position;
        Apply(reading, receivedAtMs, rules, effects);
        return true;
    }

    /// <summary>
    /// Applies a reading received at <paramref name="receivedAtMs"/>: the clock first runs to the receipt time and takes
    /// the reading's event time when it is later (but not later than its receipt), what is due by then closes and fires,
    /// then the reading is counted in its minute, or as late when that minute has closed.
    /// </summary>
    public void Apply(Reading reading, long receivedAtMs, RuleCatalog rules, IGrainEffects effects)
    {
        ArgumentNullException.ThrowIfNull(reading);
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(effects);
        RunClock(receivedAtMs, Math.Min(reading.TimestampMs, receivedAtMs));
        CloseDue(rules, effects);
        OnReading(reading, rules, effects);
    }

    /// <summary>Lets the clock run to receipt time <paramref name="receivedAtMs"/> without a reading: closes the minutes and fires the offline rules due by then.</summary>
    public void Advance(long receivedAtMs, RuleCatalog rules, IGrainEffects effects)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(effects);
        if (!Exists)
        {
            return;
        }

        RunClock(receivedAtMs, null);
        CloseDue(rules, effects);
    }

    /// <summary>
    /// Records the rule grain's answer to this sensor's last signals: when (on this sensor's clock) it next needs to hear
    /// the clock; null when it does not. Ignored for a rule or version the sensor no longer tracks.
    /// </summary>
    public void SetRuleDue(string ruleId, long? dueMs)
    {
        foreach (var slot in _state.Rules ?? [])
        {
            if (string.Equals(slot.RuleId, ruleId, StringComparison.Ordinal))
            {
                slot.DueMs = dueMs;
                return;
            }
        }
    }

    /// <summary>
    /// The rules (id order) whose grains asked to hear this sensor's time and whose time has come, each with the time to
    /// tell (<see cref="RuleTimeMs"/>).
    /// </summary>
    public IReadOnlyList<(string RuleId, long TimeMs)> RulesDue()
    {
        List<(string, long)>? due = null;
        foreach (var slot in _state.Rules ?? [])
        {
            if (slot.DueMs is { } at && TimeFor(slot) is var time && at <= time)
            {
                (due ??= []).Add((slot.RuleId, time));
            }
        }

        return due ?? (IReadOnlyList<(string, long)>)[];
    }

    /// <summary>
    /// The time this sensor tells the grain of <paramref name="ruleId"/>: every signal with an earlier event time has been
    /// sent. For a minute-aggregate condition that is the start of the first minute not yet closed (a minute's signal is
    /// only known when it closes); otherwise the clock. Null when the rule does not target the sensor.
    /// </summary>
    public long? RuleTimeMs(string ruleId)
    {
        foreach (var slot in _state.Rules ?? [])
        {
            if (string.Equals(slot.RuleId, ruleId, StringComparison.Ordinal))
            {
                return TimeFor(slot);
            }
        }

        return null;
    }

    private long TimeFor(RuleSlot slot) =>
        IsAggregateRule(slot) ? MinuteOf(_state.ClockMs - _options.AllowedLatenessMs) : _state.ClockMs;

    private static bool IsAggregateRule(RuleSlot slot) =>
        slot.Rule?.Condition is { Kind: ConditionKind.Threshold, Source: not ConditionSource.Raw };

    /// <summary>The clock time at which something is next due (a minute closes, an offline deadline, a rule's timer); null when nothing is.</summary>
    public long? NextDueMs()
    {
        long? next = null;
        foreach (var window in _state.Windows ?? [])
        {
            next = Min(next, CloseTime(window.MinuteMs));
        }

        foreach (var slot in _state.Rules ?? [])
        {
            if (slot.DueMs is { } due)
            {
                // The clock time at which the rule's time (RuleTimeMs) reaches the due time.
                next = Min(next, IsAggregateRule(slot) ? CeilMinute(due) + _options.AllowedLatenessMs : due);
            }

            var condition = slot.Rule?.Condition;
            if (condition is { Kind: ConditionKind.Offline, Minutes: > 0 } && !slot.Holding && _state.LastSeenMs is { } lastSeen)
            {
                next = Min(next, lastSeen + condition.Minutes * MinuteMs);
            }
        }

        return next;
    }

    /// <summary>The receipt time at which the clock reaches <see cref="NextDueMs"/>; null when nothing is due.</summary>
    public long? WakeAtReceivedMs() =>
        NextDueMs() is { } due && Exists ? _state.ClockReceivedAtMs + Math.Max(0, due - _state.ClockMs) : null;

    /// <summary>
    /// Runs the clock to receipt time <paramref name="receivedAtMs"/> (it never goes back, and receipt times from several
    /// Api nodes may arrive slightly out of order), then takes <paramref name="eventTimeMs"/> when that is later.
    /// </summary>
    private void RunClock(long receivedAtMs, long? eventTimeMs)
    {
        var s = _state;
        if (s.ClockMs == long.MinValue)
        {
            s.ClockMs = eventTimeMs ?? receivedAtMs;
            s.ClockReceivedAtMs = receivedAtMs;
            return;
        }

        if (receivedAtMs > s.ClockReceivedAtMs)
        {
            s.ClockMs += receivedAtMs - s.ClockReceivedAtMs;
            s.ClockReceivedAtMs = receivedAtMs;
        }

        if (eventTimeMs is { } time && time > s.ClockMs)
        {
            s.ClockMs = time;
        }
    }

    /// <summary>Closes the windows due by the clock (in minute order), then fires the offline rules whose deadline passed.</summary>
    private void CloseDue(RuleCatalog catalog, IGrainEffects effects)
    {
        var now = _state.ClockMs;
        var rules = SyncRules(catalog);
        if (_state.Windows is { } windows && HasDue(windows, now))
        {
            CloseWindows(windows, now, rules, effects);
        }

        if (_state.LastSeenMs is { } lastSeen)
        {
            foreach (var slot in rules)
            {
                var rule = slot.Rule!;
                if (rule.Condition.Kind != ConditionKind.Offline || rule.Condition.Minutes <= 0)
                {
                    continue;
                }

                var deadline = lastSeen + rule.Condition.Minutes * MinuteMs;
                if (now >= deadline && !slot.Holding)
                {
                    var minutes = (double)((now - lastSeen) / MinuteMs);
                    Signal(slot, true, deadline, minutes, $"no data for {rule.Condition.Minutes} min", effects);
                }
            }
        }
    }

    /// <summary>True when a window's close time is at or before <paramref name="now"/> (a loop: called for every reading, it must not allocate).</summary>
    private bool HasDue(MinuteWindow[] windows, long now)
    {
        foreach (var window in windows)
        {
            if (CloseTime(window.MinuteMs) <= now)
            {
                return true;
            }
        }

        return false;
    }

    private void CloseWindows(MinuteWindow[] windows, long now, RuleSlot[] rules, IGrainEffects effects)
    {
        var due = windows.Where(w => CloseTime(w.MinuteMs) <= now).OrderBy(w => w.MinuteMs).ToList();
        var open = windows.Where(w => CloseTime(w.MinuteMs) > now).ToArray();
        _state.Windows = open.Length == 0 ? null : open;
        foreach (var window in due)
        {
            var aggregate = ToMinuteAggregate(window);
            if (Outside.At(Metadata?.Location, window.MinuteMs + MinuteMs, _options.OutsideMaxAgeMs) is { } outside)
            {
                aggregate = aggregate with { Outside = outside };
            }

            _state.LastClosedMinuteMs = _state.LastClosedMinuteMs is { } last ? Math.Max(last, window.MinuteMs) : window.MinuteMs;
            effects.Emit(aggregate);
            EvaluateAggregateRules(rules, aggregate, effects);
        }
    }

    /// <summary>The sensor's read-model record (what the sensor list shows).</summary>
    public SensorSummary Snapshot()
    {
        var latest = new Dictionary<string, double>(_state.Metrics.Length, StringComparer.Ordinal);
        for (var slot = 0; slot < _state.Metrics.Length; slot++)
        {
            if (HasLatest(slot))
            {
                latest[_state.Metrics[slot]] = _state.LatestValues[slot];
            }
        }

        Dictionary<string, string>? attributes = null;
        for (var slot = 0; slot < _state.AttributeNames.Length; slot++)
        {
            if (_state.AttributeValues![slot] is { } value)
            {
                (attributes ??= new(StringComparer.Ordinal))[_state.AttributeNames[slot]] = value;
            }
        }

        return new SensorSummary
        {
            SensorId = SensorId,
            LastSeenMs = _state.LastSeenMs,
            Metadata = CopyMetadata(Metadata),
            OperatorMetadata = CopyMetadata(_state.OperatorMetadata),
            Latest = latest,
            Attributes = attributes,
            LateCount = _state.LateCount,
            AppliedPosition = _state.AppliedPosition,
        };
    }

    /// <summary>The state as plain dictionaries and lists, with the current minute, for queries: a copy, allocated on each call.</summary>
    public SensorView View()
    {
        var s = _state;
        var view = new SensorView
        {
            SensorId = SensorId,
            Metadata = CopyMetadata(Metadata),
            DeviceMetadata = CopyMetadata(s.Metadata),
            OperatorMetadata = CopyMetadata(s.OperatorMetadata),
            LastSeenMs = s.LastSeenMs,
            LastClosedMinuteMs = s.LastClosedMinuteMs,
            LateCount = s.LateCount,
            NamesDropped = s.NamesDropped,
            LastLate = s.LastLate is { } late ? new LateReadingInfo { TimestampMs = late.TimestampMs, MinuteMs = late.MinuteMs } : null,
            ClockMs = s.ClockMs,
            CurrentMinute = CurrentMinute(),
        };
        for (var slot = 0; slot < s.Metrics.Length; slot++)
        {
            if (HasLatest(slot))
            {
                view.Latest[s.Metrics[slot]] = new TimedValue { Value = s.LatestValues[slot], TimeMs = s.LatestTimes[slot] };
            }
        }

        for (var slot = 0; slot < s.AttributeNames.Length; slot++)
        {
            if (s.AttributeValues![slot] is { } value)
            {
                view.Attributes[s.AttributeNames[slot]] = new TimedAttribute { Value = value, TimeMs = s.AttributeTimes![slot] };
            }
        }

        var stride = s.Metrics.Length;
        var attributeStride = s.AttributeNames.Length;
        var words = SensorState.FlagWords(stride);
        for (var row = 0; row < s.ReadingCount; row++)
        {
            var flags = s.ReadingFlags.AsSpan(row * words, words);
            var record = new ReadingRecord { TimestampMs = s.ReadingTimes![row], Late = (flags[0] & 1) != 0 };
            for (var slot = 0; slot < stride; slot++)
            {
                if (IsSet(flags, slot + 1))
                {
                    record.Metrics[s.Metrics[slot]] = s.ReadingValues![row * stride + slot];
                }
            }

            for (var slot = 0; slot < attributeStride && s.ReadingAttributes is not null; slot++)
            {
                if (s.ReadingAttributes[row * attributeStride + slot] is { } value)
                {
                    (record.Attributes ??= new(StringComparer.Ordinal))[s.AttributeNames[slot]] = value;
                }
            }

            view.LastReadings.Add(record);
        }

        foreach (var window in s.Windows ?? [])
        {
            var metrics = new Dictionary<string, RunningAggregate>(StringComparer.Ordinal);
            for (var slot = 0; slot < window.Slots.Length; slot++)
            {
                ref var a = ref window.Slots[slot];
                if (a.Count > 0)
                {
                    metrics[s.Metrics[slot]] = new RunningAggregate
                    {
                        Count = a.Count,
                        Min = a.Min,
                        Max = a.Max,
                        Sum = a.Sum,
                        First = a.First,
                        FirstTimeMs = window.MinuteMs + a.FirstOffsetMs,
                        Last = a.Last,
                        LastTimeMs = window.MinuteMs + a.LastOffsetMs,
                    };
                }
            }

            view.Windows[window.MinuteMs] = metrics;
        }

        foreach (var rule in s.Rules ?? [])
        {
            view.Rules[rule.RuleId] = new RuleConditionState { Version = rule.Version, Holding = rule.Holding, SinceMs = rule.SinceMs };
        }

        return view;
    }

    /// <summary>
    /// Evaluates the minute-aggregate conditions of the rules targeting this sensor on a minute closed earlier (read
    /// back from the store), exactly as the clock does when it closes a minute: a signal is sent to the rule
    /// grain when a condition starts or stops holding. Used to replay stored history (rule previews); windows,
    /// latest values and counts are left as they are.
    /// </summary>
    public void ReplayClosedMinute(MinuteAggregate aggregate, RuleCatalog rules, IGrainEffects effects)
    {
        ArgumentNullException.ThrowIfNull(aggregate);
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(effects);
        EvaluateAggregateRules(SyncRules(rules), aggregate, effects);
    }

    /// <summary>The newest open minute window as it stands now; null when no window is open.</summary>
    public MinuteAggregate? CurrentMinute()
    {
        if (_state.Windows is not { } windows)
        {
            return null;
        }

        var newest = windows[0];
        foreach (var window in windows)
        {
            if (window.MinuteMs > newest.MinuteMs)
            {
                newest = window;
            }
        }

        return ToMinuteAggregate(newest);
    }

    private void OnReading(Reading reading, RuleCatalog rules, IGrainEffects effects)
    {
        var time = reading.TimestampMs;
        var minute = MinuteOf(time);
        var late = minute <= _state.LastClosedMinuteMs || CloseTime(minute) <= _state.ClockMs;

        // Slots of the reading's metrics and attributes (new names get new slots), then its values by slot: a name
        // repeated within one reading keeps its last value.
        var metrics = reading.Metrics ?? [];
        var attributes = reading.Attributes ?? [];
        int[]? rentedSlots = null;
        Span<int> metricSlots = metrics.Length <= StackLimit ? stackalloc int[metrics.Length] : (rentedSlots = ArrayPool<int>.Shared.Rent(metrics.Length)).AsSpan(0, metrics.Length);
        Span<int> attributeSlots = attributes.Length <= StackLimit ? stackalloc int[attributes.Length] : new int[attributes.Length];
        var knownSlots = _state.Metrics.Length;
        ResolveSlots(metrics, attributes, metricSlots, attributeSlots, late);

        var stride = _state.Metrics.Length;
        var words = SensorState.FlagWords(stride);
        double[]? rentedValues = null;
        Span<double> values = stride <= StackLimit ? stackalloc double[StackLimit] : (rentedValues = ArrayPool<double>.Shared.Rent(stride));
        values = values[..stride];
        Span<ulong> present = words <= 4 ? stackalloc ulong[4] : new ulong[words];
        present = present[..words];
        present.Clear();
        values.Clear();
        present[0] = late ? 1UL : 0;
        for (var i = 0; i < metrics.Length; i++)
        {
            var slot = metricSlots[i];
            if (slot < 0)
            {
                continue; // past the sensor's names (counted in NamesDropped)
            }

            values[slot] = metrics[i].Value;
            present[(slot + 1) >> 6] |= 1UL << ((slot + 1) & 63);
        }

        string?[]? readingAttributes = null;
        if (attributes.Length > 0)
        {
            readingAttributes = ArrayPool<string?>.Shared.Rent(_state.AttributeNames.Length);
            Array.Clear(readingAttributes);
            for (var i = 0; i < attributes.Length; i++)
            {
                if (attributeSlots[i] >= 0)
                {
                    readingAttributes[attributeSlots[i]] = attributes[i].Value;
                }
            }
        }

        try
        {
            Apply(reading, time, minute, late, knownSlots, values, present, readingAttributes, rules, effects);
        }
        finally
        {
            if (readingAttributes is not null)
            {
                ArrayPool<string?>.Shared.Return(readingAttributes, clearArray: true);
            }

            if (rentedValues is not null)
            {
                ArrayPool<double>.Shared.Return(rentedValues);
            }

            if (rentedSlots is not null)
            {
                ArrayPool<int>.Shared.Return(rentedSlots);
            }
        }
    }

    private void Apply(
        Reading reading,
        long time,
        long minute,
        bool late,
        int knownSlots,
        ReadOnlySpan<double> values,
        ReadOnlySpan<ulong> present,
        string?[]? attributes,
        RuleCatalog catalog,
        IGrainEffects effects)
    {
        Remember(time, values, present, attributes);
        if (late)
        {
            _state.LateCount++;
            _state.LastLate = new LateReadingInfo { TimestampMs = time, MinuteMs = minute };
            return;
        }

        if (MergeMetadata(reading.Metadata))
        {
            Retarget(catalog, effects);
        }

        _state.LastSeenMs = _state.LastSeenMs is { } seen ? Math.Max(seen, time) : time;
        var window = HasAnyMetric(present) ? WindowFor(minute) : null;
        for (var slot = 0; slot < values.Length; slot++)
        {
            if (!IsSet(present, slot + 1))
            {
                continue;
            }

            var value = values[slot];
            if (slot >= knownSlots || !HasLatest(slot) || time >= _state.LatestTimes[slot])
            {
                _state.LatestValues[slot] = value;
                _state.LatestTimes[slot] = time;
                if (_state.LatestAbsent is { } absent)
                {
                    absent[slot >> 6] &= ~(1UL << (slot & 63));
                }
            }

            Accumulate(window!, slot, value, (int)(time - minute));
        }

        if (attributes is not null)
        {
            var stored = _state.ReadingCount > 0 ? _state.ReadingAttributes : null;
            for (var slot = 0; slot < _state.AttributeNames.Length; slot++)
            {
                if (attributes[slot] is { } value && (_state.AttributeValues![slot] is null || time >= _state.AttributeTimes![slot]))
                {
                    _state.AttributeValues![slot] = Share(value, _state.AttributeValues[slot], stored?[slot]);
                    _state.AttributeTimes![slot] = time;
                }
            }
        }

        foreach (var slot in SyncRules(catalog))
        {
            var rule = slot.Rule!;
            var condition = rule.Condition;
            if (condition.Kind == ConditionKind.Offline)
            {
                Signal(slot, false, time, null, "data received", effects);
            }
            else if (condition.Kind == ConditionKind.Threshold
                && condition.Source == ConditionSource.Raw
                && condition.Metric is { } metric
                && SlotOf(_state.Metrics, metric) is var metricSlot and >= 0
                && metricSlot < values.Length
                && IsSet(present, metricSlot + 1))
            {
                var value = values[metricSlot];
                var holds = condition.Holds(value);
                if (holds != slot.Holding)
                {
                    var text = $"{Format(value)} {RuleCondition.Symbol(condition.Operator)} {Format(condition.Value)}";
                    Signal(slot, holds, time, value, text, effects);
                }
            }
        }
    }

    /// <summary>Fills the slot of every metric and attribute of the reading, giving new names new slots (one layout change per reading).</summary>
    /// <remarks>
    /// Names past <see cref="SensorGrainOptions.MaxMetricNames"/> / <see cref="SensorGrainOptions.MaxAttributeNames"/> get
    /// slot -1: their values are not stored, only counted (<see cref="SensorState.NamesDropped"/>). The Api admits names
    /// before it appends a reading (<see cref="Admit"/>), so this happens only when admissions raced or one was lost.
    /// </remarks>
    private void ResolveSlots(MetricValue[] metrics, AttributeValue[] attributes, Span<int> metricSlots, Span<int> attributeSlots, bool late)
    {
        if (ResolveSlots(metrics, static m => m.Name, _state.Metrics, metricSlots, _options.MaxMetricNames, ref _state.NamesDropped) is { } addedMetrics)
        {
            AddMetrics(addedMetrics, late);
        }

        if (ResolveSlots(attributes, static a => a.Name, _state.AttributeNames, attributeSlots, _options.MaxAttributeNames, ref _state.NamesDropped)
            is { } addedAttributes)
        {
            AddAttributes(addedAttributes);
        }
    }

    /// <summary>
    /// Gives the sensor the names a reading is about to bring, as the Api asks before appending it: names it has, and
    /// new ones while there is room (as slots without a value yet), are admitted; the others are returned. Admitted
    /// names count against the limits at once, so that readings admitted one after another never pass them.
    /// </summary>
    public NameAdmission Admit(IReadOnlyList<string> metrics, IReadOnlyList<string> attributes)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(attributes);
        var refusedMetrics = Admit(metrics, _state.Metrics, _options.MaxMetricNames, out var addedMetrics);
        if (addedMetrics is not null)
        {
            AddMetrics(addedMetrics, late: true);
        }

        var refusedAttributes = Admit(attributes, _state.AttributeNames, _options.MaxAttributeNames, out var addedAttributes);
        if (addedAttributes is not null)
        {
            AddAttributes(addedAttributes);
        }

        return new NameAdmission(refusedMetrics, refusedAttributes, _options.MaxMetricNames, _options.MaxAttributeNames,
            addedMetrics is not null || addedAttributes is not null);
    }

    private static string[] Admit(IReadOnlyList<string> names, string[] layout, int max, out List<string>? added)
    {
        added = null;
        List<string>? refused = null;
        foreach (var name in names)
        {
            if (SlotOf(layout, name) >= 0 || added?.Contains(name) == true || refused?.Contains(name) == true)
            {
                continue;
            }

            if (layout.Length + (added?.Count ?? 0) < max)
            {
                (added ??= []).Add(name);
            }
            else
            {
                (refused ??= []).Add(name);
            }
        }

        return refused is null ? [] : [.. refused];
    }

    /// <summary>
    /// The slot of each item's name in <paramref name="layout"/> (a name not in it gets the next free slot, in order
    /// of first appearance); returns the names to add to the layout, or null when there are none.
    /// </summary>
    private static List<string>? ResolveSlots<T>(T[] items, Func<T, string> nameOf, string[] layout, Span<int> slots, int max, ref long dropped)
    {
        List<string>? added = null;
        for (var i = 0; i < items.Length; i++)
        {
            var name = nameOf(items[i]);
            var slot = i < layout.Length && string.Equals(layout[i], name, StringComparison.Ordinal) ? i : SlotOf(layout, name);
            if (slot < 0)
            {
                added ??= [];
                var index = added.IndexOf(name);
                if (index < 0 && layout.Length + added.Count >= max)
                {
                    dropped++;
                    slots[i] = -1;
                    continue;
                }

                if (index < 0)
                {
                    index = added.Count;
                    added.Add(name);
                }

                slot = layout.Length + index;
            }

            slots[i] = slot;
        }

        return added is { Count: > 0 } ? added : null;
    }

    private void AddMetrics(List<string> added, bool late)
    {
        var s = _state;
        var oldStride = s.Metrics.Length;
        s.Metrics = _names.Extend(s.Metrics, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(added));
        var stride = s.Metrics.Length;
        Array.Resize(ref s.LatestValues, stride);
        Array.Resize(ref s.LatestTimes, stride);
        if (s.LatestAbsent is not null || late)
        {
            var absent = new ulong[(stride + 63) >> 6];
            s.LatestAbsent?.CopyTo(absent, 0);
            if (late)
            {
                for (var slot = oldStride; slot < stride; slot++)
                {
                    absent[slot >> 6] |= 1UL << (slot & 63);
                }
            }

            s.LatestAbsent = absent;
        }

        // Re-lay the last readings out with the new stride.
        if (s.ReadingTimes is { } times)
        {
            var rows = times.Length;
            var oldWords = SensorState.FlagWords(oldStride);
            var words = SensorState.FlagWords(stride);
            var values = new double[rows * stride];
            var flags = new ulong[rows * words];
            for (var row = 0; row < s.ReadingCount; row++)
            {
                s.ReadingValues.AsSpan(row * oldStride, oldStride).CopyTo(values.AsSpan(row * stride));
                s.ReadingFlags.AsSpan(row * oldWords, oldWords).CopyTo(flags.AsSpan(row * words));
            }

            s.ReadingValues = values;
            s.ReadingFlags = flags;
        }

    }

    private void AddAttributes(List<string> added)
    {
        var s = _state;
        var oldStride = s.AttributeNames.Length;
        s.AttributeNames = _names.Extend(s.AttributeNames, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(added));
        var stride = s.AttributeNames.Length;
        Array.Resize(ref s.AttributeValues, stride);
        Array.Resize(ref s.AttributeTimes, stride);
        if (s.ReadingTimes is { } times)
        {
            var attributes = new string?[times.Length * stride];
            for (var row = 0; row < s.ReadingCount && s.ReadingAttributes is not null; row++)
            {
                s.ReadingAttributes.AsSpan(row * oldStride, oldStride).CopyTo(attributes.AsSpan(row * stride));
            }

            s.ReadingAttributes = attributes;
        }
    }

    /// <summary>Inserts the reading as the newest of the last readings, dropping the oldest beyond the configured count.</summary>
    private void Remember(long time, ReadOnlySpan<double> values, ReadOnlySpan<ulong> present, string?[]? attributes)
    {
        var s = _state;
        var capacity = Math.Max(0, _options.LastReadingsCount);
        if (capacity == 0)
        {
            s.ReadingCount = 0;
            return;
        }

        var stride = s.Metrics.Length;
        var words = present.Length;
        var attributeStride = s.AttributeNames.Length;
        if (s.ReadingTimes is null || s.ReadingTimes.Length < capacity)
        {
            var rows = capacity;
            var times = new long[rows];
            var newValues = new double[rows * stride];
            var flags = new ulong[rows * words];
            var newAttributes = attributeStride > 0 ? new string?[rows * attributeStride] : null;
            if (s.ReadingTimes is not null)
            {
                s.ReadingTimes.AsSpan(0, s.ReadingCount).CopyTo(times);
                s.ReadingValues.AsSpan(0, s.ReadingCount * stride).CopyTo(newValues);
                s.ReadingFlags.AsSpan(0, s.ReadingCount * words).CopyTo(flags);
                s.ReadingAttributes.AsSpan(0, s.ReadingAttributes is null ? 0 : s.ReadingCount * attributeStride).CopyTo(newAttributes);
            }

            s.ReadingTimes = times;
            s.ReadingValues = newValues;
            s.ReadingFlags = flags;
            s.ReadingAttributes = newAttributes;
        }
        else if (attributeStride > 0 && s.ReadingAttributes is null)
        {
            s.ReadingAttributes = new string?[s.ReadingTimes.Length * attributeStride];
        }

        var count = Math.Min(s.ReadingCount + 1, capacity);
        var shifted = count - 1;
        s.ReadingTimes.AsSpan(0, shifted).CopyTo(s.ReadingTimes.AsSpan(1));
        s.ReadingValues.AsSpan(0, shifted * stride).CopyTo(s.ReadingValues.AsSpan(stride));
        s.ReadingFlags.AsSpan(0, shifted * words).CopyTo(s.ReadingFlags.AsSpan(words));
        s.ReadingTimes[0] = time;
        values.CopyTo(s.ReadingValues);
        present.CopyTo(s.ReadingFlags);
        if (s.ReadingAttributes is { } stored)
        {
            stored.AsSpan(0, shifted * attributeStride).CopyTo(stored.AsSpan(attributeStride));
            for (var slot = 0; slot < attributeStride; slot++)
            {
                // Share the instance the sensor already holds for an equal value (no lookup), else the silo's.
                stored[slot] = attributes?[slot] is { } value ? Share(value, s.AttributeValues![slot], shifted > 0 ? stored[attributeStride + slot] : null) : null;
            }
        }

        s.ReadingCount = count;
    }

    private MinuteWindow WindowFor(long minute)
    {
        var windows = _state.Windows;
        if (windows is not null)
        {
            foreach (var window in windows)
            {
                if (window.MinuteMs == minute)
                {
                    if (window.Slots.Length < _state.Metrics.Length)
                    {
                        var slots = window.Slots;
                        Array.Resize(ref slots, _state.Metrics.Length);
                        window.Slots = slots;
                    }

                    return window;
                }
            }
        }

        var created = new MinuteWindow(minute, _state.Metrics.Length);
        _state.Windows = windows is null ? [created] : [.. windows, created];
        return created;
    }

    private static void Accumulate(MinuteWindow window, int slot, double value, int offset)
    {
        ref var a = ref window.Slots[slot];
        if (a.Count == 0)
        {
            a = new Accumulator
            {
                Count = 1,
                Min = value,
                Max = value,
                Sum = value,
                First = value,
                FirstOffsetMs = offset,
                Last = value,
                LastOffsetMs = offset,
            };
            return;
        }

        a.Count++;
        a.Min = Math.Min(a.Min, value);
        a.Max = Math.Max(a.Max, value);
        a.Sum += value;
        if (offset < a.FirstOffsetMs)
        {
            a.First = value;
            a.FirstOffsetMs = offset;
        }

        if (offset >= a.LastOffsetMs)
        {
            a.Last = value;
            a.LastOffsetMs = offset;
        }
    }

    /// <summary>Merges a reading's metadata into the device's; true when that changed it.</summary>
    private bool MergeMetadata(SensorMetadata? incoming)
    {
        if (incoming is null)
        {
            return false;
        }

        var current = _state.Metadata;
        if (current is not null && Unchanged(current, incoming))
        {
            return false;
        }

        Dictionary<string, string>? extra = null;
        if (current?.Extra is { Count: > 0 } || incoming.Extra is { Count: > 0 })
        {
            extra = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in current?.Extra ?? [])
            {
                extra[k] = v;
            }

            foreach (var (k, v) in incoming.Extra ?? [])
            {
                extra[k] = v;
            }
        }

        _state.Metadata = Shared(
            new SensorMetadata
            {
                Model = incoming.Model ?? current?.Model,
                Location = incoming.Location ?? current?.Location,
                Owner = incoming.Owner ?? current?.Owner,
                Version = incoming.Version ?? current?.Version,
                Extra = extra,
            },
            _names);
        _effectiveCurrent = false;
        return true;
    }

    /// <summary>
    /// Brings the rules that target this sensor in line with its effective metadata after it changed (location and model
    /// decide location and model targets). A rule that no longer targets the sensor while its condition holds is told,
    /// at the sensor's clock, that the condition stopped holding, so its alert resolves rather than staying open for a
    /// sensor the rule no longer watches. A rule that now targets it starts from "not holding": only readings and
    /// minutes from this point on can open its alerts.
    /// </summary>
    private void Retarget(RuleCatalog catalog, IGrainEffects effects)
    {
        var before = _state.Rules;
        _syncedRules = null;
        if (!Exists)
        {
            return; // no reading yet: no rule was told anything, and the next reading synchronizes
        }

        var after = SyncRules(catalog);
        foreach (var slot in before ?? [])
        {
            if (!slot.Holding || Array.IndexOf(after, slot) >= 0
                || catalog.Find(slot.RuleId) is not { Enabled: true } rule || rule.Version != slot.Version)
            {
                continue; // still targeted, or the rule itself changed (its grain resolves its alerts then)
            }

            slot.Rule = rule;
            Signal(slot, false, _state.ClockMs, null, "the sensor left the rule's target", effects);
        }
    }

    /// <summary>True when merging <paramref name="incoming"/> into <paramref name="current"/> gives an equal metadata.</summary>
    private static bool Unchanged(SensorMetadata current, SensorMetadata incoming)
    {
        if ((incoming.Model is not null && !string.Equals(incoming.Model, current.Model, StringComparison.Ordinal))
            || (incoming.Location is not null && !string.Equals(incoming.Location, current.Location, StringComparison.Ordinal))
            || (incoming.Owner is not null && !string.Equals(incoming.Owner, current.Owner, StringComparison.Ordinal))
            || (incoming.Version is not null && !string.Equals(incoming.Version, current.Version, StringComparison.Ordinal)))
        {
            return false;
        }

        if (incoming.Extra is not { Count: > 0 })
        {
            // The merge keeps current's entries, or none: an empty Extra would become null.
            return current.Extra is null or { Count: > 0 };
        }

        if (current.Extra is null)
        {
            return false;
        }

        foreach (var (k, v) in incoming.Extra)
        {
            if (!current.Extra.TryGetValue(k, out var existing) || !string.Equals(existing, v, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// A stored state read back (its strings are its own) with its names, metadata and attribute values replaced by the
    /// silo's shared instances: equal values, one copy per silo.
    /// </summary>
    private static SensorState Shared(SensorState s, SensorNameTable names)
    {
        s.Metrics = names.Share(s.Metrics);
        s.AttributeNames = names.Share(s.AttributeNames);
        if (s.Metadata is { } metadata)
        {
            s.Metadata = Shared(metadata, names);
        }

        if (s.OperatorMetadata is { } operatorMetadata)
        {
            s.OperatorMetadata = Shared(operatorMetadata, names);
        }

        InternAll(s.AttributeValues, names);
        InternAll(s.ReadingAttributes, names);
        return s;
    }

    private static void InternAll(string?[]? values, SensorNameTable names)
    {
        for (var i = 0; values is not null && i < values.Length; i++)
        {
            if (values[i] is { } value)
            {
                values[i] = names.Intern(value);
            }
        }
    }

    /// <summary>Metadata whose known fields are the silo's shared strings.</summary>
    internal static SensorMetadata Shared(SensorMetadata metadata, SensorNameTable names) => metadata with
    {
        Model = metadata.Model is { } model ? names.Intern(model) : null,
        Location = metadata.Location is { } location ? names.Intern(location) : null,
        Owner = metadata.Owner is { } owner ? names.Intern(owner) : null,
        Version = metadata.Version is { } version ? names.Intern(version) : null,
    };

    private void EvaluateAggregateRules(RuleSlot[] rules, MinuteAggregate aggregate, IGrainEffects effects)
    {
        foreach (var slot in rules)
        {
            var rule = slot.Rule!;
            var condition = rule.Condition;
            if (condition.Kind != ConditionKind.Threshold || condition.Source == ConditionSource.Raw || condition.Metric is not { } metric)
            {
                continue;
            }

            var stats = Array.Find(aggregate.Metrics, m => string.Equals(m.Metric, metric, StringComparison.Ordinal));
            if (stats is null)
            {
                continue;
            }

            if (StatOf(condition.Source, stats) is not { } value)
            {
                continue;
            }

            string text;
            if (condition.OutsideMetric is { } outsideMetric)
            {
                // Compared with the outside value joined into the minute; a minute without one leaves the condition as it was.
                if (Array.FindIndex(aggregate.Outside ?? [], o => string.Equals(o.Name, outsideMetric, StringComparison.Ordinal)) is var at && at < 0)
                {
                    continue;
                }

                var outside = aggregate.Outside![at].Value;
                var difference = value - outside;
                text = $"{SourceName(condition.Source)} {Format(value)} - outside {Format(outside)} = {Format(difference)} {RuleCondition.Symbol(condition.Operator)} {Format(condition.Value)}";
                value = difference;
            }
            else
            {
                text = $"{SourceName(condition.Source)} {Format(value)} {RuleCondition.Symbol(condition.Operator)} {Format(condition.Value)}";
            }

            var holds = condition.Holds(value);
            if (holds != slot.Holding)
            {
                Signal(slot, holds, aggregate.MinuteMs, value, text, effects);
            }
        }
    }

    /// <summary>Sends a signal when <paramref name="holding"/> differs from what the rule grain was last told.</summary>
    private void Signal(RuleSlot slot, bool holding, long eventTimeMs, double? value, string message, IGrainEffects effects)
    {
        if (slot.Holding == holding)
        {
            return;
        }

        var rule = slot.Rule!;
        slot.Holding = holding;
        slot.SinceMs = holding ? eventTimeMs : null;
        effects.Send(new ConditionSignal
        {
            Sequence = ++_state.SignalSequence,
            RuleId = rule.Id,
            RuleVersion = rule.Version,
            SensorId = SensorId,
            Holding = holding,
            EventTimeMs = eventTimeMs,
            Value = value,
            Message = message,
        });
    }

    /// <summary>
    /// Returns the per-rule state of the enabled rules that target this sensor (in rule id order, each with its rule)
    /// and brings it in line with the catalog: state of rules that vanished, were disabled or stopped targeting is
    /// dropped; state of another rule version is reset to "not holding" for the current version. Allocates nothing
    /// while the catalog and the metadata stay the same.
    /// </summary>
    private RuleSlot[] SyncRules(RuleCatalog catalog)
    {
        if (_syncedRules == catalog.Stamp)
        {
            return _state.Rules ?? [];
        }

        var enabled = catalog.Enabled;
        var count = 0;
        foreach (var rule in enabled)
        {
            if (rule.Targets(SensorId, Metadata))
            {
                count++;
            }
        }

        RuleSlot[]? slots = null;
        if (count > 0)
        {
            slots = new RuleSlot[count];
            var i = 0;
            foreach (var rule in enabled)
            {
                if (!rule.Targets(SensorId, Metadata))
                {
                    continue;
                }

                var existing = Array.Find(_state.Rules ?? [], r => string.Equals(r.RuleId, rule.Id, StringComparison.Ordinal));
                var slot = existing is not null && existing.Version == rule.Version ? existing : new RuleSlot(rule.Id, rule.Version);
                slot.Rule = rule;
                slots[i++] = slot;
            }
        }

        _state.Rules = slots;
        _syncedRules = catalog.Stamp;
        return slots ?? [];
    }

    private long CloseTime(long minute) => minute + MinuteMs + _options.AllowedLatenessMs;

    private MinuteAggregate ToMinuteAggregate(MinuteWindow window)
    {
        var slots = new List<int>(window.Slots.Length);
        for (var slot = 0; slot < window.Slots.Length; slot++)
        {
            if (window.Slots[slot].Count > 0)
            {
                slots.Add(slot);
            }
        }

        var names = _state.Metrics;
        slots.Sort((x, y) => string.CompareOrdinal(names[x], names[y]));
        var metrics = new MetricAggregate[slots.Count];
        for (var i = 0; i < metrics.Length; i++)
        {
            var a = window.Slots[slots[i]];
            metrics[i] = new MetricAggregate
            {
                Metric = names[slots[i]],
                Count = a.Count,
                Min = a.Min,
                Max = a.Max,
                Sum = a.Sum,
                First = a.First,
                Last = a.Last,
            };
        }

        return new MinuteAggregate { SensorId = SensorId, MinuteMs = window.MinuteMs, Metrics = metrics };
    }

    private bool HasLatest(int slot) => !IsSet(_state.LatestAbsent, slot);

    /// <summary>An instance equal to <paramref name="value"/>: one of the candidates when equal, else the silo's shared one.</summary>
    private string Share(string value, string? candidate, string? other = null) =>
        string.Equals(value, candidate, StringComparison.Ordinal) ? candidate!
        : string.Equals(value, other, StringComparison.Ordinal) ? other!
        : _names.Intern(value);

    private static int SlotOf(string[] names, string name)
    {
        for (var i = 0; i < names.Length; i++)
        {
            if (string.Equals(names[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private static bool IsSet(ReadOnlySpan<ulong> bits, int index) =>
        (index >> 6) < bits.Length && (bits[index >> 6] & (1UL << (index & 63))) != 0;

    /// <summary>True when any metric presence bit (bit 1 on) is set.</summary>
    private static bool HasAnyMetric(ReadOnlySpan<ulong> present)
    {
        if ((present[0] >> 1) != 0)
        {
            return true;
        }

        for (var w = 1; w < present.Length; w++)
        {
            if (present[w] != 0)
            {
                return true;
            }
        }

        return false;
    }

    private static long MinuteOf(long timeMs) => timeMs - (((timeMs % MinuteMs) + MinuteMs) % MinuteMs);

    private static long CeilMinute(long timeMs) => MinuteOf(timeMs) == timeMs ? timeMs : MinuteOf(timeMs) + MinuteMs;

    private static long? Min(long? a, long b) => a is { } x ? Math.Min(x, b) : b;

    private static SensorMetadata? CopyMetadata(SensorMetadata? metadata) => metadata is null
        ? null
        : metadata with { Extra = metadata.Extra is null ? null : new Dictionary<string, string>(metadata.Extra, StringComparer.Ordinal) };

    private static OperatorMetadata? CopyMetadata(OperatorMetadata? metadata) => metadata is null
        ? null
        : metadata with { Tags = metadata.Tags is null ? null : new Dictionary<string, string>(metadata.Tags, StringComparer.Ordinal) };

    /// <summary>Operator metadata whose fields are the silo's shared strings.</summary>
    private static OperatorMetadata Shared(OperatorMetadata metadata, SensorNameTable names) => metadata with
    {
        Model = metadata.Model is { } model ? names.Intern(model) : null,
        Location = metadata.Location is { } location ? names.Intern(location) : null,
        Owner = metadata.Owner is { } owner ? names.Intern(owner) : null,
    };

    private static double? StatOf(ConditionSource source, MetricAggregate stats) => source switch
    {
        ConditionSource.Avg => stats.Avg,
        ConditionSource.Min => stats.Min,
        ConditionSource.Max => stats.Max,
        ConditionSource.Sum => stats.Sum,
        ConditionSource.Count => stats.Count,
        ConditionSource.Last => stats.Last,
        _ => null,
    };

    private static string Format(double value) => value.ToString("G", CultureInfo.InvariantCulture);

    private static string SourceName(ConditionSource source) => source switch
    {
        ConditionSource.Avg => "avg",
        ConditionSource.Min => "min",
        ConditionSource.Max => "max",
        ConditionSource.Sum => "sum",
        ConditionSource.Count => "count",
        ConditionSource.Last => "last",
        _ => "raw",
    };
}
