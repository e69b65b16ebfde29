using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

public sealed class SensorLogicTests
{
    private readonly SensorGrainOptions _options = new() { AllowedLatenessMs = 10_000, LastReadingsCount = 10 };
    private readonly TestEffects _effects = new();
    private readonly SensorLogic _logic;
    private RuleCatalog _rules = RuleCatalog.Empty;

    public SensorLogicTests() => _logic = new SensorLogic("s1", null, _options);

    /// <summary>
    /// Delivers a reading received at its own event time: the sensor's clock then equals the greatest event time so far
    /// (what stream time was), what is due by then closes, then the reading is applied.
    /// </summary>
    private void Deliver(Reading reading) => _logic.Apply(reading, reading.TimestampMs, _rules, _effects);

    private void Deliver(long timeMs, params (string Name, double Value)[] metrics) => Deliver(Reading("s1", timeMs, metrics));

    /// <summary>Lets the sensor's clock run to <paramref name="receivedAtMs"/> without a reading.</summary>
    private void WakeAt(long receivedAtMs) => _logic.Advance(receivedAtMs, _rules, _effects);

    private static MinuteAggregate Aggregate(long minute, params MetricAggregate[] metrics) =>
        new() { SensorId = "s1", MinuteMs = minute, Metrics = metrics };

    private static MetricAggregate Stats(string metric, long count, double min, double max, double sum, double first, double last) =>
        new() { Metric = metric, Count = count, Min = min, Max = max, Sum = sum, First = first, Last = last };

    /// <summary>
    /// Distinct names per sensor are bounded (issue 10 item 5): admission takes names while there is room and counts
    /// them at once; a reading that brings a name past the limit anyway (admissions raced) keeps its other values and the
    /// extra one is dropped and counted, never stored.
    /// </summary>
    [Fact]
    public void Names_are_admitted_up_to_the_limits_and_a_name_past_them_is_dropped_and_counted()
    {
        var logic = new SensorLogic("s1", null, new SensorGrainOptions { MaxMetricNames = 3, MaxAttributeNames = 1 });

        static string Of(NameAdmission a) =>
            $"refused [{string.Join(",", a.RefusedMetrics)}] [{string.Join(",", a.RefusedAttributes)}] of {a.MaxMetricNames}/{a.MaxAttributeNames}, changed {a.Changed}";

        Assert.Equal("refused [] [] of 3/1, changed True", Of(logic.Admit(["temp", "hum"], ["door"])));
        Assert.Equal("refused [light] [window] of 3/1, changed True", Of(logic.Admit(["temp", "co2", "light", "light"], ["door", "window"])));
        Assert.Equal("refused [] [] of 3/1, changed False", Of(logic.Admit(["temp", "co2"], ["door"])));
        // Admitted names have no value yet: the sensor shows none of them and still has received nothing.
        Assert.False(logic.Exists);

        logic.Apply(Reading("s1", M0 + 1_000, ("temp", 21), ("light", 300)) with
        {
            Attributes = [new AttributeValue("door", "open"), new AttributeValue("window", "shut")],
        }, M0 + 1_000, _rules, _effects);

        var view = logic.View();
        Assert.Equal(["temp"], view.Latest.Keys);
        Assert.Equal(["door"], view.Attributes.Keys);
        Assert.Equal(2, view.NamesDropped);
        Assert.Equal(Json(new MinuteAggregate { SensorId = "s1", MinuteMs = M0, Metrics = [Stats("temp", 1, 21, 21, 21, 21, 21)] }),
            Json(logic.CurrentMinute()!));
    }

    [Fact]
    public void Aggregates_count_min_max_sum_avg_first_last_with_out_of_order_event_times()
    {
        Deliver(M0 + 30_000, ("temp", 20), ("hum", 60));
        Deliver(M0 + 10_000, ("temp", 25));              // earlier event time: becomes First
        Deliver(M0 + 50_000, ("temp", 18), ("hum", 40));
        Deliver(M0 + 50_000, ("temp", 19));              // same (greatest) event time, later arrival: becomes Last
        Deliver(M0 + 10_000, ("temp", 30));              // same (smallest) event time, later arrival: First stays 25

        var current = _logic.CurrentMinute();
        Assert.NotNull(current);
        Assert.Equal(
            Json(Aggregate(M0, Stats("hum", 2, 40, 60, 100, 60, 40), Stats("temp", 5, 18, 30, 112, 25, 19))),
            Json(current));
        Assert.Equal(22.4, current.Metrics[1].Avg);
        Assert.Equal(50, current.Metrics[0].Avg);
        Assert.Empty(_effects.Emitted);
        Assert.Equal(M0 + 70_000, _logic.NextDueMs());
        Assert.Equal(Json(current), Json(_logic.View().CurrentMinute!));

        WakeAt(M0 + 70_000);

        Assert.Equal(
            Json([Aggregate(M0, Stats("hum", 2, 40, 60, 100, 60, 40), Stats("temp", 5, 18, 30, 112, 25, 19))]),
            Json(_effects.Emitted));
        Assert.Equal("s1@" + M0, _effects.Emitted[0].Id);
        Assert.Empty(_logic.View().Windows);
        Assert.Equal(M0, _logic.View().LastClosedMinuteMs);
        Assert.Null(_logic.CurrentMinute());
        Assert.Null(_logic.View().CurrentMinute);
        Assert.Null(_logic.NextDueMs());
        Assert.Empty(_effects.Sent);
    }

