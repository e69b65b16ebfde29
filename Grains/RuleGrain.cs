using Grains.Abstractions;

namespace Grains;

/// <summary>
/// One grain per alert rule: turns the condition signals of sensor grains into the alert lifecycle per
/// (rule, sensor): pending for forMinutes, open, acknowledged, resolved, cooldown. Emits alert events and the
/// rule's control action as a device command. Time is event time of signals and stream time of wake-ups.
/// </summary>
public sealed class RuleGrain : IGrain
{
    private const long MinuteMs = 60_000;

    private readonly string _ruleId;
    private readonly RuleState _state;

    public RuleGrain(string ruleId, RuleState? state)
    {
        ArgumentNullException.ThrowIfNull(ruleId);
        _ruleId = ruleId;
        _state = state ?? new RuleState { RuleId = ruleId };
    }

    /// <summary>The live state, for read-only queries and tests. Callers must not modify it.</summary>
    public RuleState Current => _state;

    public object State => _state;

    public GrainOutput? Snapshot() => null;

    public void Receive(GrainMessage message, IGrainContext context)
    {
        switch (message)
        {
            case RuleDefinitionChanged changed when string.Equals(changed.RuleId, _ruleId, StringComparison.Ordinal):
                Reconcile(changed.Rule, context);
                break;
            case ConditionSignal signal when string.Equals(signal.RuleId, _ruleId, StringComparison.Ordinal):
                var rule = context.Rules.Find(_ruleId);
                Reconcile(rule, context);
                OnSignal(signal, rule, context);
                break;
            case AcknowledgeAlert ack:
                Reconcile(context.Rules.Find(_ruleId), context);
                OnAcknowledge(ack, context);
                break;
        }

        Advance(context);
        RequestWake(context);
    }

    public void Wake(IGrainContext context)
    {
        Reconcile(context.Rules.Find(_ruleId), context);
        Advance(context);
        RequestWake(context);
    }

    /// <summary>
    /// Brings the state in line with <paramref name="rule"/> (null: deleted). On deletion, or on a version other than
    /// the state's, every active alert is resolved and every sensor reset; then the buffered signals of the new
    /// version are applied in arrival order. An older version than the state's (a stale message) changes nothing.
    /// </summary>
    private void Reconcile(RuleDefinition? rule, IGrainContext context)
    {
        if (rule is null)
        {
            ResolveAll("rule deleted", context);
            _state.Sensors.Clear();
            _state.Buffered.RemoveAll(s => s.RuleVersion <= _state.Version);
            return;
        }

        if (rule.Version < _state.Version)
        {
            return;
        }

        if (rule.Version == _state.Version)
        {
            if (!rule.Enabled)
            {
                // Normally already handled when this version arrived; kept for a state created by an older build.
                ResolveAll("rule disabled", context);
                _state.Sensors.Clear();
            }

            return;
        }

        ResolveAll(rule.Enabled ? "rule changed" : "rule disabled", context);
        _state.Sensors.Clear();
        _state.Version = rule.Version;
        var ready = _state.Buffered.Where(s => s.RuleVersion == rule.Version).ToList();
        _state.Buffered.RemoveAll(s => s.RuleVersion <= rule.Version);
        if (rule.Enabled)
        {
            foreach (var signal in ready)
            {
                Apply(signal, rule, context);
            }
        }
    }

    private void OnSignal(ConditionSignal signal, RuleDefinition? rule, IGrainContext context)
    {
        if (signal.RuleVersion > _state.Version)
        {
            // The sensor's partition already knows a version this partition has not seen yet.
            _state.Buffered.Add(signal);
            return;
        }

        if (IsCurrent(rule) && signal.RuleVersion == _state.Version)
        {
            Apply(signal, rule!, context);
        }
    }

