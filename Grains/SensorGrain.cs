using System.Buffers;
using System.Globalization;
using System.Numerics;
using Grains.Abstractions;

namespace Grains;

/// <summary>
/// One grain per sensor: keeps latest values, the last readings and metadata, aggregates every metric per UTC
/// minute in event time, closes a minute once stream time passes its end plus the allowed lateness, and tells
/// rule grains when a rule's condition starts or stops holding for this sensor (edges only).
/// <para>
/// Memory and allocations: the state is slot-based (see <see cref="SensorState"/>). Applying a reading allocates
/// nothing in the steady state; only a new metric or attribute name, a new minute, changed metadata, a rule catalog
/// change and a signal to a rule grain allocate.
/// </para>
/// </summary>
public sealed class SensorGrain : IGrain
{
    private const long MinuteMs = 60_000;
    private const int StackLimit = 64;

    private readonly SensorState _state;
    private readonly SensorGrainOptions _options;
    private readonly SensorNameTable _names;

    /// <summary>The rule catalog <see cref="SensorState.Rules"/> was last synchronized with (null: synchronize at next use).</summary>
    private RuleCatalog? _syncedRules;

    /// <param name="names">Strings shared between the sensors of a silo; null: a table of this grain's own.</param>
    public SensorGrain(string sensorId, SensorState? state, SensorGrainOptions options, SensorNameTable? names = null)
    {
        ArgumentNullException.ThrowIfNull(sensorId);
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _names = names ?? new SensorNameTable();
        _state = state ?? new SensorState(sensorId);
        if (!ReferenceEquals(_state.SensorId, sensorId) && string.Equals(_state.SensorId, sensorId, StringComparison.Ordinal))
        {
            _state.SensorId = sensorId; // one instance of the id per sensor: the runtime already holds the grain key
        }
    }

    private string SensorId => _state.SensorId;

    public object State => _state;

    public void Receive(GrainMessage message, IGrainContext context)
    {
        switch (message)
        {
            case Reading reading:
                OnReading(reading, context);
                break;
            case RuleDefinitionChanged:
                // Not required, but if the runtime delivers it, drop stale rule states and re-plan the wake-up
                // (a new offline rule then fires even while the sensor stays silent).
                SyncRules(context);
                RequestWake(context);
                break;
        }
    }

