using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

public sealed class RuleGrainTests
{
    private const long T1 = M0 + 5_000;

    private readonly TestGrainContext _context = new(GrainId.Rule("r1"));
    private readonly RuleGrain _grain = new("r1", null);

    private static RuleDefinition Rule(long version = 1, int forMinutes = 0, int cooldownSeconds = 0, bool enabled = true, ControlAction? action = null) =>
        Threshold("r1", "hum", ComparisonOperator.Less, 50, version: version, forMinutes: forMinutes, cooldownSeconds: cooldownSeconds, enabled: enabled, action: action);

    private void Use(RuleDefinition? rule) => _context.Rules = rule is null ? RuleCatalog.Empty : RuleCatalog.From([rule]);

    private void Holding(long timeMs, double value, long version = 1, string sensorId = "s1") =>
        Deliver(Signal("r1", version, sensorId, true, timeMs, value, $"{value} < 50"), timeMs);

    private void NotHolding(long timeMs, double value, long version = 1, string sensorId = "s1") =>
        Deliver(Signal("r1", version, sensorId, false, timeMs, value, $"{value} < 50"), timeMs);

    private void Deliver(GrainMessage message, long streamTimeMs)
    {
        _context.StreamTimeMs = Math.Max(_context.StreamTimeMs, streamTimeMs);
        _grain.Receive(message, _context);
    }

    private void WakeAt(long streamTimeMs)
    {
        _context.StreamTimeMs = streamTimeMs;
        _grain.Wake(_context);
    }

    private static Alert OpenAlert(long startedAtMs, long openedAtMs, double value, long version = 1, string sensorId = "s1") => new()
    {
        Id = AlertIds.For("r1", version, sensorId, startedAtMs),
        RuleId = "r1",
        RuleName = "Rule r1",
        RuleVersion = version,
        SensorId = sensorId,
        Severity = Severity.Major,
        State = AlertState.Open,
        StartedAtMs = startedAtMs,
        OpenedAtMs = openedAtMs,
        Value = value,
        Threshold = 50,
        Message = $"{value} < 50",
    };

    private static AlertEvent Opened(Alert alert) => new() { Kind = AlertEventKind.Opened, Alert = alert };

    private static AlertEvent Resolved(Alert alert, long atMs, string reason) => new()
    {
        Kind = AlertEventKind.Resolved,
        Alert = alert with { State = AlertState.Resolved, ResolvedAtMs = atMs, ResolvedReason = reason },
    };

    [Fact]
    public void Opens_at_once_without_for_minutes_and_keeps_one_alert_per_sensor()
    {
        Use(Rule());
        Holding(T1, 49);

        var alert = OpenAlert(T1, T1, 49);
        Assert.Equal("r1", alert.RuleId);
        Assert.Equal(AlertIds.For("r1", 1, "s1", T1), ((AlertEvent)_context.Emitted[0]).Alert.Id);
        Assert.Equal([Opened(alert)], _context.Emitted);
        Assert.Equal($"{alert.Id}/Opened", _context.Emitted[0].Id);
        Assert.Null(_context.WakeAtMs);
        Assert.Equal(AlertPhase.Active, _grain.Current.Sensors["s1"].Phase);

        Holding(T1 + 1_000, 48);                      // already active: no second "opened"
        Assert.Single(_context.Emitted);
        Assert.Equal(48, _grain.Current.Sensors["s1"].LastValue);
        Assert.Equal(alert, _grain.Current.Sensors["s1"].Alert);

        Holding(T1 + 2_000, 47, sensorId: "s2");      // another sensor: its own alert
        Assert.Equal([Opened(alert), Opened(OpenAlert(T1 + 2_000, T1 + 2_000, 47, sensorId: "s2"))], _context.Emitted);
        Assert.Null(_grain.Snapshot());
    }

    [Fact]
    public void For_minutes_waits_pending_then_opens_at_wake()
    {
        Use(Rule(forMinutes: 2));
        Holding(T1, 49);
        Assert.Empty(_context.Emitted);
        Assert.Equal(AlertPhase.Pending, _grain.Current.Sensors["s1"].Phase);
        Assert.Equal(T1 + 2 * Minute, _context.WakeAtMs);

        Holding(T1 + 30_000, 45);                     // still pending: value only
        Assert.Empty(_context.Emitted);
        Assert.Equal(T1 + 2 * Minute, _context.WakeAtMs);

        WakeAt(T1 + 2 * Minute - 1);
        Assert.Empty(_context.Emitted);

        WakeAt(T1 + 2 * Minute);
        Assert.Equal([Opened(OpenAlert(T1, T1 + 2 * Minute, 45))], _context.Emitted);
        Assert.Null(_context.WakeAtMs);
    }

