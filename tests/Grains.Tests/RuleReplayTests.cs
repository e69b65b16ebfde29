using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

public sealed class RuleReplayTests
{
    private static readonly SensorGrainOptions Options = new();

    private static MinuteAggregate Aggregate(string sensorId, long minuteMs, double average) => new()
    {
        SensorId = sensorId,
        MinuteMs = minuteMs,
        Metrics = [new MetricAggregate { Metric = "hum", Count = 2, Min = average - 1, Max = average + 1, Sum = 2 * average, First = average - 1, Last = average + 1 }],
    };

    private static Alert Alert(RuleDefinition rule, long startedAtMs, long openedAtMs, long? resolvedAtMs, double value, string message) => new()
    {
        Id = AlertIds.For(rule.Id, rule.Version, "s1", startedAtMs),
        RuleId = rule.Id,
        RuleName = rule.Name,
        RuleVersion = rule.Version,
        SensorId = "s1",
        Severity = rule.Severity,
        State = resolvedAtMs is null ? AlertState.Open : AlertState.Resolved,
        StartedAtMs = startedAtMs,
        OpenedAtMs = openedAtMs,
        ResolvedAtMs = resolvedAtMs,
        ResolvedReason = resolvedAtMs is null ? null : "condition cleared",
        Value = value,
        Threshold = rule.Condition.Value,
        Message = message,
    };

    [Fact]
    public void ClosedMinuteReplayed_SignalsExactlyAsClosingItLive()
    {
        var rule = Threshold("r1", "hum", ComparisonOperator.Greater, 60, source: ConditionSource.Avg);
        var rules = RuleCatalog.From([rule]);
        var live = new SensorLogic("s1", null, Options);
        var liveEffects = new TestEffects();
        live.Apply(Reading("s1", M0 + 5_000, ("hum", 70)), M0 + 5_000, rules, liveEffects);
        live.Apply(Reading("s1", M0 + 35_000, ("hum", 72)), M0 + 35_000, rules, liveEffects);
        live.Advance(M0 + Minute + Options.AllowedLatenessMs, rules, liveEffects);
        var aggregate = Assert.Single(liveEffects.Emitted.OfType<MinuteAggregate>());

        var replayed = new SensorLogic("s1", null, Options);
        var replayEffects = new TestEffects();
        replayed.ReplayClosedMinute(aggregate, rules, replayEffects);

        Assert.Equal(Signal("r1", 1, "s1", true, M0, 71, "avg 71 > 60", sequence: 1), Assert.Single(replayEffects.Sent));
        Assert.Equal(liveEffects.Sent, replayEffects.Sent);
        Assert.Empty(replayEffects.Emitted);
    }

    [Fact]
    public void Replay_AppliesCooldownAndForMinutes_AsTheRuleGrainDoes()
    {
        var rule = Threshold("r1", "hum", ComparisonOperator.Greater, 60, source: ConditionSource.Avg, cooldownSeconds: 180);
        var minutes = new[] { 70.0, 50, 72, 73, 74, 50 }.Select((avg, k) => Aggregate("s1", M0 + k * Minute, avg)).ToArray();

        var alerts = RuleReplay.ReplaySensor(rule, "s1", null, minutes, M0 + 10 * Minute, Options);

        // Opens at once, resolves at minute 1; holds again from minute 2 but the cooldown lasts until minute 4.
        Assert.Equal(
        [
            Alert(rule, M0, M0, M0 + Minute, 70, "avg 70 > 60"),
            Alert(rule, M0 + 4 * Minute, M0 + 4 * Minute, M0 + 5 * Minute, 72, "avg 72 > 60"),
        ], alerts);

        var pending = rule with { CooldownSeconds = 0, Condition = rule.Condition with { ForMinutes = 3 } };
        // Minutes 2-4 hold for three minutes: opens when minute 5 starts (the sensor's time for a minute condition once
        // minute 4 closed), resolves at once; still open at the end is kept open.
        Assert.Equal(
            [Alert(pending, M0 + 2 * Minute, M0 + 5 * Minute, M0 + 5 * Minute, 72, "avg 72 > 60")],
            RuleReplay.ReplaySensor(pending, "s1", null, minutes, M0 + 10 * Minute, Options));
        Assert.Equal(
            [Alert(pending, M0 + 2 * Minute, M0 + 5 * Minute, null, 72, "avg 72 > 60")],
            RuleReplay.ReplaySensor(pending, "s1", null, minutes[..5], M0 + 10 * Minute, Options));
        // The end of the range stops the timers: not open yet at minute 4's close if the range ends there.
        Assert.Empty(RuleReplay.ReplaySensor(pending, "s1", null, minutes[..4], M0 + 4 * Minute + 30_000, Options));
    }

    [Fact]
    public void Plan_RefusesWhatMinuteAggregatesCannotTell_AndApproximatesRawThresholds()
    {
        var exact = Threshold("r1", "hum", ComparisonOperator.Less, 50, source: ConditionSource.Min, enabled: false);
        Assert.Equal(exact with { Enabled = true }, RuleReplay.Plan(exact, out var approximation, out var refusal));
        Assert.Null(approximation);
        Assert.Null(refusal);

        var raw = Threshold("r1", "hum", ComparisonOperator.LessOrEqual, 50);
        Assert.Equal(ConditionSource.Min, RuleReplay.Plan(raw, out approximation, out refusal)!.Condition.Source);
        Assert.StartsWith("raw readings are not stored: the condition was evaluated on each minute's min", approximation, StringComparison.Ordinal);
        Assert.Null(refusal);
        Assert.Equal(ConditionSource.Max, RuleReplay.Plan(raw with { Condition = raw.Condition with { Operator = ComparisonOperator.Greater } }, out _, out _)!.Condition.Source);

        Assert.Null(RuleReplay.Plan(raw with { Condition = raw.Condition with { Operator = ComparisonOperator.NotEqual } }, out approximation, out refusal));
        Assert.Null(approximation);
        Assert.StartsWith("a raw-reading condition with != cannot be previewed", refusal, StringComparison.Ordinal);
        Assert.Null(RuleReplay.Plan(Offline("r2", 5), out _, out refusal));
        Assert.StartsWith("an offline condition cannot be previewed", refusal, StringComparison.Ordinal);
    }
}
