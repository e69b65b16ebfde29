using System.Globalization;
using Grains.Abstractions;

namespace Grains;

/// <summary>
/// One grain per sensor: keeps latest values, the last readings and metadata, aggregates every metric per UTC
/// minute in event time, closes a minute once stream time passes its end plus the allowed lateness, and tells
/// rule grains when a rule's condition starts or stops holding for this sensor (edges only).
/// </summary>
public sealed class SensorGrain : IGrain
{
    private const long MinuteMs = 60_000;

    private readonly string _sensorId;
    private readonly SensorState _state;
    private readonly SensorGrainOptions _options;

    public SensorGrain(string sensorId, SensorState? state, SensorGrainOptions options)
    {
        ArgumentNullException.ThrowIfNull(sensorId);
        ArgumentNullException.ThrowIfNull(options);
        _sensorId = sensorId;
        _options = options;
        _state = state ?? new SensorState { SensorId = sensorId };
    }

    /// <summary>The live state, for read-only queries. Callers must not modify it.</summary>
    public SensorState Current => _state;

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
        var due = _state.Windows.Keys.Where(m => CloseTime(m) <= now).Order().ToList();
        var rules = SyncRules(context);
        foreach (var minute in due)
        {
            var aggregate = ToMinuteAggregate(minute, _state.Windows[minute]);
            _state.Windows.Remove(minute);
            _state.LastClosedMinuteMs = _state.LastClosedMinuteMs is { } last ? Math.Max(last, minute) : minute;
            context.Emit(aggregate);
            EvaluateAggregateRules(rules, aggregate, context);
        }

        if (_state.LastSeenMs is { } lastSeen)
        {
            foreach (var rule in rules)
            {
                if (rule.Condition.Kind != ConditionKind.Offline || rule.Condition.Minutes <= 0)
                {
                    continue;
                }

                var deadline = lastSeen + rule.Condition.Minutes * MinuteMs;
                if (now >= deadline)
                {
                    var minutes = (double)((now - lastSeen) / MinuteMs);
                    Signal(rule, true, deadline, minutes, $"no data for {rule.Condition.Minutes} min", context);
                }
            }
        }