    [Fact]
    public void Minute_boundaries_start_is_inclusive_and_end_exclusive()
    {
        Deliver(M0 + 59_999, ("v", 1));   // hh:mm:59.999 -> minute M0
        Deliver(M0 + 60_000, ("v", 2));   // hh:(mm+1):00.000 -> minute M0 + 1 min
        Deliver(M0, ("v", 3));            // hh:mm:00.000 -> minute M0

        Assert.Equal([M0, M0 + Minute], _logic.View().Windows.Keys.Order());
        Assert.Equal(M0 + 70_000, _logic.NextDueMs());

        WakeAt(M0 + 70_000);
        Assert.Equal(Json([Aggregate(M0, Stats("v", 2, 1, 3, 4, 3, 1))]), Json(_effects.Emitted));
        Assert.Equal(M0 + 130_000, _logic.NextDueMs());

        _effects.Clear();
        WakeAt(M0 + 130_000);
        Assert.Equal(Json([Aggregate(M0 + Minute, Stats("v", 1, 2, 2, 2, 2, 2))]), Json(_effects.Emitted));
        Assert.Null(_logic.NextDueMs());
    }

    [Fact]
    public void Wake_closes_several_windows_in_minute_order()
    {
        Deliver(M0 + Minute + 1, ("v", 2));
        Deliver(M0 + 1, ("v", 1));

        WakeAt(M0 + 10 * Minute);

        Assert.Equal(
            Json([Aggregate(M0, Stats("v", 1, 1, 1, 1, 1, 1)), Aggregate(M0 + Minute, Stats("v", 1, 2, 2, 2, 2, 2))]),
            Json(_effects.Emitted));
        Assert.Equal(M0 + Minute, _logic.View().LastClosedMinuteMs);
    }

    [Fact]
    public void Reading_within_allowed_lateness_is_counted_and_one_after_close_is_late()
    {
        Deliver(M0 + 5_000, ("v", 1));
        Deliver(M0 + 65_000, ("v", 2));   // next minute; the clock reads M0+65s
        Deliver(M0 + 40_000, ("v", 3));   // M0 closes at M0+70s: still counted
        Assert.Empty(_effects.Emitted);

        // Changed: what is due closes before a reading is applied, so the reading that brings the clock to M0's close
        // time closes M0 itself (the old grain waited for its wake-up); the aggregate is the same.
        Deliver(M0 + 70_000, ("v", 4));
        Assert.Equal(Json([Aggregate(M0, Stats("v", 2, 1, 3, 4, 1, 3))]), Json(_effects.Emitted));
        Deliver(M0 + 45_000, ("v", 5));   // M0 is past its close time: late

        var state = _logic.View();
        Assert.Equal(1, state.LateCount);
        Assert.Equal(M0 + 45_000, state.LastLate!.TimestampMs);
        Assert.Equal(M0, state.LastLate.MinuteMs);
        Assert.True(state.LastReadings[0].Late);
        Assert.Equal(5, state.LastReadings[0].Metrics["v"]);
        Assert.All(state.LastReadings.Skip(1), r => Assert.False(r.Late));
        Assert.Equal(M0 + 70_000, state.LastSeenMs);
        Assert.Equal(4, state.Latest["v"].Value);
        Assert.False(state.Windows.ContainsKey(M0));
        Assert.Equal(M0, state.LastClosedMinuteMs);

        WakeAt(M0 + 70_000);              // nothing more is due
        Assert.Equal(Json([Aggregate(M0, Stats("v", 2, 1, 3, 4, 1, 3))]), Json(_effects.Emitted));

        // After the close, the minute is late for good, whatever the lateness.
        _effects.Clear();
        Deliver(M0 + 59_000, ("v", 6));
        state = _logic.View();
        Assert.Equal(2, state.LateCount);
        Assert.Equal(M0 + 59_000, state.LastLate!.TimestampMs);
        Assert.False(state.Windows.ContainsKey(M0));
        Assert.Equal(Json(Aggregate(M0 + Minute, Stats("v", 2, 2, 4, 6, 2, 4))), Json(_logic.CurrentMinute()!));
        Assert.Empty(_effects.Emitted);
        Assert.Equal(2, _logic.Snapshot().LateCount);
    }