    [Fact]
    public void Pending_is_cancelled_when_the_condition_stops_holding()
    {
        Use(Rule(forMinutes: 2));
        Holding(T1, 49);
        NotHolding(T1 + Minute, 55);

        Assert.Empty(_context.Emitted);
        Assert.Null(_context.WakeAtMs);
        Assert.Empty(_grain.Current.Sensors);

        WakeAt(T1 + 10 * Minute);
        Assert.Empty(_context.Emitted);
    }

    [Fact]
    public void Pending_that_held_long_enough_by_event_time_opens_before_resolving()
    {
        // The signal that clears the condition is later than the pending deadline: the alert did open at the deadline.
        Use(Rule(forMinutes: 2));
        Holding(T1, 49);
        NotHolding(T1 + 3 * Minute, 55);

        var alert = OpenAlert(T1, T1 + 2 * Minute, 49);
        Assert.Equal([Opened(alert), Resolved(alert, T1 + 3 * Minute, "condition cleared")], _context.Emitted);
    }

    [Fact]
    public void Resolves_when_the_condition_clears_and_a_new_incident_gets_a_new_id()
    {
        Use(Rule());
        Holding(T1, 49);
        NotHolding(T1 + Minute, 55);

        var first = OpenAlert(T1, T1, 49);
        Assert.Equal([Opened(first), Resolved(first, T1 + Minute, "condition cleared")], _context.Emitted);
        Assert.Equal(AlertPhase.Idle, _grain.Current.Sensors["s1"].Phase);
        Assert.Null(_context.WakeAtMs);

        Holding(T1 + 2 * Minute, 40);
        var second = OpenAlert(T1 + 2 * Minute, T1 + 2 * Minute, 40);
        Assert.NotEqual(first.Id, second.Id);
        Assert.Equal([Opened(first), Resolved(first, T1 + Minute, "condition cleared"), Opened(second)], _context.Emitted);
    }

    [Fact]
    public void Cooldown_blocks_reopening_then_opens_after_it_if_still_holding()
    {
        Use(Rule(cooldownSeconds: 120));
        Holding(T1, 49);
        NotHolding(T1 + Minute, 55);
        Assert.Equal(T1 + 3 * Minute, _context.WakeAtMs);

        Holding(T1 + 90_000, 45);                     // inside the cooldown: nothing yet
        var first = OpenAlert(T1, T1, 49);
        Assert.Equal([Opened(first), Resolved(first, T1 + Minute, "condition cleared")], _context.Emitted);
        Assert.Equal(AlertPhase.Cooldown, _grain.Current.Sensors["s1"].Phase);

        WakeAt(T1 + 3 * Minute);
        var second = OpenAlert(T1 + 3 * Minute, T1 + 3 * Minute, 45);
        Assert.Equal([Opened(first), Resolved(first, T1 + Minute, "condition cleared"), Opened(second)], _context.Emitted);
        Assert.Null(_context.WakeAtMs);
    }

    [Fact]
    public void Cooldown_ends_idle_when_the_condition_cleared_during_it()
    {
        Use(Rule(cooldownSeconds: 120));
        Holding(T1, 49);
        NotHolding(T1 + Minute, 55);
        Holding(T1 + 90_000, 45);
        NotHolding(T1 + 100_000, 51);
        _context.ClearRecorded();

        WakeAt(T1 + 3 * Minute);
        Assert.Empty(_context.Emitted);
        Assert.Equal(AlertPhase.Idle, _grain.Current.Sensors["s1"].Phase);
        Assert.Null(_context.WakeAtMs);
    }

    [Fact]
    public void Cooldown_then_for_minutes_goes_pending_from_the_cooldown_end()
    {
        Use(Rule(forMinutes: 1, cooldownSeconds: 60));
        Holding(T1, 49);
        WakeAt(T1 + Minute);
        NotHolding(T1 + 2 * Minute, 55);
        Holding(T1 + 2 * Minute + 1_000, 45);
        _context.ClearRecorded();

        WakeAt(T1 + 3 * Minute);                      // cooldown over: pending from T1+3min
        Assert.Empty(_context.Emitted);
        Assert.Equal(T1 + 4 * Minute, _context.WakeAtMs);

        WakeAt(T1 + 4 * Minute);
        Assert.Equal([Opened(OpenAlert(T1 + 3 * Minute, T1 + 4 * Minute, 45))], _context.Emitted);
    }