        RequestWake(context);
    }

    public GrainOutput? Snapshot() => new SensorSummary
    {
        SensorId = _sensorId,
        LastSeenMs = _state.LastSeenMs ?? 0,
        Metadata = CopyMetadata(_state.Metadata),
        Latest = _state.Latest.ToDictionary(p => p.Key, p => p.Value.Value, StringComparer.Ordinal),
        Attributes = _state.Attributes.Count == 0
            ? null
            : _state.Attributes.ToDictionary(p => p.Key, p => p.Value.Value, StringComparer.Ordinal),
        LateCount = _state.LateCount,
    };

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
        if (_state.Windows.Count == 0)
        {
            return null;
        }

        var newest = _state.Windows.Keys.Max();
        return ToMinuteAggregate(newest, _state.Windows[newest]);
    }

    private void OnReading(Reading reading, IGrainContext context)
    {
        var time = reading.TimestampMs;
        var minute = MinuteOf(time);
        var metrics = Distinct(reading.Metrics);
        var attributes = Distinct(reading.Attributes);
        var late = minute <= _state.LastClosedMinuteMs || CloseTime(minute) <= context.StreamTimeMs;

        Remember(time, metrics, attributes, late);
        if (late)
        {
            _state.LateCount++;
            _state.LastLate = new LateReadingInfo { TimestampMs = time, MinuteMs = minute };
            return;
        }

        MergeMetadata(reading.Metadata);
        _state.LastSeenMs = _state.LastSeenMs is { } seen ? Math.Max(seen, time) : time;
        foreach (var (name, value) in metrics)
        {
            if (!_state.Latest.TryGetValue(name, out var latest) || time >= latest.TimeMs)
            {
                _state.Latest[name] = new TimedValue { Value = value, TimeMs = time };
            }

            Accumulate(minute, name, value, time);
        }

        foreach (var (name, value) in attributes)
        {
            if (!_state.Attributes.TryGetValue(name, out var latest) || time >= latest.TimeMs)
            {
                _state.Attributes[name] = new TimedAttribute { Value = value, TimeMs = time };
            }
        }

        foreach (var rule in SyncRules(context))
        {
            var condition = rule.Condition;
            if (condition.Kind == ConditionKind.Offline)
            {
                Signal(rule, false, time, null, "data received", context);
            }
            else if (condition.Kind == ConditionKind.Threshold
                && condition.Source == ConditionSource.Raw
                && condition.Metric is { } metric
                && metrics.TryGetValue(metric, out var value))
            {
                var holds = condition.Holds(value);
                var text = $"{Format(value)} {RuleCondition.Symbol(condition.Operator)} {Format(condition.Value)}";
                Signal(rule, holds, time, value, text, context);
            }
        }

        RequestWake(context);
    }

    private void Remember(long time, Dictionary<string, double> metrics, Dictionary<string, string> attributes, bool late)
    {
        var count = Math.Max(0, _options.LastReadingsCount);
        _state.LastReadings.Insert(0, new ReadingRecord
        {
            TimestampMs = time,
            Metrics = new Dictionary<string, double>(metrics, StringComparer.Ordinal),
            Attributes = attributes.Count == 0 ? null : new Dictionary<string, string>(attributes, StringComparer.Ordinal),
            Late = late,
        });
        if (_state.LastReadings.Count > count)
        {
            _state.LastReadings.RemoveRange(count, _state.LastReadings.Count - count);
        }
    }

    private void Accumulate(long minute, string metric, double value, long time)
    {
        if (!_state.Windows.TryGetValue(minute, out var window))
        {
            window = new Dictionary<string, RunningAggregate>(StringComparer.Ordinal);
            _state.Windows[minute] = window;
        }

        if (!window.TryGetValue(metric, out var a))
        {
            window[metric] = new RunningAggregate
            {
                Count = 1,
                Min = value,
                Max = value,
                Sum = value,
                First = value,
                FirstTimeMs = time,
                Last = value,
                LastTimeMs = time,
            };
            return;
        }

        a.Count++;
        a.Min = Math.Min(a.Min, value);
        a.Max = Math.Max(a.Max, value);
        a.Sum += value;
        if (time < a.FirstTimeMs)
        {
            a.First = value;
            a.FirstTimeMs = time;
        }

        if (time >= a.LastTimeMs)
        {
            a.Last = value;
            a.LastTimeMs = time;
        }
    }

    private void MergeMetadata(SensorMetadata? incoming)
    {
        if (incoming is null)
        {
            return;
        }

        var current = _state.Metadata;
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

        _state.Metadata = new SensorMetadata
        {
            Model = incoming.Model ?? current?.Model,
            Location = incoming.Location ?? current?.Location,
            Owner = incoming.Owner ?? current?.Owner,
            Version = incoming.Version ?? current?.Version,
            Extra = extra,
        };
    }

    private void EvaluateAggregateRules(List<RuleDefinition> rules, MinuteAggregate aggregate, IGrainContext context)
    {
        foreach (var rule in rules)
        {
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
            var text = $"{SourceName(condition.Source)} {Format(value)} {RuleCondition.Symbol(condition.Operator)} {Format(condition.Value)}";
            Signal(rule, holds, aggregate.MinuteMs, value, text, context);
        }
    }

    /// <summary>Sends a signal when <paramref name="holding"/> differs from what the rule grain was last told.</summary>
    private void Signal(RuleDefinition rule, bool holding, long eventTimeMs, double? value, string message, IGrainContext context)
    {
        var state = _state.Rules[rule.Id];
        if (state.Holding == holding)
        {
            return;
        }

        state.Holding = holding;
        state.SinceMs = holding ? eventTimeMs : null;
        context.Send(GrainId.Rule(rule.Id), new ConditionSignal
        {
            RuleId = rule.Id,
            RuleVersion = rule.Version,
            SensorId = _sensorId,
            Holding = holding,
            EventTimeMs = eventTimeMs,
            Value = value,
            Message = message,
        });
    }

    /// <summary>
    /// Returns the enabled rules that target this sensor (in rule id order) and brings the per-rule state in line:
    /// state of rules that vanished, were disabled or stopped targeting is dropped; state of another rule version
    /// is reset to "not holding" for the current version.
    /// </summary>
    private List<RuleDefinition> SyncRules(IGrainContext context)
    {
        var targeting = new List<RuleDefinition>();
        foreach (var rule in context.Rules.Enabled)
        {
            if (rule.Targets(_sensorId, _state.Metadata))
            {
                targeting.Add(rule);
            }
        }

        var keep = new HashSet<string>(targeting.Select(r => r.Id), StringComparer.Ordinal);
        foreach (var id in _state.Rules.Keys.Where(id => !keep.Contains(id)).ToList())
        {
            _state.Rules.Remove(id);
        }

        foreach (var rule in targeting)
        {
            if (!_state.Rules.TryGetValue(rule.Id, out var state) || state.Version != rule.Version)
            {
                _state.Rules[rule.Id] = new RuleConditionState { Version = rule.Version, Holding = false };
            }
        }

        return targeting;
    }

    private void RequestWake(IGrainContext context)
    {
        long? next = null;
        foreach (var minute in _state.Windows.Keys)
        {
            next = Min(next, CloseTime(minute));
        }

        if (_state.LastSeenMs is { } lastSeen)
        {
            foreach (var rule in context.Rules.Enabled)
            {
                if (rule.Condition.Kind == ConditionKind.Offline
                    && rule.Condition.Minutes > 0
                    && _state.Rules.TryGetValue(rule.Id, out var state)
                    && state.Version == rule.Version
                    && !state.Holding)
                {
                    next = Min(next, lastSeen + rule.Condition.Minutes * MinuteMs);
                }
            }
        }

        _state.WakeAtMs = next;
        context.WakeAt(next);
    }

    private long CloseTime(long minute) => minute + MinuteMs + _options.AllowedLatenessMs;

    private MinuteAggregate ToMinuteAggregate(long minute, Dictionary<string, RunningAggregate> window) => new()
    {
        SensorId = _sensorId,
        MinuteMs = minute,
        Metrics = window
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => new MetricAggregate
            {
                Metric = p.Key,
                Count = p.Value.Count,
                Min = p.Value.Min,
                Max = p.Value.Max,
                Sum = p.Value.Sum,
                First = p.Value.First,
                Last = p.Value.Last,
            })
            .ToArray(),
    };

    private static long MinuteOf(long timeMs) => timeMs - (((timeMs % MinuteMs) + MinuteMs) % MinuteMs);

    private static long? Min(long? a, long b) => a is { } x ? Math.Min(x, b) : b;

    /// <summary>Metrics of one reading by name; a name repeated within one reading keeps its last value.</summary>
    private static Dictionary<string, double> Distinct(MetricValue[]? metrics)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var m in metrics ?? [])
        {
            result[m.Name] = m.Value;
        }

        return result;
    }

    private static Dictionary<string, string> Distinct(AttributeValue[]? attributes)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var a in attributes ?? [])
        {
            result[a.Name] = a.Value;
        }

        return result;
    }

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
