using Grains.Abstractions;

namespace Grains;

/// <summary>
/// The logic of one alert rule's grain: turns the condition signals of sensor grains into the alert lifecycle per
/// (rule, sensor): pending for forMinutes, open, acknowledged, resolved, cooldown. Emits alert events and the rule's
/// control action as a device command. Time is per sensor: the event times of its signals and the clock it reports,
/// so one device's clock never opens or ends another device's alert. Pure: no I/O, no clock reads, no static state.
/// </summary>
public sealed class RuleLogic
{
    private const long MinuteMs = 60_000;

    private readonly string _ruleId;
    private readonly RuleState _state;

    public RuleLogic(string ruleId, RuleState? state)
    {
        ArgumentNullException.ThrowIfNull(ruleId);
        _ruleId = ruleId;
        _state = state ?? new RuleState { RuleId = ruleId };
        if (string.IsNullOrEmpty(_state.RuleId))
        {
            _state.RuleId = ruleId;
        }
    }

    /// <summary>The live state (also what is stored). Callers must not modify it.</summary>
    public RuleState Current => _state;

    /// <summary>
    /// The rule was created, changed or deleted (null) at <paramref name="change"/>'s time. On deletion, or on a version
    /// other than the state's, every active alert is resolved and every sensor reset; then the buffered signals of the
    /// new version are applied in arrival order. An older version than the state's (a stale message) changes nothing.
    /// </summary>
    public void Define(RuleDefinitionChange change, IGrainEffects effects)
    {
        ArgumentNullException.ThrowIfNull(change);
        ArgumentNullException.ThrowIfNull(effects);
        var rule = change.Rule;
        if (rule is null)
        {
            if (_state.Definition is not null || _state.Sensors.Count > 0)
            {
                ResolveAll("rule deleted", change.AtMs, effects);
                _state.Sensors.Clear();
            }

            _state.Definition = null;
            _state.Buffered.RemoveAll(s => s.RuleVersion <= _state.Version);
            return;
        }

        // A version the state already had (defined, or defined and then deleted: versions are never reused) is a stale or
        // replayed message.
        if (rule.Version < _state.Version || (rule.Version == _state.Version && (_state.Definition is not null || _state.Version != 0)))
        {
            return;
        }

        ResolveAll(rule.Enabled ? "rule changed" : "rule disabled", change.AtMs, effects);
        _state.Sensors.Clear();
        _state.Version = rule.Version;
        _state.Definition = rule;
        var ready = _state.Buffered.Where(s => s.RuleVersion == rule.Version).ToList();
        _state.Buffered.RemoveAll(s => s.RuleVersion <= rule.Version);
        if (rule.Enabled)
        {
            foreach (var signal in ready)
            {
                Apply(signal, rule, effects);
            }
        }
    }

    /// <summary>
    /// Applies one sensor's signals in order (a signal numbered at or below the last one applied for the sensor is a
    /// replay and is skipped), then runs the sensor's time to <see cref="SensorSignals.TimeMs"/>. Returns when (on that
    /// sensor's clock) the rule next needs to hear its time: a pending alert opening, a cooldown ending while the
    /// condition holds; null when nothing waits on it.
    /// </summary>
    public long? Receive(SensorSignals signals, IGrainEffects effects)
    {
        ArgumentNullException.ThrowIfNull(signals);
        ArgumentNullException.ThrowIfNull(effects);
        foreach (var signal in signals.Signals)
        {
            if (string.Equals(signal.RuleId, _ruleId, StringComparison.Ordinal)
                && string.Equals(signal.SensorId, signals.SensorId, StringComparison.Ordinal))
            {
                OnSignal(signal, effects);
            }
        }

        var rule = _state.Definition;
        if (signals.TimeMs is { } timeMs && IsCurrent(rule) && _state.Sensors.TryGetValue(signals.SensorId, out var s))
        {
            AdvanceSensor(signals.SensorId, s, rule!, timeMs, effects);
            RemoveIfIdle(signals.SensorId, s);
        }

        return DueFor(signals.SensorId);
    }

    /// <summary>Acknowledges the open alert <see cref="AcknowledgeAlert.AlertId"/> once; the outcome says what happened.</summary>
    public AcknowledgeResult Acknowledge(AcknowledgeAlert ack, IGrainEffects effects)
    {
        ArgumentNullException.ThrowIfNull(ack);
        ArgumentNullException.ThrowIfNull(effects);
        foreach (var sensorId in _state.Sensors.Keys.Order(StringComparer.Ordinal))
        {
            var s = _state.Sensors[sensorId];
            if (s.Phase == AlertPhase.Active && s.Alert is { } alert && string.Equals(alert.Id, ack.AlertId, StringComparison.Ordinal))
            {
                if (alert.AcknowledgedAtMs is not null)
                {
                    return new AcknowledgeResult(AcknowledgeOutcome.AlreadyAcknowledged, alert);
                }

                s.Alert = alert with { AcknowledgedAtMs = ack.AtMs, AcknowledgedBy = ack.By };
                effects.Emit(new AlertEvent { Kind = AlertEventKind.Acknowledged, Alert = s.Alert });
                return new AcknowledgeResult(AcknowledgeOutcome.Acknowledged, s.Alert);
            }
        }

        return new AcknowledgeResult(AcknowledgeOutcome.NotOpen, null);
    }