    [Fact]
    public void Minute_closed_by_this_grain_is_late_even_with_a_large_lateness()
    {
        var logic = new SensorLogic("s1", null, new SensorGrainOptions { AllowedLatenessMs = 0 });
        var effects = new TestEffects();
        logic.Apply(Reading("s1", M0 + 1_000, ("v", 1)), M0 + 1_000, RuleCatalog.Empty, effects);
        logic.Advance(M0 + Minute, RuleCatalog.Empty, effects);
        Assert.Equal(M0, logic.View().LastClosedMinuteMs);

        // Same state under a more lenient configuration: the minute is still closed.
        var lenient = new SensorLogic("s1", logic.State, new SensorGrainOptions { AllowedLatenessMs = 3_600_000 });
        lenient.Apply(Reading("s1", M0 + 2_000, ("v", 2)), M0 + 2_000, RuleCatalog.Empty, effects);
        Assert.Equal(1, lenient.View().LateCount);
        Assert.Empty(lenient.View().Windows);
    }

    [Fact]
    public void Keeps_latest_values_and_the_last_ten_readings_newest_first()
    {
        for (var i = 0; i <= 10; i++)
        {
            Deliver(Reading("s1", M0 + i * 1_000, ("v", i)) with { Attributes = [new AttributeValue("light", i % 2 == 0 ? "on" : "off")] });
        }

        var state = _logic.View();
        Assert.Equal(10, state.LastReadings.Count);
        Assert.Equal(Enumerable.Range(1, 10).Reverse().Select(i => M0 + i * 1_000L), state.LastReadings.Select(r => r.TimestampMs));
        Assert.Equal(Enumerable.Range(1, 10).Reverse().Select(i => (double)i), state.LastReadings.Select(r => r.Metrics["v"]));
        Assert.Equal("on", state.LastReadings[0].Attributes!["light"]);
        Assert.Equal(10, state.Latest["v"].Value);
        Assert.Equal("on", state.Attributes["light"].Value);

        Deliver(Reading("s1", M0 + 10_000, ("v", 99)) with { Attributes = [new AttributeValue("light", "off")] }); // tie: later arrival wins
        Deliver(Reading("s1", M0 + 500, ("v", -1), ("w", 7)) with { Attributes = [new AttributeValue("light", "on")] }); // older: only new names
        state = _logic.View();

        Assert.Equal(99, state.Latest["v"].Value);
        Assert.Equal(M0 + 10_000, state.Latest["v"].TimeMs);
        Assert.Equal(7, state.Latest["w"].Value);
        Assert.Equal("off", state.Attributes["light"].Value);
        Assert.Equal(M0 + 10_000, state.LastSeenMs);
        Assert.Equal(10, state.LastReadings.Count);
        Assert.Equal([M0 + 500, M0 + 10_000, M0 + 10_000, M0 + 9_000], state.LastReadings.Take(4).Select(r => r.TimestampMs));

        var summary = _logic.Snapshot();
        Assert.Equal("s1", summary.SensorId);
        Assert.Equal(M0 + 10_000, summary.LastSeenMs);
        Assert.Equal(new Dictionary<string, double> { ["v"] = 99, ["w"] = 7 }, summary.Latest);
        Assert.Equal(new Dictionary<string, string> { ["light"] = "off" }, summary.Attributes);
        Assert.Equal(0, summary.LateCount);
        Assert.Equal(-1, summary.AppliedPosition);
    }

    [Fact]
    public void Merges_metadata_non_null_fields_overwrite_and_extra_is_merged()
    {
        Deliver(Reading("s1", M0, ("v", 1)) with
        {
            Metadata = new SensorMetadata { Model = "HW-MD202", Location = "garden", Extra = new() { ["a"] = "1", ["b"] = "x" } },
        });
        Deliver(Reading("s1", M0 + 1_000, ("v", 2)) with
        {
            Metadata = new SensorMetadata { Location = "roof", Owner = "ana", Extra = new() { ["b"] = "2" } },
        });
        Deliver(M0 + 2_000, ("v", 3));

        var metadata = _logic.View().Metadata!;
        Assert.Equal(("HW-MD202", "roof", "ana", (string?)null), (metadata.Model, metadata.Location, metadata.Owner, metadata.Version));
        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" }, metadata.Extra);

        var summary = _logic.Snapshot();
        Assert.Equal("roof", summary.Metadata!.Location);
        Assert.Equal(metadata.Extra, summary.Metadata.Extra);
        Assert.NotSame(metadata.Extra, summary.Metadata.Extra);
    }

