using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

/// <summary>
/// Outside conditions of a location joined into the closed minutes of its sensors (issue 13 item 3): the values current at
/// the minute's end, within the allowed age, per metric from the latest observation that has it; and rules comparing a
/// minute statistic with them (inside − outside).
/// </summary>
public sealed class OutsideConditionsTests
{
    private readonly SensorGrainOptions _options = new() { AllowedLatenessMs = 10_000, OutsideMaxAgeMs = 30 * Minute };
    private readonly TestEffects _effects = new();

    /// <summary>How long from its newest observation a location keeps the older ones.</summary>
    private const long Keep = 6 * 60 * Minute;

    private static OutsideObservation Observed(long timeMs, params (string Name, double Value)[] metrics) =>
        new() { TimestampMs = timeMs, Metrics = metrics.Select(m => new MetricValue(m.Name, m.Value)).ToArray() };

    private static Reading At(string location, long timeMs, double temperature) =>
        Reading("s1", timeMs, ("temperature", temperature)) with { Metadata = new SensorMetadata { Location = location } };

    private static string Values(MetricValue[]? values) => values is null ? "none" : string.Join(", ", values.Select(v => $"{v.Name}={v.Value}"));

    [Fact]
    public void The_values_current_at_a_time_come_per_metric_from_the_latest_observation_before_it_within_the_age()
    {
        var conditions = OutsideConditions.Empty
            .With("garden", [Observed(M0, ("humidity", 80), ("temperature", 10)), Observed(M0 + 20 * Minute, ("temperature", 12))], Keep)
            .With("roof", [Observed(M0, ("temperature", -3))], Keep);

        Assert.Equal("none", Values(conditions.At("garden", M0, 30 * Minute)));
        Assert.Equal("humidity=80, temperature=10", Values(conditions.At("garden", M0 + 1, 30 * Minute)));
        Assert.Equal("humidity=80, temperature=12", Values(conditions.At("garden", M0 + 20 * Minute + 1, 30 * Minute)));
        // Humidity was last observed 30 min and 1 ms before: too old.
        Assert.Equal("temperature=12", Values(conditions.At("garden", M0 + 30 * Minute + 1, 30 * Minute)));
        Assert.Equal("none", Values(conditions.At("garden", M0 + 50 * Minute + 1, 30 * Minute)));
        Assert.Equal("temperature=-3", Values(conditions.At("roof", M0 + Minute, 30 * Minute)));
        Assert.Equal("none", Values(conditions.At("cellar", M0 + Minute, 30 * Minute)));
        Assert.Equal("none", Values(conditions.At(null, M0 + Minute, 30 * Minute)));

        // An observation with a kept one's time replaces it; what is older than the kept range (from the newest one) goes, but
        // for the latest before it.
        var later = conditions.With("garden", [Observed(M0 + 20 * Minute, ("temperature", 13)), Observed(M0 + 90 * Minute, ("temperature", 15))], 30 * Minute);
        Assert.Equal([M0 + 20 * Minute, M0 + 90 * Minute], later.Locations.Single(l => l.Key == "garden").Value.Select(o => o.TimestampMs));
        Assert.Equal("temperature=13", Values(later.At("garden", M0 + 21 * Minute, 30 * Minute)));

        // A location keeps its newest 64 observations.
        var busy = OutsideConditions.Empty.With("roof", Enumerable.Range(0, 100).Select(i => Observed(M0 + i * Minute, ("temperature", i))).ToArray(), Keep);
        var kept = busy.Locations.Single().Value;
        Assert.Equal((OutsideConditions.MaxObservationsPerLocation, M0 + 36 * Minute, M0 + 99 * Minute), (kept.Length, kept[0].TimestampMs, kept[^1].TimestampMs));
    }