    [Fact]
    public void Acknowledge_emits_exactly_one_event()
    {
        Use(Rule());
        Holding(T1, 49);
        var alert = OpenAlert(T1, T1, 49);
        var acked = alert with { AcknowledgedAtMs = T1 + 10_000, AcknowledgedBy = "ana" };

        Deliver(new AcknowledgeAlert { AlertId = alert.Id, By = "ana", AtMs = T1 + 10_000 }, T1 + 10_000);
        Deliver(new AcknowledgeAlert { AlertId = alert.Id, By = "bob", AtMs = T1 + 20_000 }, T1 + 20_000);
        Deliver(new AcknowledgeAlert { AlertId = "nope", By = "bob", AtMs = T1 + 20_000 }, T1 + 20_000);

        Assert.Equal([Opened(alert), new AlertEvent { Kind = AlertEventKind.Acknowledged, Alert = acked }], _context.Emitted);
        Assert.Equal($"{alert.Id}/Acknowledged", _context.Emitted[1].Id);

        NotHolding(T1 + Minute, 55);
        Assert.Equal(Resolved(acked, T1 + Minute, "condition cleared"), _context.Emitted[2]);

        Deliver(new AcknowledgeAlert { AlertId = alert.Id, By = "ana", AtMs = T1 + 2 * Minute }, T1 + 2 * Minute);
        Assert.Equal(3, _context.Emitted.Count);     // resolved: nothing to acknowledge
    }

    [Fact]
    public void Control_action_emits_a_device_command_for_the_sensor()
    {
        Use(Rule(action: new ControlAction { Command = "irrigate", Parameters = new() { ["minutes"] = "5" } }));
        Holding(T1, 49);

        var alert = OpenAlert(T1, T1, 49);
        Assert.Equal(2, _context.Emitted.Count);
        Assert.Equal(Opened(alert), _context.Emitted[0]);
        var command = Assert.IsType<DeviceCommand>(_context.Emitted[1]);
        Assert.Equal(
            Json(new DeviceCommand
            {
                CommandId = alert.Id + "/open",
                DeviceId = "s1",
                Command = "irrigate",
                Parameters = new() { ["minutes"] = "5" },
                RuleId = "r1",
                AlertId = alert.Id,
                CreatedAtMs = T1,
            }),
            Json(command));
        Assert.Equal(alert.Id + "/open", command.Id);
    }

    [Fact]
    public void Control_action_targets_its_device_and_is_created_when_the_alert_opens()
    {
        Use(Rule(forMinutes: 1, action: new ControlAction { Command = "open", DeviceId = "valve-1" }));
        Holding(T1, 49);
        WakeAt(T1 + Minute);

        var alert = OpenAlert(T1, T1 + Minute, 49);
        Assert.Equal(
            Json([
                Opened(alert),
                new DeviceCommand
                {
                    CommandId = alert.Id + "/open",
                    DeviceId = "valve-1",
                    Command = "open",
                    RuleId = "r1",
                    AlertId = alert.Id,
                    CreatedAtMs = T1 + Minute,
                },
            ]),
            Json(_context.Emitted));
    }

    [Fact]
    public void Offline_alert_has_no_threshold()
    {
        _context.Rules = RuleCatalog.From([Offline("r1", 5)]);
        Deliver(Signal("r1", 1, "s1", true, M0 + 5 * Minute, 7, "no data for 5 min"), M0 + 7 * Minute);
        Deliver(Signal("r1", 1, "s1", false, M0 + 10 * Minute, null, "data received"), M0 + 10 * Minute);

        var alert = new Alert
        {
            Id = AlertIds.For("r1", 1, "s1", M0 + 5 * Minute),
            RuleId = "r1",
            RuleName = "Rule r1",
            RuleVersion = 1,
            SensorId = "s1",
            Severity = Severity.Critical,
            State = AlertState.Open,
            StartedAtMs = M0 + 5 * Minute,
            OpenedAtMs = M0 + 5 * Minute,
            Value = 7,
            Threshold = null,
            Message = "no data for 5 min",
        };
        Assert.Equal([Opened(alert), Resolved(alert, M0 + 10 * Minute, "condition cleared")], _context.Emitted);
    }