    [Fact]
    public void Location_target_follows_merged_metadata()
    {
        var rule = Threshold("r1", "v", ComparisonOperator.Greater, 10, target: new RuleTarget { Kind = TargetKind.Location, Location = "garden" });
        _rules = RuleCatalog.From([rule]);

        Deliver(M0, ("v", 20));    // no location yet: not targeted
        Assert.Empty(_effects.Sent);
        Assert.Null(_logic.RuleTimeMs("r1"));

        Deliver(Reading("s1", M0 + 1_000, ("v", 21)) with { Metadata = new SensorMetadata { Location = "garden" } });
        Assert.Equal([Signal("r1", 1, "s1", true, M0 + 1_000, 21, "21 > 10", sequence: 1)], _effects.Sent);
        Assert.Equal(M0 + 1_000, _logic.RuleTimeMs("r1"));
    }

    [Fact]
    public void Requests_the_earliest_window_close_or_offline_deadline()
    {
        _rules = RuleCatalog.From([Offline("off", 5)]);

        Deliver(M0 + 30_000, ("v", 1));
        Assert.Equal(M0 + 70_000, _logic.NextDueMs());
        Assert.Equal(M0 + 70_000, _logic.WakeAtReceivedMs());

        // Changed: a reading that brings the clock past a close time closes that minute first (the old grain kept it
        // open until its wake-up at M0+70s), so the next thing due is the next minute's close.
        Deliver(M0 + 90_000, ("v", 2));
        Assert.Equal(M0, Assert.IsType<MinuteAggregate>(Assert.Single(_effects.Emitted)).MinuteMs);
        Assert.Equal(M0 + 130_000, _logic.NextDueMs());

        WakeAt(M0 + 130_000);
        Assert.Equal(M0 + 90_000 + 5 * Minute, _logic.NextDueMs());
        Assert.Equal(M0 + 90_000 + 5 * Minute, _logic.WakeAtReceivedMs());
    }

    [Fact]
    public void Requests_no_wake_when_nothing_is_pending()
    {
        Assert.Null(_logic.WakeAtReceivedMs());
        Deliver(M0, ("v", 1));
        Assert.Equal(M0 + 70_000, _logic.NextDueMs());

        WakeAt(M0 + 70_000);
        Assert.Null(_logic.NextDueMs());
        Assert.Null(_logic.WakeAtReceivedMs());
    }