    [Fact]
    public void A_closed_minute_carries_the_outside_values_of_the_sensors_location_current_at_its_end()
    {
        var logic = new SensorLogic("s1", null, _options)
        {
            Outside = OutsideConditions.Empty
                .With("garden", [Observed(M0 - 5 * Minute, ("temperature", 9)), Observed(M0 + 59_999, ("humidity", 70), ("temperature", 11))], Keep)
                .With("roof", [Observed(M0, ("temperature", 2))], Keep),
        };

        logic.Apply(At("garden", M0 + 1_000, 21), M0 + 1_000, RuleCatalog.Empty, _effects);
        logic.Apply(At("garden", M0 + 30_000, 23), M0 + 30_000, RuleCatalog.Empty, _effects);
        // The minute closes at its end plus the allowed lateness; observations after its end are not joined into it.
        logic.Outside = logic.Outside.With("garden", [Observed(M0 + Minute, ("temperature", 50))], Keep);
        logic.Apply(At("garden", M0 + Minute + 10_000, 22), M0 + Minute + 10_000, RuleCatalog.Empty, _effects);

        var closed = Assert.IsType<MinuteAggregate>(Assert.Single(_effects.Emitted, o => o is MinuteAggregate));
        Assert.Equal(M0, closed.MinuteMs);
        Assert.Equal("humidity=70, temperature=11", Values(closed.Outside));
        Assert.Equal(2, closed.Metrics.Single().Count);

        // The sensor moves to the roof with a reading that first closes minute 1, still the garden's; minute 2 is the roof's.
        _effects.Clear();
        logic.Apply(At("roof", M0 + 2 * Minute + 10_000, 5), M0 + 2 * Minute + 10_000, RuleCatalog.Empty, _effects);
        Assert.Equal("humidity=70, temperature=50", Values(Assert.IsType<MinuteAggregate>(Assert.Single(_effects.Emitted, o => o is MinuteAggregate)).Outside));
        logic.Outside = logic.Outside.With("roof", [Observed(M0 + 2 * Minute + 30_000, ("temperature", 4))], Keep);
        _effects.Clear();
        logic.Advance(M0 + 3 * Minute + 10_000, RuleCatalog.Empty, _effects);
        Assert.Equal("temperature=4", Values(Assert.IsType<MinuteAggregate>(Assert.Single(_effects.Emitted, o => o is MinuteAggregate)).Outside));
    }

    [Fact]
    public void A_rule_on_inside_minus_outside_opens_when_the_difference_passes_and_a_minute_without_outside_changes_nothing()
    {
        var rule = Threshold("warm-inside", "temperature", ComparisonOperator.Greater, 10, ConditionSource.Avg,
            target: new RuleTarget { Kind = TargetKind.Location, Location = "garden" }) with
        {
            Condition = Threshold("x", "temperature", ComparisonOperator.Greater, 10, ConditionSource.Avg).Condition with { OutsideMetric = "temperature" },
        };
        var rules = RuleCatalog.From([rule]);
        var logic = new SensorLogic("s1", null, _options)
        {
            Outside = OutsideConditions.Empty.With("garden", [Observed(M0, ("temperature", 12))], Keep),
        };

        logic.Apply(At("garden", M0 + 1_000, 21), M0 + 1_000, rules, _effects);       // minute 0: avg 21, outside 12: 9, not > 10
        logic.Apply(At("garden", M0 + Minute + 10_000, 23), M0 + Minute + 10_000, rules, _effects);
        Assert.Empty(_effects.Sent);
        logic.Apply(At("garden", M0 + 2 * Minute + 10_000, 30), M0 + 2 * Minute + 10_000, rules, _effects); // minute 1: 23 - 12 = 11
        var opened = Assert.Single(_effects.Sent);
        Assert.Equal((true, M0 + Minute, 11.0, "avg 23 - outside 12 = 11 > 10"), (opened.Holding, opened.EventTimeMs, opened.Value, opened.Message));

        // Outside conditions stop (older than the allowed age): minutes without them leave the condition as it was.
        _effects.Clear();
        logic.Advance(M0 + 40 * Minute, rules, _effects);
        Assert.Empty(_effects.Sent);
        logic.Outside = logic.Outside.With("garden", [Observed(M0 + 40 * Minute, ("temperature", 25))], Keep);
        logic.Apply(At("garden", M0 + 40 * Minute + 1_000, 30), M0 + 40 * Minute + 1_000, rules, _effects);
        logic.Advance(M0 + 41 * Minute + 10_000, rules, _effects);
        var resolved = Assert.Single(_effects.Sent);
        Assert.Equal((false, M0 + 40 * Minute, 5.0, "avg 30 - outside 25 = 5 > 10"), (resolved.Holding, resolved.EventTimeMs, resolved.Value, resolved.Message));
    }
}