    public void Wake(IGrainContext context)
    {
        var now = context.StreamTimeMs;
        var rules = SyncRules(context);
        if (_state.Windows is { } windows)
        {
            var due = windows.Where(w => CloseTime(w.MinuteMs) <= now).OrderBy(w => w.MinuteMs).ToList();
            if (due.Count > 0)
            {
                var open = windows.Where(w => CloseTime(w.MinuteMs) > now).ToArray();
                _state.Windows = open.Length == 0 ? null : open;
            }

            foreach (var window in due)
            {
                var aggregate = ToMinuteAggregate(window);
                _state.LastClosedMinuteMs = _state.LastClosedMinuteMs is { } last ? Math.Max(last, window.MinuteMs) : window.MinuteMs;
                context.Emit(aggregate);
                EvaluateAggregateRules(rules, aggregate, context);
            }
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
                    Signal(slot, true, deadline, minutes, $"no data for {rule.Condition.Minutes} min", context);
                }
            }
        }

        RequestWake(context);
    }

    public GrainOutput? Snapshot()
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
            LastSeenMs = _state.LastSeenMs ?? 0,
            Metadata = CopyMetadata(_state.Metadata),
            Latest = latest,
            Attributes = attributes,
            LateCount = _state.LateCount,
        };
    }

    /// <summary>The state as plain dictionaries and lists, for queries: a copy, allocated on each call.</summary>
    public SensorView View()
    {
        var s = _state;
        var view = new SensorView
        {
            SensorId = SensorId,
            Metadata = CopyMetadata(s.Metadata),
            LastSeenMs = s.LastSeenMs,
            LastClosedMinuteMs = s.LastClosedMinuteMs,
            LateCount = s.LateCount,
            LastLate = s.LastLate is { } late ? new LateReadingInfo { TimestampMs = late.TimestampMs, MinuteMs = late.MinuteMs } : null,
            WakeAtMs = s.WakeAtMs,
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
    /// back from the store), exactly as <see cref="Wake"/> does when it closes a minute: a signal is sent to the rule
    /// grain when a condition starts or stops holding. Used to replay stored history (rule previews); windows,
    /// latest values and counts are left as they are.
    /// </summary>
    public void ReplayClosedMinute(MinuteAggregate aggregate, IGrainContext context)
    {
        ArgumentNullException.ThrowIfNull(aggregate);
        ArgumentNullException.ThrowIfNull(context);
        EvaluateAggregateRules(SyncRules(context), aggregate, context);
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

    private void OnReading(Reading reading, IGrainContext context)
    {
        var time = reading.TimestampMs;
        var minute = MinuteOf(time);
        var late = minute <= _state.LastClosedMinuteMs || CloseTime(minute) <= context.StreamTimeMs;

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
                readingAttributes[attributeSlots[i]] = attributes[i].Value;
            }
        }

        try
        {
            Apply(reading, time, minute, late, knownSlots, values, present, readingAttributes, context);
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
        IGrainContext context)
    {
        Remember(time, values, present, attributes);
        if (late)
        {
            _state.LateCount++;
            _state.LastLate = new LateReadingInfo { TimestampMs = time, MinuteMs = minute };
            return;
        }

        MergeMetadata(reading.Metadata);
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

        foreach (var slot in SyncRules(context))
        {
            var rule = slot.Rule!;
            var condition = rule.Condition;
            if (condition.Kind == ConditionKind.Offline)
            {
                Signal(slot, false, time, null, "data received", context);
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
                    Signal(slot, holds, time, value, text, context);
                }
            }
        }

        RequestWake(context);
    }

    /// <summary>Fills the slot of every metric and attribute of the reading, giving new names new slots (one layout change per reading).</summary>
    private void ResolveSlots(MetricValue[] metrics, AttributeValue[] attributes, Span<int> metricSlots, Span<int> attributeSlots, bool late)
    {
        if (ResolveSlots(metrics, static m => m.Name, _state.Metrics, metricSlots) is { } addedMetrics)
        {
            AddMetrics(addedMetrics, late);
        }

        if (ResolveSlots(attributes, static a => a.Name, _state.AttributeNames, attributeSlots) is { } addedAttributes)
        {
            AddAttributes(addedAttributes);
        }
    }

    /// <summary>
    /// The slot of each item's name in <paramref name="layout"/> (a name not in it gets the next free slot, in order
    /// of first appearance); returns the names to add to the layout, or null when there are none.
    /// </summary>
    private static List<string>? ResolveSlots<T>(T[] items, Func<T, string> nameOf, string[] layout, Span<int> slots)
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
                if (index < 0)
                {
                    index = added.Count;
                    added.Add(name);
                }

                slot = layout.Length + index;
            }

            slots[i] = slot;
        }

        return added;
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

    private void MergeMetadata(SensorMetadata? incoming)
    {
        if (incoming is null)
        {
            return;
        }

        var current = _state.Metadata;
        if (current is not null && Unchanged(current, incoming))
        {
            return;
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
        _syncedRules = null; // location and model decide which rules target this sensor
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

    /// <summary>Metadata whose known fields are the silo's shared strings.</summary>
    internal static SensorMetadata Shared(SensorMetadata metadata, SensorNameTable names) => metadata with
    {
        Model = metadata.Model is { } model ? names.Intern(model) : null,
        Location = metadata.Location is { } location ? names.Intern(location) : null,
        Owner = metadata.Owner is { } owner ? names.Intern(owner) : null,
        Version = metadata.Version is { } version ? names.Intern(version) : null,
    };

    private void EvaluateAggregateRules(RuleSlot[] rules, MinuteAggregate aggregate, IGrainContext context)
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

            var holds = condition.Holds(value);
            if (holds != slot.Holding)
            {
                var text = $"{SourceName(condition.Source)} {Format(value)} {RuleCondition.Symbol(condition.Operator)} {Format(condition.Value)}";
                Signal(slot, holds, aggregate.MinuteMs, value, text, context);
            }
        }
    }

    /// <summary>Sends a signal when <paramref name="holding"/> differs from what the rule grain was last told.</summary>
    private void Signal(RuleSlot slot, bool holding, long eventTimeMs, double? value, string message, IGrainContext context)
    {
        if (slot.Holding == holding)
        {
            return;
        }

        var rule = slot.Rule!;
        slot.Holding = holding;
        slot.SinceMs = holding ? eventTimeMs : null;
        context.Send(GrainId.Rule(rule.Id), new ConditionSignal
        {
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
    private RuleSlot[] SyncRules(IGrainContext context)
    {
        var catalog = context.Rules;
        if (ReferenceEquals(catalog, _syncedRules))
        {
            return _state.Rules ?? [];
        }

        var enabled = catalog.Enabled;
        var count = 0;
        foreach (var rule in enabled)
        {
            if (rule.Targets(SensorId, _state.Metadata))
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
                if (!rule.Targets(SensorId, _state.Metadata))
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
        _syncedRules = catalog;
        return slots ?? [];
    }

    /// <summary>Asks to be woken at the earliest window close or offline deadline. Expects the rules synchronized.</summary>
    private void RequestWake(IGrainContext context)
    {
        long? next = null;
        foreach (var window in _state.Windows ?? [])
        {
            next = Min(next, CloseTime(window.MinuteMs));
        }

        if (_state.LastSeenMs is { } lastSeen)
        {
            foreach (var slot in _state.Rules ?? [])
            {
                var condition = slot.Rule!.Condition;
                if (condition.Kind == ConditionKind.Offline && condition.Minutes > 0 && !slot.Holding)
                {
                    next = Min(next, lastSeen + condition.Minutes * MinuteMs);
                }
            }
        }

        _state.WakeAtMs = next;
        context.WakeAt(next);
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

    private static long? Min(long? a, long b) => a is { } x ? Math.Min(x, b) : b;

    private static SensorMetadata? CopyMetadata(SensorMetadata? metadata) => metadata is null
        ? null
        : metadata with { Extra = metadata.Extra is null ? null : new Dictionary<string, string>(metadata.Extra, StringComparer.Ordinal) };

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