    private void Apply(ConditionSignal signal, RuleDefinition rule, IGrainContext context)
    {
        var sensorId = signal.SensorId;
        if (!_state.Sensors.TryGetValue(sensorId, out var s))
        {
            if (!signal.Holding)
            {
                return;
            }

            s = new RuleSensorState();
            _state.Sensors[sensorId] = s;
        }

        // The signal proves the sensor's time reached its event time: fire the timers due by then first.
        AdvanceSensor(sensorId, s, rule, signal.EventTimeMs, context);
        s.LastValue = signal.Value;
        s.LastMessage = signal.Message;

        if (signal.Holding)
        {
            switch (s.Phase)
            {
                case AlertPhase.Idle:
                    s.Holding = true;
                    s.HoldingSinceMs = signal.EventTimeMs;
                    Start(sensorId, s, rule, signal.EventTimeMs, context);
                    break;
                case AlertPhase.Cooldown when !s.Holding:
                    s.Holding = true;
                    s.HoldingSinceMs = signal.EventTimeMs;
                    break;
            }

            // Pending, Active, or already holding in cooldown: only the last value changes.
            return;
        }

        switch (s.Phase)
        {
            case AlertPhase.Pending:
                s.Phase = AlertPhase.Idle;
                s.PendingUntilMs = null;
                break;
            case AlertPhase.Active:
                var resolvedAt = Math.Max(signal.EventTimeMs, s.Alert!.OpenedAtMs);
                Resolve(s, resolvedAt, "condition cleared", context);
                if (rule.CooldownSeconds > 0)
                {
                    s.Phase = AlertPhase.Cooldown;
                    s.CooldownUntilMs = resolvedAt + rule.CooldownSeconds * 1000L;
                }
                else
                {
                    s.Phase = AlertPhase.Idle;
                }

                break;
        }

        s.Holding = false;
        s.HoldingSinceMs = null;
        if (s.Phase == AlertPhase.Idle && s.LastStartedAtMs is null)
        {
            _state.Sensors.Remove(sensorId);
        }
    }

    /// <summary>The condition holds since <paramref name="sinceMs"/> and the sensor may alert: pending or open.</summary>
    private void Start(string sensorId, RuleSensorState s, RuleDefinition rule, long sinceMs, IGrainContext context)
    {
        // A new incident never starts before the previous one ended, nor at the same instant (alert ids stay unique).
        if (s.LastResolvedAtMs is { } resolved)
        {
            sinceMs = Math.Max(sinceMs, resolved);
        }

        if (s.LastStartedAtMs is { } started)
        {
            sinceMs = Math.Max(sinceMs, started + 1);
        }

        s.HoldingSinceMs = sinceMs;
        var forMinutes = rule.Condition.Kind == ConditionKind.Threshold ? Math.Max(0, rule.Condition.ForMinutes) : 0;
        if (forMinutes > 0)
        {
            s.Phase = AlertPhase.Pending;
            s.PendingUntilMs = sinceMs + forMinutes * MinuteMs;
        }
        else
        {
            Open(sensorId, s, rule, sinceMs, sinceMs, context);
        }
    }

    private void Open(string sensorId, RuleSensorState s, RuleDefinition rule, long startedAtMs, long openedAtMs, IGrainContext context)
    {
        var alertId = AlertIds.For(_ruleId, _state.Version, sensorId, startedAtMs);
        var alert = new Alert
        {
            Id = alertId,
            RuleId = _ruleId,
            RuleName = rule.Name,
            RuleVersion = _state.Version,
            SensorId = sensorId,
            Severity = rule.Severity,
            State = AlertState.Open,
            StartedAtMs = startedAtMs,
            OpenedAtMs = openedAtMs,
            Value = s.LastValue,
            Threshold = rule.Condition.Kind == ConditionKind.Threshold ? rule.Condition.Value : null,
            Message = s.LastMessage ?? "",
        };
        s.Phase = AlertPhase.Active;
        s.PendingUntilMs = null;
        s.CooldownUntilMs = null;
        s.Alert = alert;
        s.LastStartedAtMs = startedAtMs;
        context.Emit(new AlertEvent { Kind = AlertEventKind.Opened, Alert = alert });

        if (rule.ControlAction is { } action)
        {
            context.Emit(new DeviceCommand
            {
                CommandId = alertId + "/open",
                DeviceId = action.DeviceId ?? sensorId,
                Command = action.Command,
                Parameters = action.Parameters is null ? null : new Dictionary<string, string>(action.Parameters, StringComparer.Ordinal),
                RuleId = _ruleId,
                AlertId = alertId,
                CreatedAtMs = openedAtMs,
            });
        }
    }