    [Fact]
    public void Raw_threshold_sends_a_signal_only_on_edges()
    {
        _rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50)]);

        Deliver(M0 + 1_000, ("hum", 55));            // not holding, as assumed: nothing
        Deliver(M0 + 2_000, ("hum", 49));            // starts holding
        Deliver(M0 + 3_000, ("hum", 48));            // still holding: nothing
        Deliver(M0 + 4_000, ("temp", 10));           // metric absent: nothing
        Deliver(M0 + 5_000, ("hum", 50));            // stops holding
        Deliver(M0 + 6_000, ("hum", 51));            // still not holding: nothing
        Deliver(M0 + 7_000, ("hum", 40.5));          // holds again

        Assert.Equal(
            [
                Signal("r1", 1, "s1", true, M0 + 2_000, 49, "49 < 50", sequence: 1),
                Signal("r1", 1, "s1", false, M0 + 5_000, 50, "50 < 50", sequence: 2),
                Signal("r1", 1, "s1", true, M0 + 7_000, 40.5, "40.5 < 50", sequence: 3),
            ],
            _effects.Sent);
        Assert.Equal(M0 + 7_000, _logic.View().Rules["r1"].SinceMs);
    }

    [Fact]
    public void Late_reading_is_not_evaluated_against_rules()
    {
        _rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50)]);
        Deliver(M0 + 80_000, ("hum", 60));
        Deliver(M0 + 1_000, ("hum", 10));   // M0 closed at M0+70s: late

        Assert.Empty(_effects.Sent);
        Assert.Equal(1, _logic.View().LateCount);
        Assert.Equal(60, _logic.View().Latest["hum"].Value);
        Assert.False(_logic.View().Rules["r1"].Holding);
    }

    [Fact]
    public void Aggregate_rules_are_evaluated_when_the_window_closes()
    {
        _rules = RuleCatalog.From(
        [
            Threshold("r-avg", "temp", ComparisonOperator.Greater, 30, ConditionSource.Avg),
            Threshold("r-count", "temp", ComparisonOperator.GreaterOrEqual, 2, ConditionSource.Count),
            Threshold("r-max", "hum", ComparisonOperator.Greater, 90, ConditionSource.Max),
        ]);

        Deliver(M0 + 1_000, ("temp", 30));
        Deliver(M0 + 2_000, ("temp", 33));
        Assert.Empty(_effects.Sent);                 // aggregate rules ignore raw readings

        WakeAt(M0 + 70_000);
        Assert.Equal(
            [
                Signal("r-avg", 1, "s1", true, M0, 31.5, "avg 31.5 > 30", sequence: 1),
                Signal("r-count", 1, "s1", true, M0, 2, "count 2 >= 2", sequence: 2),
            ],
            _effects.Sent);

        _effects.Clear();
        Deliver(M0 + Minute + 1_000, ("temp", 20));
        Deliver(M0 + Minute + 2_000, ("temp", 25));
        Deliver(M0 + Minute + 3_000, ("temp", 26));
        WakeAt(M0 + 130_000);
        Assert.Equal(
            [Signal("r-avg", 1, "s1", false, M0 + Minute, 23.666666666666668, "avg 23.666666666666668 > 30", sequence: 3)],
            _effects.Sent);
        Assert.Equal(Json([Aggregate(M0 + Minute, Stats("temp", 3, 20, 26, 71, 20, 26))]), Json(_effects.Emitted));
    }

    [Fact]
    public void Offline_rule_fires_on_wake_and_clears_on_data()
    {
        _rules = RuleCatalog.From([Offline("off", 5)]);

        Deliver(M0, ("v", 1));
        Assert.Empty(_effects.Sent);
        Assert.Equal(M0 + 70_000, _logic.NextDueMs());

        WakeAt(M0 + 70_000);
        Assert.Empty(_effects.Sent);
        Assert.Equal(M0 + 5 * Minute, _logic.NextDueMs());

        WakeAt(M0 + 7 * Minute + 1_234);
        Assert.Equal([Signal("off", 1, "s1", true, M0 + 5 * Minute, 7, "no data for 5 min", sequence: 1)], _effects.Sent);
        Assert.Null(_logic.NextDueMs());

        WakeAt(M0 + 9 * Minute);                      // still holding: no repeat
        Assert.Single(_effects.Sent);

        Deliver(M0 + 10 * Minute, ("v", 2));
        Assert.Equal(
            [
                Signal("off", 1, "s1", true, M0 + 5 * Minute, 7, "no data for 5 min", sequence: 1),
                Signal("off", 1, "s1", false, M0 + 10 * Minute, null, "data received", sequence: 2),
            ],
            _effects.Sent);
        Assert.Equal(M0 + 10 * Minute + 70_000, _logic.NextDueMs());
    }

    [Fact]
    public void Rule_version_change_resets_the_condition_and_removed_rules_are_dropped()
    {
        _rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50)]);
        Deliver(M0 + 1_000, ("hum", 49));

        // Version 2, same condition: treated as not holding, so holding again is an edge.
        _rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50, version: 2)]);
        Deliver(M0 + 2_000, ("hum", 48));

        // Version 3 with a stricter threshold: not holding is no edge for a new version.
        _rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 40, version: 3)]);
        Deliver(M0 + 3_000, ("hum", 45));

        Assert.Equal(
            [
                Signal("r1", 1, "s1", true, M0 + 1_000, 49, "49 < 50", sequence: 1),
                Signal("r1", 2, "s1", true, M0 + 2_000, 48, "48 < 50", sequence: 2),
            ],
            _effects.Sent);
        Assert.Equal(3, _logic.View().Rules["r1"].Version);
        Assert.False(_logic.View().Rules["r1"].Holding);

        _rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 40, version: 4, enabled: false)]);
        Deliver(M0 + 4_000, ("hum", 10));
        Assert.Empty(_logic.View().Rules);

        _rules = RuleCatalog.Empty;
        Deliver(M0 + 5_000, ("hum", 10));
        Assert.Empty(_logic.View().Rules);
        Assert.Equal(2, _effects.Sent.Count);
    }

    [Fact]
    public void Same_input_gives_same_output()
    {
        string Run()
        {
            var rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50), Offline("off", 2)]);
            var effects = new TestEffects();
            var logic = new SensorLogic("s1", null, _options);
            foreach (var (t, v) in new[] { (M0 + 1_000, 49.0), (M0 + 2_000, 51.0), (M0 + 65_000, 30.0), (M0 + 500, 1.0) })
            {
                logic.Apply(Reading("s1", t, ("hum", v)), t, rules, effects);
            }

            logic.Advance(M0 + 10 * Minute, rules, effects);
            return Json(effects.Emitted) + string.Join("|", effects.Sent) + logic.NextDueMs() + logic.View().LateCount;
        }

        Assert.Equal(Run(), Run());
    }

    // The sensor's clock: its own time, from its readings' event times (capped at their receipt) and receipt time in between.

    [Fact]
    public void Clock_of_a_device_running_ahead_is_capped_at_receipt_time_and_closes_nothing_early()
    {
        // The device's clock runs 30 s ahead: event time = receipt time + 30 s.
        const long Ahead = 30_000;
        void Receive(long receivedAtMs, double value) =>
            _logic.Apply(Reading("s1", receivedAtMs + Ahead, ("v", value)), receivedAtMs, _rules, _effects);

        Receive(M0 + 20_000, 1);                       // event M0+50s
        Assert.Equal(M0 + 20_000, _logic.ClockMs);     // not M0+50s
        Assert.Equal(M0 + 20_000, _logic.View().ClockMs);

        Receive(M0 + 40_000, 2);                       // event M0+70s: minute M0+1min, and M0's close time by event time
        Assert.Equal(M0 + 40_000, _logic.ClockMs);
        Assert.Empty(_effects.Emitted);                // M0 stays open: the clock has not reached its close time
        Assert.Equal(M0 + 70_000, _logic.NextDueMs());
        Assert.Equal(M0 + 70_000, _logic.WakeAtReceivedMs());

        // A reading of minute M0 that took its time to arrive is still counted.
        _logic.Apply(Reading("s1", M0 + 55_000, ("v", 3)), M0 + 60_000, _rules, _effects);
        Assert.Equal(0, _logic.View().LateCount);

        _logic.Advance(M0 + 69_999, _rules, _effects);
        Assert.Empty(_effects.Emitted);
        _logic.Advance(M0 + 70_000, _rules, _effects);
        Assert.Equal(Json([Aggregate(M0, Stats("v", 2, 1, 3, 4, 1, 3))]), Json(_effects.Emitted));
        Assert.Equal(Json(Aggregate(M0 + Minute, Stats("v", 1, 2, 2, 2, 2, 2))), Json(_logic.CurrentMinute()!));
    }

    [Fact]
    public void Clock_of_a_device_running_behind_closes_its_minutes_in_its_own_time_and_no_reading_is_late()
    {
        // The device's clock runs 5 min behind: event time = receipt time - 5 min. Against receipt time every reading
        // would be late; against its own clock none is.
        const long Behind = 5 * Minute;
        for (var i = 0; i < 18; i++)
        {
            var eventTime = M0 + i * 10_000;           // three minutes of readings, every 10 s
            _logic.Apply(Reading("s1", eventTime, ("v", i)), eventTime + Behind, _rules, _effects);
        }

        Assert.Equal(0, _logic.View().LateCount);
        Assert.Equal(M0 + 170_000, _logic.ClockMs);
        Assert.Equal(
            Json([Aggregate(M0, Stats("v", 6, 0, 5, 15, 0, 5)), Aggregate(M0 + Minute, Stats("v", 6, 6, 11, 51, 6, 11))]),
            Json(_effects.Emitted));

        // Idle: the clock runs on with receipt time from where the device's time stood.
        Assert.Equal(M0 + 3 * Minute + 10_000, _logic.NextDueMs());
        Assert.Equal(M0 + 3 * Minute + 10_000 + Behind, _logic.WakeAtReceivedMs());
        _logic.Advance(M0 + 3 * Minute + 10_000 + Behind - 1, _rules, _effects);
        Assert.Equal(2, _effects.Emitted.Count);
        _logic.Advance(M0 + 3 * Minute + 10_000 + Behind, _rules, _effects);
        Assert.Equal(Json(Aggregate(M0 + 2 * Minute, Stats("v", 6, 12, 17, 87, 12, 17))), Json(_effects.Emitted[2]));
        Assert.Equal(0, _logic.View().LateCount);
    }

    [Fact]
    public void A_far_future_timestamp_moves_only_its_own_sensors_clock_and_only_to_receipt_time()
    {
        var other = new SensorLogic("s2", null, _options);
        var otherEffects = new TestEffects();
        var farFuture = new DateTimeOffset(2100, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

        _logic.Apply(Reading("s1", M0 + 5_000, ("v", 1)), M0 + 5_000, _rules, _effects);
        other.Apply(Reading("s2", farFuture, ("v", 9)), M0 + 6_000, _rules, otherEffects);
        Assert.Equal(M0 + 6_000, other.ClockMs);        // capped at its receipt time
        Assert.Equal(M0 + 5_000, _logic.ClockMs);

        // The idle sensor's minute closes by receipt time, whatever the other one sent.
        _logic.Advance(M0 + 70_000, _rules, _effects);
        Assert.Equal(Json([Aggregate(M0, Stats("v", 1, 1, 1, 1, 1, 1))]), Json(_effects.Emitted));
        Assert.Equal(M0 + 70_000, _logic.ClockMs);
        Assert.Empty(otherEffects.Emitted);
    }

    [Fact]
    public void Clock_never_runs_back_when_receipt_times_arrive_out_of_order()
    {
        _logic.Apply(Reading("s1", M0 + 10_000, ("v", 1)), M0 + 10_000, _rules, _effects);
        _logic.Apply(Reading("s1", M0 + 8_000, ("v", 2)), M0 + 9_000, _rules, _effects);   // an earlier receipt (another Api node)
        Assert.Equal((M0 + 10_000, M0 + 10_000), (_logic.ClockMs, _logic.ClockReceivedAtMs));
        _logic.Advance(M0 + 5_000, _rules, _effects);
        Assert.Equal((M0 + 10_000, M0 + 10_000), (_logic.ClockMs, _logic.ClockReceivedAtMs));
        _logic.Advance(M0 + 12_000, _rules, _effects);
        Assert.Equal((M0 + 12_000, M0 + 12_000), (_logic.ClockMs, _logic.ClockReceivedAtMs));
        Assert.Equal(2, _logic.CurrentMinute()!.Metrics[0].Count);
    }

    [Fact]
    public void Advance_before_the_first_reading_does_nothing()
    {
        _rules = RuleCatalog.From([Offline("off", 5)]);
        _logic.Advance(M0, _rules, _effects);

        Assert.False(_logic.Exists);
        Assert.Equal(long.MinValue, _logic.ClockMs);
        Assert.Null(_logic.NextDueMs());
        Assert.Null(_logic.WakeAtReceivedMs());
        Assert.Empty(_effects.Emitted);
        Assert.Empty(_effects.Sent);
        Assert.Equal("s1", _logic.View().SensorId);
    }

    [Fact]
    public void Apply_at_a_log_position_skips_a_position_already_applied()
    {
        _rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50)]);
        Assert.Equal(-1, _logic.AppliedPosition);

        // Two readings of the sensor in the log's record 7, one in record 9.
        Assert.True(_logic.Apply(LogPosition.Of(7, 0), Reading("s1", M0 + 1_000, ("hum", 49)), M0 + 1_000, _rules, _effects));
        Assert.True(_logic.Apply(LogPosition.Of(7, 1), Reading("s1", M0 + 1_500, ("hum", 48)), M0 + 1_500, _rules, _effects));
        Assert.True(_logic.Apply(LogPosition.Of(9, 0), Reading("s1", M0 + 2_000, ("hum", 60)), M0 + 2_000, _rules, _effects));
        var bytes = Bytes(_logic.State);

        // The log delivers again from record 7: nothing changes, nothing is sent again.
        Assert.False(_logic.Apply(LogPosition.Of(7, 0), Reading("s1", M0 + 1_000, ("hum", 49)), M0 + 1_000, _rules, _effects));
        Assert.False(_logic.Apply(LogPosition.Of(7, 1), Reading("s1", M0 + 1_500, ("hum", 48)), M0 + 1_500, _rules, _effects));
        Assert.False(_logic.Apply(LogPosition.Of(8, 0), Reading("s1", M0 + 90_000, ("hum", 1)), M0 + 90_000, _rules, _effects));
        Assert.False(_logic.Apply(LogPosition.Of(9, 0), Reading("s1", M0 + 2_000, ("hum", 60)), M0 + 2_000, _rules, _effects));
        Assert.Equal(bytes, Bytes(_logic.State));
        Assert.Equal(LogPosition.Of(9, 0), _logic.AppliedPosition);
        Assert.Equal(LogPosition.Of(9, 0), _logic.Snapshot().AppliedPosition);
        Assert.Equal(2, _effects.Sent.Count);
        Assert.Equal(3, _logic.CurrentMinute()!.Metrics[0].Count);

        Assert.True(_logic.Apply(LogPosition.Of(10, 0), Reading("s1", M0 + 3_000, ("hum", 40)), M0 + 3_000, _rules, _effects));
        Assert.Equal(4, _logic.CurrentMinute()!.Metrics[0].Count);
        Assert.Equal([1L, 2, 3], _effects.Sent.Select(s => s.Sequence));
    }

    [Fact]
    public void Signals_are_numbered_across_rules_and_the_numbering_is_stored()
    {
        _rules = RuleCatalog.From([Threshold("a", "hum", ComparisonOperator.Less, 50), Threshold("b", "hum", ComparisonOperator.Less, 40), Offline("off", 1)]);
        Deliver(M0 + 1_000, ("hum", 30));              // a and b start holding
        WakeAt(M0 + 2 * Minute);                       // off: no data for 1 min

        var restored = new SensorLogic("s1", RoundTrip(_logic.State), _options);
        restored.Apply(Reading("s1", M0 + 2 * Minute + 1_000, ("hum", 45)), M0 + 2 * Minute + 1_000, _rules, _effects);   // b stops, off stops

        Assert.Equal(
            [("a", true, 1L), ("b", true, 2L), ("off", true, 3L), ("b", false, 4L), ("off", false, 5L)],
            _effects.Sent.Select(s => (s.RuleId, s.Holding, s.Sequence)));
    }

    [Fact]
    public void Rule_time_of_a_minute_aggregate_rule_is_the_start_of_the_first_minute_not_yet_closed()
    {
        _rules = RuleCatalog.From(
        [
            Threshold("avg", "v", ComparisonOperator.Greater, 10, ConditionSource.Avg),
            Threshold("raw", "v", ComparisonOperator.Greater, 10),
        ]);
        Assert.Null(_logic.RuleTimeMs("avg"));

        Deliver(M0 + 5_000, ("v", 1));
        Assert.Equal(M0 - Minute, _logic.RuleTimeMs("avg"));   // even the minute before M0 may still get readings (until M0+10s)
        Assert.Equal(M0 + 5_000, _logic.RuleTimeMs("raw"));
        Assert.Null(_logic.RuleTimeMs("other"));

        WakeAt(M0 + 10_000);
        Assert.Equal(M0, _logic.RuleTimeMs("avg"));    // M0 is open: its signal is not known yet
        WakeAt(M0 + 69_999);
        Assert.Equal(M0, _logic.RuleTimeMs("avg"));
        WakeAt(M0 + 70_000);                           // M0 closed: every signal before M0+1min has been sent
        Assert.Equal(M0 + Minute, _logic.RuleTimeMs("avg"));
        Assert.Equal(M0 + 70_000, _logic.RuleTimeMs("raw"));
        WakeAt(M0 + 3 * Minute + 9_000);
        Assert.Equal(M0 + 2 * Minute, _logic.RuleTimeMs("avg"));
    }

    [Fact]
    public void Rules_due_tell_a_pending_rule_the_sensors_time_when_it_asked_for_it()
    {
        var rule = Threshold("r1", "hum", ComparisonOperator.Less, 50, forMinutes: 2);
        _rules = RuleCatalog.From([rule]);
        var ruleLogic = new RuleLogic("r1", null);
        var ruleEffects = new TestEffects();
        ruleLogic.Define(new RuleDefinitionChange("r1", rule, M0), ruleEffects);

        Deliver(M0 + 1_000, ("hum", 49));
        var due = ruleLogic.Receive(new SensorSignals("s1", [.. _effects.Sent], _logic.RuleTimeMs("r1")), ruleEffects);
        Assert.Equal(M0 + 1_000 + 2 * Minute, due);
        _logic.SetRuleDue("r1", due);
        Assert.Empty(_logic.RulesDue());
        Assert.Equal(M0 + 70_000, _logic.NextDueMs());               // the minute closes first

        WakeAt(M0 + 70_000);
        Assert.Equal(M0 + 1_000 + 2 * Minute, _logic.NextDueMs());   // then the rule's timer
        Assert.Equal(M0 + 1_000 + 2 * Minute, _logic.WakeAtReceivedMs());
        WakeAt(M0 + 2 * Minute);
        Assert.Empty(_logic.RulesDue());

        WakeAt(M0 + 1_000 + 2 * Minute);
        Assert.Equal([("r1", M0 + 1_000 + 2 * Minute)], _logic.RulesDue());
        Assert.Empty(ruleEffects.Emitted);
        var (ruleId, time) = _logic.RulesDue()[0];
        _logic.SetRuleDue(ruleId, ruleLogic.Receive(new SensorSignals("s1", [], time), ruleEffects));

        var opened = Assert.IsType<AlertEvent>(Assert.Single(ruleEffects.Emitted));
        Assert.Equal((AlertEventKind.Opened, M0 + 1_000, M0 + 1_000 + 2 * Minute), (opened.Kind, opened.Alert.StartedAtMs, opened.Alert.OpenedAtMs));
        Assert.Empty(_logic.RulesDue());
        Assert.Null(_logic.NextDueMs());

        _logic.SetRuleDue("unknown", M0);                            // a rule the sensor does not track: ignored
        Assert.Empty(_logic.RulesDue());
    }

    [Fact]
    public void A_minute_aggregate_rules_due_time_is_reached_when_that_minute_closes()
    {
        _rules = RuleCatalog.From([Threshold("avg", "v", ComparisonOperator.Greater, 10, ConditionSource.Avg)]);
        Deliver(M0 + 5_000, ("v", 20));
        _logic.SetRuleDue("avg", M0 + 30_000);

        // The rule's time reaches M0+30s only when the sensor's time for it does: once the minute holding M0+30s closed.
        Assert.Equal(M0 + 70_000, _logic.NextDueMs());
        Assert.Empty(_logic.RulesDue());
        WakeAt(M0 + 70_000);
        Assert.Equal([("avg", M0 + Minute)], _logic.RulesDue());
    }
}