    /// <summary>When the rule next needs <paramref name="sensorId"/>'s time (its clock); null when nothing waits on it.</summary>
    public long? DueFor(string sensorId) =>
        _state.Sensors.TryGetValue(sensorId, out var s)
            ? s.Phase switch
            {
                AlertPhase.Pending => s.PendingUntilMs,
                AlertPhase.Cooldown when s.Holding => s.CooldownUntilMs,
                _ => null,
            }
            : null;

    private void OnSignal(ConditionSignal signal, IGrainEffects effects)
    {
        if (signal.RuleVersion > _state.Version || (signal.RuleVersion == _state.Version && _state.Definition is null && _state.Version == 0))
        {
            // The sensor's partition already knows a version this grain has not been given yet.
            if (!_state.Buffered.Any(b => b.Sequence != 0 && b.Sequence == signal.Sequence && string.Equals(b.SensorId, signal.SensorId, StringComparison.Ordinal)))
            {
                _state.Buffered.Add(signal);
            }

            return;
        }

        var rule = _state.Definition;
        if (IsCurrent(rule) && signal.RuleVersion == _state.Version)
        {
            Apply(signal, rule!, effects);
        }
    }

    private void Apply(ConditionSignal signal, RuleDefinition rule, IGrainEffects effects)
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
        else if (signal.Sequence != 0 && signal.Sequence <= s.LastSequence)
        {
            return; // a replayed signal, applied before
        }

        if (signal.Sequence != 0)
        {
            s.LastSequence = signal.Sequence;
        }

        // The signal proves the sensor's time reached its event time: fire the timers due by then first.
        AdvanceSensor(sensorId, s, rule, signal.EventTimeMs, effects);
        s.LastValue = signal.Value;
        s.LastMessage = signal.Message;

        if (signal.Holding)
        {
            switch (s.Phase)
            {
                case AlertPhase.Idle:
                    s.Holding = true;
                    s.HoldingSinceMs = signal.EventTimeMs;
                    Start(sensorId, s, rule, signal.EventTimeMs, effects);
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
                Resolve(s, resolvedAt, "condition cleared", effects);
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
        RemoveIfIdle(sensorId, s);
    }

    /// <summary>
    /// Forgets a sensor with nothing pending and no incident of this version. A replay of its signals then finds no
    /// entry: it can only repeat what led to no alert, so skipping it by number is not needed.
    /// </summary>
    private void RemoveIfIdle(string sensorId, RuleSensorState s)
    {
        if (s.Phase == AlertPhase.Idle && !s.Holding && s.LastStartedAtMs is null)
        {
            _state.Sensors.Remove(sensorId);
        }
    }

    /// <summary>The condition holds since <paramref name="sinceMs"/> and the sensor may alert: pending or open.</summary>
    private void Start(string sensorId, RuleSensorState s, RuleDefinition rule, long sinceMs, IGrainEffects effects)
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
            Open(sensorId, s, rule, sinceMs, sinceMs, effects);
        }
    }

    private void Open(string sensorId, RuleSensorState s, RuleDefinition rule, long startedAtMs, long openedAtMs, IGrainEffects effects)
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
        effects.Emit(new AlertEvent { Kind = AlertEventKind.Opened, Alert = alert });

        if (rule.ControlAction is { } action)
        {
            effects.Emit(new DeviceCommand
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

    private static void Resolve(RuleSensorState s, long resolvedAtMs, string reason, IGrainEffects effects)
    {
        var alert = s.Alert! with { State = AlertState.Resolved, ResolvedAtMs = resolvedAtMs, ResolvedReason = reason };
        s.Alert = null;
        s.LastResolvedAtMs = resolvedAtMs;
        effects.Emit(new AlertEvent { Kind = AlertEventKind.Resolved, Alert = alert });
    }

    private void ResolveAll(string reason, long atMs, IGrainEffects effects)
    {
        foreach (var sensorId in _state.Sensors.Keys.Order(StringComparer.Ordinal).ToList())
        {
            var s = _state.Sensors[sensorId];
            if (s.Phase == AlertPhase.Active && s.Alert is { } alert)
            {
                Resolve(s, Math.Max(atMs, alert.OpenedAtMs), reason, effects);
            }
        }
    }

    private void AdvanceSensor(string sensorId, RuleSensorState s, RuleDefinition rule, long upToMs, IGrainEffects effects)
    {
        while (true)
        {
            if (s.Phase == AlertPhase.Pending && s.PendingUntilMs is { } openAt && openAt <= upToMs)
            {
                Open(sensorId, s, rule, s.HoldingSinceMs ?? openAt, openAt, effects);
            }
            else if (s.Phase == AlertPhase.Cooldown && s.CooldownUntilMs is { } until && until <= upToMs)
            {
                s.Phase = AlertPhase.Idle;
                s.CooldownUntilMs = null;
                if (s.Holding)
                {
                    Start(sensorId, s, rule, Math.Max(s.HoldingSinceMs ?? until, until), effects);
                }
            }
            else
            {
                return;
            }
        }
    }

    private bool IsCurrent(RuleDefinition? rule) => rule is { Enabled: true } && rule.Version == _state.Version;
}