    private static void Resolve(RuleSensorState s, long resolvedAtMs, string reason, IGrainContext context)
    {
        var alert = s.Alert! with { State = AlertState.Resolved, ResolvedAtMs = resolvedAtMs, ResolvedReason = reason };
        s.Alert = null;
        s.LastResolvedAtMs = resolvedAtMs;
        context.Emit(new AlertEvent { Kind = AlertEventKind.Resolved, Alert = alert });
    }

    private void ResolveAll(string reason, IGrainContext context)
    {
        foreach (var sensorId in _state.Sensors.Keys.Order(StringComparer.Ordinal).ToList())
        {
            var s = _state.Sensors[sensorId];
            if (s.Phase == AlertPhase.Active && s.Alert is { } alert)
            {
                Resolve(s, Math.Max(context.StreamTimeMs, alert.OpenedAtMs), reason, context);
            }
        }
    }

    private void OnAcknowledge(AcknowledgeAlert ack, IGrainContext context)
    {
        foreach (var sensorId in _state.Sensors.Keys.Order(StringComparer.Ordinal))
        {
            var s = _state.Sensors[sensorId];
            if (s.Phase == AlertPhase.Active
                && s.Alert is { AcknowledgedAtMs: null } alert
                && string.Equals(alert.Id, ack.AlertId, StringComparison.Ordinal))
            {
                s.Alert = alert with { AcknowledgedAtMs = ack.AtMs, AcknowledgedBy = ack.By };
                context.Emit(new AlertEvent { Kind = AlertEventKind.Acknowledged, Alert = s.Alert });
                return;
            }
        }
    }

    /// <summary>Fires every pending open and cooldown end due by stream time, sensors in ordinal order.</summary>
    private void Advance(IGrainContext context)
    {
        var rule = context.Rules.Find(_ruleId);
        if (!IsCurrent(rule))
        {
            return;
        }

        foreach (var sensorId in _state.Sensors.Keys.Order(StringComparer.Ordinal).ToList())
        {
            var s = _state.Sensors[sensorId];
            AdvanceSensor(sensorId, s, rule!, context.StreamTimeMs, context);
            if (s.Phase == AlertPhase.Idle && !s.Holding && s.LastStartedAtMs is null)
            {
                _state.Sensors.Remove(sensorId);
            }
        }
    }

    private void AdvanceSensor(string sensorId, RuleSensorState s, RuleDefinition rule, long upToMs, IGrainContext context)
    {
        while (true)
        {
            if (s.Phase == AlertPhase.Pending && s.PendingUntilMs is { } openAt && openAt <= upToMs)
            {
                Open(sensorId, s, rule, s.HoldingSinceMs ?? openAt, openAt, context);
            }
            else if (s.Phase == AlertPhase.Cooldown && s.CooldownUntilMs is { } until && until <= upToMs)
            {
                s.Phase = AlertPhase.Idle;
                s.CooldownUntilMs = null;
                if (s.Holding)
                {
                    Start(sensorId, s, rule, Math.Max(s.HoldingSinceMs ?? until, until), context);
                }
            }
            else
            {
                return;
            }
        }
    }

    private void RequestWake(IGrainContext context)
    {
        long? next = null;
        foreach (var s in _state.Sensors.Values)
        {
            var due = s.Phase switch
            {
                AlertPhase.Pending => s.PendingUntilMs,
                AlertPhase.Cooldown => s.CooldownUntilMs,
                _ => null,
            };
            if (due is { } d && (next is null || d < next))
            {
                next = d;
            }
        }

        _state.WakeAtMs = next;
        context.WakeAt(next);
    }

    private bool IsCurrent(RuleDefinition? rule) => rule is { Enabled: true } && rule.Version == _state.Version;
}
