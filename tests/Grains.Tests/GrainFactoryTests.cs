using System.Text;
using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

public sealed class GrainFactoryTests
{
    private readonly GrainFactory _factory = new(new SensorGrainOptions { AllowedLatenessMs = 10_000, LastReadingsCount = 10 });

    [Fact]
    public void Activates_new_grains_by_type()
    {
        var sensor = Assert.IsType<SensorGrain>(_factory.Activate(GrainId.Sensor("s1"), null));
        var rule = Assert.IsType<RuleGrain>(_factory.Activate(GrainId.Rule("r1"), null));
        Assert.Equal("s1", sensor.View().SensorId);
        Assert.Equal("r1", rule.Current.RuleId);
        Assert.IsType<SensorState>(sensor.State);
        Assert.Same(rule.Current, rule.State);
    }

    [Fact]
    public void Unknown_grain_type_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => _factory.Activate(new GrainId("device", "d1"), null));
    }

    [Fact]
    public void Sensor_state_round_trip_preserves_behaviour()
    {
        var rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50), Offline("off", 5)]);
        var context = new TestGrainContext(GrainId.Sensor("s1")) { Rules = rules };
        var original = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), null);
        Feed(original, context, (M0 + 1_000, 49), (M0 + 80_000, 60), (M0 + 2_000, 10));   // the last one is late
        original.Receive(
            Reading("s1", M0 + 81_000, ("hum", 45)) with
            {
                Attributes = [new AttributeValue("light", "on")],
                Metadata = new SensorMetadata { Model = "HW-MD202", Extra = new() { ["site"] = "A" } },
            },
            context);

        var json = _factory.SerializeState(original);
        var text = Encoding.UTF8.GetString(json);
        Assert.Contains("\"LateCount\":1", text, StringComparison.Ordinal);
        Assert.Contains("\"site\":\"A\"", text, StringComparison.Ordinal);

        var restored = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), json);
        Assert.Equal(json, _factory.SerializeState(restored));
        Assert.Equal(Json(original.Snapshot()!), Json(restored.Snapshot()!));
        Assert.Equal(Json(original.CurrentMinute()!), Json(restored.CurrentMinute()!));

        // Both continue identically: same outputs, signals, wake requests and final state.
        var a = new TestGrainContext(GrainId.Sensor("s1")) { Rules = rules, StreamTimeMs = context.StreamTimeMs };
        var b = new TestGrainContext(GrainId.Sensor("s1")) { Rules = rules, StreamTimeMs = context.StreamTimeMs };
        foreach (var (grain, ctx) in new[] { (original, a), (restored, b) })
        {
            Feed(grain, ctx, (M0 + 82_000, 55), (M0 + 1_000, 1));
            ctx.StreamTimeMs = M0 + 20 * Minute;
            grain.Wake(ctx);
        }

        Assert.Equal(Json(a.Emitted), Json(b.Emitted));
        Assert.Equal(a.Sent, b.Sent);
        Assert.Equal(a.WakeAtMs, b.WakeAtMs);
        Assert.Equal(_factory.SerializeState(original), _factory.SerializeState(restored));
        Assert.Equal(2, restored.View().LateCount);
        Assert.Equal(
            [
                (GrainId.Rule("r1"), (GrainMessage)Signal("r1", 1, "s1", false, M0 + 82_000, 55, "55 < 50")),
                (GrainId.Rule("off"), Signal("off", 1, "s1", true, M0 + 82_000 + 5 * Minute, 18, "no data for 5 min")),
            ],
            b.Sent);
        Assert.Equal(
            Json([
            new MinuteAggregate
            {
                SensorId = "s1",
                MinuteMs = M0,
                Metrics = [new MetricAggregate { Metric = "hum", Count = 1, Min = 49, Max = 49, Sum = 49, First = 49, Last = 49 }],
            },
            new MinuteAggregate
            {
                SensorId = "s1",
                MinuteMs = M0 + Minute,
                Metrics = [new MetricAggregate { Metric = "hum", Count = 3, Min = 45, Max = 60, Sum = 160, First = 60, Last = 55 }],
            }]),
            Json(b.Emitted));
    }

    [Fact]
    public void Rule_state_round_trip_preserves_behaviour()
    {
        var rule = Threshold("r1", "hum", ComparisonOperator.Less, 50, cooldownSeconds: 60,
            action: new ControlAction { Command = "irrigate", Parameters = new() { ["minutes"] = "5" } });
        var context = new TestGrainContext(GrainId.Rule("r1")) { Rules = RuleCatalog.From([rule]), StreamTimeMs = M0 };
        var original = (RuleGrain)_factory.Activate(GrainId.Rule("r1"), null);
        original.Receive(Signal("r1", 1, "s1", true, M0, 49, "49 < 50"), context);
        original.Receive(Signal("r1", 1, "s2", true, M0, 40, "40 < 50"), context);
        original.Receive(Signal("r1", 1, "s2", false, M0 + 1_000, 55, "55 < 50"), context);    // s2 in cooldown
        original.Receive(Signal("r1", 2, "s3", true, M0 + 2_000, 30, "30 < 50"), context);     // buffered
        var s1Alert = original.Current.Sensors["s1"].Alert!;
        original.Receive(new AcknowledgeAlert { AlertId = s1Alert.Id, By = "ana", AtMs = M0 + 3_000 }, context);

        var json = _factory.SerializeState(original);
        var restored = (RuleGrain)_factory.Activate(GrainId.Rule("r1"), json);
        Assert.Equal(json, _factory.SerializeState(restored));
        Assert.Equal(AlertPhase.Cooldown, restored.Current.Sensors["s2"].Phase);
        Assert.Equal("ana", restored.Current.Sensors["s1"].Alert!.AcknowledgedBy);
        Assert.Equal(Signal("r1", 2, "s3", true, M0 + 2_000, 30, "30 < 50"), Assert.Single(restored.Current.Buffered));

        var a = new TestGrainContext(GrainId.Rule("r1")) { Rules = context.Rules, StreamTimeMs = context.StreamTimeMs };
        var b = new TestGrainContext(GrainId.Rule("r1")) { Rules = context.Rules, StreamTimeMs = context.StreamTimeMs };
        foreach (var (grain, ctx) in new[] { (original, a), (restored, b) })
        {
            grain.Receive(Signal("r1", 1, "s2", true, M0 + 30_000, 41, "41 < 50"), ctx);
            grain.Receive(new AcknowledgeAlert { AlertId = s1Alert.Id, By = "bob", AtMs = M0 + 31_000 }, ctx);
            ctx.StreamTimeMs = M0 + 61_000;
            grain.Wake(ctx);
            ctx.Rules = RuleCatalog.From([rule with { Version = 2 }]);
            grain.Receive(new RuleDefinitionChanged { RuleId = "r1", Rule = rule with { Version = 2 } }, ctx);
        }

        Assert.Equal(Json(a.Emitted), Json(b.Emitted));
        Assert.Equal(a.WakeAtMs, b.WakeAtMs);
        Assert.Equal(_factory.SerializeState(original), _factory.SerializeState(restored));

        var s2Id = AlertIds.For("r1", 1, "s2", M0 + 61_000);
        var s3Id = AlertIds.For("r1", 2, "s3", M0 + 2_000);
        Assert.Equal(
            [
                $"{s2Id}/Opened", $"{s2Id}/open",
                $"{s1Alert.Id}/Resolved", $"{s2Id}/Resolved",
                $"{s3Id}/Opened", $"{s3Id}/open",
            ],
            b.Emitted.Select(o => o.Id));
        Assert.All(b.Emitted.OfType<AlertEvent>().Where(e => e.Kind == AlertEventKind.Resolved), e => Assert.Equal("rule changed", e.Alert.ResolvedReason));
    }

    [Fact]
    public void Non_finite_values_survive_a_round_trip()
    {
        var grain = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), null);
        var context = new TestGrainContext(GrainId.Sensor("s1")) { StreamTimeMs = M0 };
        grain.Receive(Reading("s1", M0, ("v", double.NaN), ("w", double.PositiveInfinity)), context);

        var restored = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), _factory.SerializeState(grain));
        Assert.True(double.IsNaN(restored.View().Latest["v"].Value));
        Assert.Equal(double.PositiveInfinity, restored.View().Windows[M0]["w"].Max);
    }

    [Fact]
    public void State_json_is_compact_with_named_enums()
    {
        var rule = (RuleGrain)_factory.Activate(GrainId.Rule("r1"), null);
        var context = new TestGrainContext(GrainId.Rule("r1")) { Rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50, forMinutes: 1)]) };
        rule.Receive(Signal("r1", 1, "s1", true, M0, 49, "49 < 50"), context);
        rule.Receive(Signal("r1", 2, "s1", true, M0, 49, "49 < 50"), context);

        Assert.Equal(
            "{\"RuleId\":\"r1\",\"Version\":1,\"Sensors\":{\"s1\":{\"Holding\":true,\"HoldingSinceMs\":" + M0
            + ",\"LastValue\":49,\"LastMessage\":\"49 \\u003C 50\",\"Phase\":\"Pending\",\"PendingUntilMs\":" + (M0 + Minute) + "}},"
            + "\"Buffered\":[{\"RuleId\":\"r1\",\"RuleVersion\":2,\"SensorId\":\"s1\",\"Holding\":true,\"EventTimeMs\":" + M0
            + ",\"Value\":49,\"Message\":\"49 \\u003C 50\"}],\"WakeAtMs\":" + (M0 + Minute) + "}",
            Encoding.UTF8.GetString(_factory.SerializeState(rule)));
    }

    private static void Feed(SensorGrain grain, TestGrainContext context, params (long Time, double Hum)[] readings)
    {
        foreach (var (time, hum) in readings)
        {
            context.StreamTimeMs = Math.Max(context.StreamTimeMs, time);
            grain.Receive(Reading("s1", time, ("hum", hum)), context);
        }
    }
}
