using Grains.Abstractions;

namespace Grains;

/// <summary>
/// Replays a rule over stored closed minute aggregates with the real grain logic: a <see cref="SensorLogic"/> turns
/// each minute into condition signals (<see cref="SensorLogic.ReplayClosedMinute"/>) and a <see cref="RuleLogic"/>
/// turns the signals into alerts (forMinutes, cooldown, resolution), as the live cluster does: when a minute closes its
/// signals reach the rule with the sensor's time for minute conditions (the start of the next minute), which opens the
/// pending alerts due by then. Nothing is stored; the alerts are returned.
/// </summary>
/// <remarks>
/// A rule grain keeps independent state per sensor and its timers only depend on that sensor's signals, so each
/// sensor is replayed on its own (memory stays bounded by one sensor's minutes).
/// Offline conditions cannot be replayed from minute aggregates (the time of the last reading is not stored), nor
/// raw == and != (whether one reading equalled a value is not known from min and max). Raw &lt;, &lt;=, &gt;, &gt;= are
/// replayed on the minute's min or max: see <see cref="Plan"/>.
/// </remarks>
public static class RuleReplay
{
    private const long MinuteMs = 60_000;

    /// <summary>
    /// The rule as the replay evaluates it, or null with <paramref name="refusal"/> when it cannot be replayed from
    /// minute aggregates. <paramref name="approximation"/> says how a raw-reading condition is approximated (null:
    /// the replay is exact).
    /// </summary>
    public static RuleDefinition? Plan(RuleDefinition rule, out string? approximation, out string? refusal)
    {
        ArgumentNullException.ThrowIfNull(rule);
        approximation = null;
        refusal = null;
        var condition = rule.Condition;
        if (condition.Kind == ConditionKind.Offline)
        {
            refusal = "an offline condition cannot be previewed: the times of the readings within a minute are not stored, only its aggregates";
            return null;
        }

        var replayed = rule with { Enabled = true };
        if (condition.Source != ConditionSource.Raw)
        {
            return replayed;
        }

        var source = condition.Operator switch
        {
            ComparisonOperator.Greater or ComparisonOperator.GreaterOrEqual => ConditionSource.Max,
            ComparisonOperator.Less or ComparisonOperator.LessOrEqual => ConditionSource.Min,
            _ => (ConditionSource?)null,
        };
        if (source is not { } s)
        {
            refusal = $"a raw-reading condition with {RuleCondition.Symbol(condition.Operator)} cannot be previewed: raw readings are not stored, "
                + "and a minute's aggregates do not tell whether one reading equalled the value; use a minute statistic (on: avg, min, max, sum, count, last)";
            return null;
        }

        var stat = s == ConditionSource.Max ? "max" : "min";
        approximation = $"raw readings are not stored: the condition was evaluated on each minute's {stat}, so an alert opens at the start of "
            + "the first minute in which some reading held it and resolves at the start of the first minute in which none did; several "
            + "crossings within one minute count as one alert";
        return replayed with { Condition = condition with { Source = s } };
    }

    /// <summary>
    /// Replays <paramref name="rule"/> (as returned by <see cref="Plan"/>) for one sensor over its closed minutes, in
    /// minute order, then lets stream time run to <paramref name="endMs"/>. Returns the alerts it opened, each as it
    /// stands at the end (resolved, or still open), in opening order.
    /// </summary>
    public static IReadOnlyList<Alert> ReplaySensor(RuleDefinition rule, string sensorId, SensorMetadata? metadata,
        IReadOnlyList<MinuteAggregate> minutes, long endMs, SensorGrainOptions options)
    {
        ArgumentNullException.ThrowIfNull(rule);
        ArgumentNullException.ThrowIfNull(sensorId);
        ArgumentNullException.ThrowIfNull(minutes);
        ArgumentNullException.ThrowIfNull(options);

        var catalog = RuleCatalog.Empty.With(rule);
        var sensor = new SensorLogic(sensorId, new SensorState(sensorId) { Metadata = metadata }, options);
        var ruleLogic = new RuleLogic(rule.Id, null);
        var sensorEffects = new Effects();
        var ruleEffects = new Effects();
        ruleLogic.Define(new RuleDefinitionChange(rule.Id, rule, long.MinValue), ruleEffects);

        foreach (var minute in minutes.OrderBy(m => m.MinuteMs))
        {
            sensor.ReplayClosedMinute(minute, catalog, sensorEffects);
            ruleLogic.Receive(new SensorSignals(sensorId, [.. sensorEffects.Sent], minute.MinuteMs + MinuteMs), ruleEffects);
            sensorEffects.Sent.Clear();
        }

        ruleLogic.Receive(new SensorSignals(sensorId, [], endMs), ruleEffects);

        var alerts = new Dictionary<string, Alert>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var output in ruleEffects.Emitted)
        {
            if (output is AlertEvent e)
            {
                if (!alerts.ContainsKey(e.Alert.Id))
                {
                    order.Add(e.Alert.Id);
                }

                alerts[e.Alert.Id] = e.Alert;
            }
        }

        return order.Select(id => alerts[id]).ToArray();
    }

    private sealed class Effects : IGrainEffects
    {
        public List<GrainOutput> Emitted { get; } = [];

        public List<ConditionSignal> Sent { get; } = [];

        public void Emit(GrainOutput output) => Emitted.Add(output);

        public void Send(ConditionSignal signal) => Sent.Add(signal);
    }
}