    [Theory]
    [InlineData(null, "rule deleted")]
    [InlineData(false, "rule disabled")]
    [InlineData(true, "rule changed")]
    public void Rule_change_resolves_active_alerts_with_a_reason(bool? enabledAfter, string reason)
    {
        Use(Rule());
        Holding(T1, 49);
        Holding(T1 + 1_000, 30, sensorId: "s0");
        var changed = enabledAfter is { } enabled ? Rule(version: 2, enabled: enabled) : null;
        Use(changed);
        _context.StreamTimeMs = T1 + 5 * Minute;
        _grain.Receive(new RuleDefinitionChanged { RuleId = "r1", Rule = changed }, _context);

        var s1 = OpenAlert(T1, T1, 49);
        var s0 = OpenAlert(T1 + 1_000, T1 + 1_000, 30, sensorId: "s0");
        Assert.Equal(
            [Opened(s1), Opened(s0), Resolved(s0, T1 + 5 * Minute, reason), Resolved(s1, T1 + 5 * Minute, reason)],
            _context.Emitted);
        Assert.Empty(_grain.Current.Sensors);

        Holding(T1 + 6 * Minute, 20);                // a signal of the old version: ignored
        Assert.Equal(4, _context.Emitted.Count);

        _grain.Receive(new RuleDefinitionChanged { RuleId = "r1", Rule = changed }, _context);  // repeated: nothing
        Assert.Equal(4, _context.Emitted.Count);
    }

    [Fact]
    public void Newer_version_signal_is_buffered_until_the_catalog_catches_up()
    {
        Use(Rule());
        Holding(T1, 49);
        Holding(T1 + 1_000, 45, version: 2);
        NotHolding(T1 + 2_000, 55, version: 2, sensorId: "s9");
        Holding(T1 + 3_000, 44, version: 3);

        var v1 = OpenAlert(T1, T1, 49);
        Assert.Equal([Opened(v1)], _context.Emitted);
        Assert.Equal(3, _grain.Current.Buffered.Count);

        Use(Rule(version: 2));
        _context.StreamTimeMs = T1 + Minute;
        _grain.Receive(new RuleDefinitionChanged { RuleId = "r1", Rule = Rule(version: 2) }, _context);

        var v2 = OpenAlert(T1 + 1_000, T1 + 1_000, 45, version: 2);
        Assert.Equal([Opened(v1), Resolved(v1, T1 + Minute, "rule changed"), Opened(v2)], _context.Emitted);
        Assert.Equal(2, _grain.Current.Version);
        Assert.Equal([3L], _grain.Current.Buffered.Select(s => s.RuleVersion));
    }

    [Fact]
    public void Signal_for_a_rule_not_yet_in_the_catalog_is_buffered()
    {
        Holding(T1, 49);
        Assert.Empty(_context.Emitted);
        Assert.Single(_grain.Current.Buffered);

        Use(Rule());
        _grain.Receive(new RuleDefinitionChanged { RuleId = "r1", Rule = Rule() }, _context);
        Assert.Equal([Opened(OpenAlert(T1, T1, 49))], _context.Emitted);
        Assert.Empty(_grain.Current.Buffered);
    }

    [Fact]
    public void Older_version_signal_is_ignored()
    {
        Use(Rule(version: 2));
        _grain.Receive(new RuleDefinitionChanged { RuleId = "r1", Rule = Rule(version: 2) }, _context);
        Holding(T1, 49, version: 1);

        Assert.Empty(_context.Emitted);
        Assert.Empty(_grain.Current.Sensors);
        Assert.Empty(_grain.Current.Buffered);
        Assert.Null(_context.WakeAtMs);
    }

    [Fact]
    public void Catalog_ahead_of_the_grain_state_is_adopted_without_a_change_message()
    {
        Use(Rule(version: 4));
        Holding(T1, 49, version: 4);
        Assert.Equal([Opened(OpenAlert(T1, T1, 49, version: 4))], _context.Emitted);
        Assert.Equal(4, _grain.Current.Version);
    }

    [Fact]
    public void Sensor_and_rule_grains_together_produce_one_incident()
    {
        var rule = Rule(forMinutes: 1);
        var catalog = RuleCatalog.From([rule]);
        var sensorContext = new TestGrainContext(GrainId.Sensor("s1")) { Rules = catalog };
        var sensor = new SensorGrain("s1", null, new SensorGrainOptions());
        _context.Rules = catalog;

        foreach (var (t, v) in new[] { (T1, 49.0), (T1 + 30_000, 48.0), (T1 + 70_000, 47.0), (T1 + 100_000, 60.0) })
        {
            sensorContext.StreamTimeMs = t;
            sensor.Receive(Reading("s1", t, ("hum", v)), sensorContext);
            foreach (var (target, message) in sensorContext.Sent)
            {
                Assert.Equal(GrainId.Rule("r1"), target);
                Deliver(message, t);
            }

            sensorContext.ClearRecorded();
            if (_context.WakeAtMs is { } wake && wake <= t)
            {
                WakeAt(t);
            }
        }

        // Opened when the 47 arrived (stream time past T1+1min), resolved by the 60.
        var alert = OpenAlert(T1, T1 + Minute, 49);
        Assert.Equal([Opened(alert), Resolved(alert, T1 + 100_000, "condition cleared")], _context.Emitted);
    }
}
