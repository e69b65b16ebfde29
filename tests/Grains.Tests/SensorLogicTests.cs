using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

public sealed class SensorGrainTests
{
    private readonly SensorGrainOptions _options = new() { AllowedLatenessMs = 10_000, LastReadingsCount = 10 };
    private readonly TestGrainContext _context = new(GrainId.Sensor("s1"));
    private readonly SensorGrain _grain;

    public SensorGrainTests() => _grain = new SensorGrain("s1", null, _options);

    /// <summary>Delivers a reading the way the runtime does: stream time first advances to the reading's event time.</summary>
    private void Deliver(Reading reading)
    {
        _context.StreamTimeMs = Math.Max(_context.StreamTimeMs, reading.TimestampMs);
        _grain.Receive(reading, _context);
    }

    private void Deliver(long timeMs, params (string Name, double Value)[] metrics) => Deliver(Reading("s1", timeMs, metrics));

    private void WakeAt(long streamTimeMs)
    {
        _context.StreamTimeMs = streamTimeMs;
        _grain.Wake(_context);
    }

    private static MinuteAggregate Aggregate(long minute, params MetricAggregate[] metrics) =>
        new() { SensorId = "s1", MinuteMs = minute, Metrics = metrics };

    private static MetricAggregate Stats(string metric, long count, double min, double max, double sum, double first, double last) =>
        new() { Metric = metric, Count = count, Min = min, Max = max, Sum = sum, First = first, Last = last };

    [Fact]
    public void Aggregates_count_min_max_sum_avg_first_last_with_out_of_order_event_times()
    {
        Deliver(M0 + 30_000, ("temp", 20), ("hum", 60));
        Deliver(M0 + 10_000, ("temp", 25));              // earlier event time: becomes First
        Deliver(M0 + 50_000, ("temp", 18), ("hum", 40));
        Deliver(M0 + 50_000, ("temp", 19));              // same (greatest) event time, later arrival: becomes Last
        Deliver(M0 + 10_000, ("temp", 30));              // same (smallest) event time, later arrival: First stays 25

        var current = _grain.CurrentMinute();
        Assert.NotNull(current);
        Assert.Equal(
            Json(Aggregate(M0, Stats("hum", 2, 40, 60, 100, 60, 40), Stats("temp", 5, 18, 30, 112, 25, 19))),
            Json(current));
        Assert.Equal(22.4, current.Metrics[1].Avg);
        Assert.Equal(50, current.Metrics[0].Avg);
        Assert.Empty(_context.Emitted);
        Assert.Equal(M0 + 70_000, _context.WakeAtMs);

        WakeAt(M0 + 70_000);

        Assert.Equal(
            Json([Aggregate(M0, Stats("hum", 2, 40, 60, 100, 60, 40), Stats("temp", 5, 18, 30, 112, 25, 19))]),
            Json(_context.Emitted));
        Assert.Equal("s1@" + M0, _context.Emitted[0].Id);
        Assert.Empty(_grain.View().Windows);
        Assert.Equal(M0, _grain.View().LastClosedMinuteMs);
        Assert.Null(_grain.CurrentMinute());
        Assert.Null(_context.WakeAtMs);
        Assert.Empty(_context.Sent);
    }

    [Fact]
    public void Minute_boundaries_start_is_inclusive_and_end_exclusive()
    {
        Deliver(M0 + 59_999, ("v", 1));   // hh:mm:59.999 -> minute M0
        Deliver(M0 + 60_000, ("v", 2));   // hh:(mm+1):00.000 -> minute M0 + 1 min
        Deliver(M0, ("v", 3));            // hh:mm:00.000 -> minute M0

        Assert.Equal([M0, M0 + Minute], _grain.View().Windows.Keys.Order());
        Assert.Equal(M0 + 70_000, _context.WakeAtMs);

        WakeAt(M0 + 70_000);
        Assert.Equal(Json([Aggregate(M0, Stats("v", 2, 1, 3, 4, 3, 1))]), Json(_context.Emitted));
        Assert.Equal(M0 + 130_000, _context.WakeAtMs);

        _context.ClearRecorded();
        WakeAt(M0 + 130_000);
        Assert.Equal(Json([Aggregate(M0 + Minute, Stats("v", 1, 2, 2, 2, 2, 2))]), Json(_context.Emitted));
        Assert.Null(_context.WakeAtMs);
    }

    [Fact]
    public void Wake_closes_several_windows_in_minute_order()
    {
        Deliver(M0 + Minute + 1, ("v", 2));
        Deliver(M0 + 1, ("v", 1));

        WakeAt(M0 + 10 * Minute);

        Assert.Equal(
            Json([Aggregate(M0, Stats("v", 1, 1, 1, 1, 1, 1)), Aggregate(M0 + Minute, Stats("v", 1, 2, 2, 2, 2, 2))]),
            Json(_context.Emitted));
        Assert.Equal(M0 + Minute, _grain.View().LastClosedMinuteMs);
    }

    [Fact]
    public void Reading_within_allowed_lateness_is_counted_and_one_after_close_is_late()
    {
        Deliver(M0 + 5_000, ("v", 1));
        Deliver(M0 + 65_000, ("v", 2));   // next minute; stream time M0+65s
        Deliver(M0 + 40_000, ("v", 3));   // M0 closes at M0+70s: still counted
        Deliver(M0 + 70_000, ("v", 4));   // stream time reaches M0's close time
        Deliver(M0 + 45_000, ("v", 5));   // M0 is past its close time: late

        var state = _grain.View();
        Assert.Equal(1, state.LateCount);
        Assert.Equal(M0 + 45_000, state.LastLate!.TimestampMs);
        Assert.Equal(M0, state.LastLate.MinuteMs);
        Assert.True(state.LastReadings[0].Late);
        Assert.Equal(5, state.LastReadings[0].Metrics["v"]);
        Assert.All(state.LastReadings.Skip(1), r => Assert.False(r.Late));
        Assert.Equal(M0 + 70_000, state.LastSeenMs);
        Assert.Equal(4, state.Latest["v"].Value);
        var window = state.Windows[M0]["v"];
        Assert.Equal((2L, 4.0, 1.0, 3.0), (window.Count, window.Sum, window.First, window.Last));

        WakeAt(M0 + 70_000);
        Assert.Equal(Json([Aggregate(M0, Stats("v", 2, 1, 3, 4, 1, 3))]), Json(_context.Emitted));

        // After the close, the minute is late for good, whatever the lateness.
        _context.ClearRecorded();
        Deliver(M0 + 59_000, ("v", 6));
        state = _grain.View();
        Assert.Equal(2, state.LateCount);
        Assert.Equal(M0 + 59_000, state.LastLate!.TimestampMs);
        Assert.False(state.Windows.ContainsKey(M0));
        Assert.Equal(Json(Aggregate(M0 + Minute, Stats("v", 2, 2, 4, 6, 2, 4))), Json(_grain.CurrentMinute()!));
        Assert.Empty(_context.Emitted);
        Assert.Equal(2, ((SensorSummary)_grain.Snapshot()!).LateCount);
    }

    [Fact]
    public void Minute_closed_by_this_grain_is_late_even_with_a_large_lateness()
    {
        var grain = new SensorGrain("s1", null, new SensorGrainOptions { AllowedLatenessMs = 0 });
        var context = new TestGrainContext(GrainId.Sensor("s1")) { StreamTimeMs = M0 + 1_000 };
        grain.Receive(Reading("s1", M0 + 1_000, ("v", 1)), context);
        context.StreamTimeMs = M0 + Minute;
        grain.Wake(context);
        Assert.Equal(M0, grain.View().LastClosedMinuteMs);

        // Same state under a more lenient configuration: the minute is still closed.
        var lenient = new SensorGrain("s1", (SensorState)grain.State, new SensorGrainOptions { AllowedLatenessMs = 3_600_000 });
        lenient.Receive(Reading("s1", M0 + 2_000, ("v", 2)), context);
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

        var state = _grain.View();
        Assert.Equal(10, state.LastReadings.Count);
        Assert.Equal(Enumerable.Range(1, 10).Reverse().Select(i => M0 + i * 1_000L), state.LastReadings.Select(r => r.TimestampMs));
        Assert.Equal(Enumerable.Range(1, 10).Reverse().Select(i => (double)i), state.LastReadings.Select(r => r.Metrics["v"]));
        Assert.Equal("on", state.LastReadings[0].Attributes!["light"]);
        Assert.Equal(10, state.Latest["v"].Value);
        Assert.Equal("on", state.Attributes["light"].Value);

        Deliver(Reading("s1", M0 + 10_000, ("v", 99)) with { Attributes = [new AttributeValue("light", "off")] }); // tie: later arrival wins
        Deliver(Reading("s1", M0 + 500, ("v", -1), ("w", 7)) with { Attributes = [new AttributeValue("light", "on")] }); // older: only new names
        state = _grain.View();

        Assert.Equal(99, state.Latest["v"].Value);
        Assert.Equal(M0 + 10_000, state.Latest["v"].TimeMs);
        Assert.Equal(7, state.Latest["w"].Value);
        Assert.Equal("off", state.Attributes["light"].Value);
        Assert.Equal(M0 + 10_000, state.LastSeenMs);
        Assert.Equal(10, state.LastReadings.Count);
        Assert.Equal([M0 + 500, M0 + 10_000, M0 + 10_000, M0 + 9_000], state.LastReadings.Take(4).Select(r => r.TimestampMs));

        var summary = (SensorSummary)_grain.Snapshot()!;
        Assert.Equal("s1", summary.SensorId);
        Assert.Equal(M0 + 10_000, summary.LastSeenMs);
        Assert.Equal(new Dictionary<string, double> { ["v"] = 99, ["w"] = 7 }, summary.Latest);
        Assert.Equal(new Dictionary<string, string> { ["light"] = "off" }, summary.Attributes);
        Assert.Equal(0, summary.LateCount);
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

        var metadata = _grain.View().Metadata!;
        Assert.Equal(("HW-MD202", "roof", "ana", (string?)null), (metadata.Model, metadata.Location, metadata.Owner, metadata.Version));
        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" }, metadata.Extra);

        var summary = (SensorSummary)_grain.Snapshot()!;
        Assert.Equal("roof", summary.Metadata!.Location);
        Assert.Equal(metadata.Extra, summary.Metadata.Extra);
        Assert.NotSame(metadata.Extra, summary.Metadata.Extra);
    }

    [Fact]
    public void Location_target_follows_merged_metadata()
    {
        var rule = Threshold("r1", "v", ComparisonOperator.Greater, 10, target: new RuleTarget { Kind = TargetKind.Location, Location = "garden" });
        _context.Rules = RuleCatalog.From([rule]);

        Deliver(M0, ("v", 20));    // no location yet: not targeted
        Assert.Empty(_context.Sent);

        Deliver(Reading("s1", M0 + 1_000, ("v", 21)) with { Metadata = new SensorMetadata { Location = "garden" } });
        Assert.Equal([(GrainId.Rule("r1"), (GrainMessage)Signal("r1", 1, "s1", true, M0 + 1_000, 21, "21 > 10"))], _context.Sent);
    }

    [Fact]
    public void Requests_the_earliest_window_close_or_offline_deadline()
    {
        _context.Rules = RuleCatalog.From([Offline("off", 5)]);

        Deliver(M0 + 30_000, ("v", 1));
        Assert.Equal(M0 + 70_000, _context.WakeAtMs);
        Assert.Equal(M0 + 70_000, _grain.View().WakeAtMs);

        Deliver(M0 + 90_000, ("v", 2));
        Assert.Equal(M0 + 70_000, _context.WakeAtMs);

        WakeAt(M0 + 70_000);
        Assert.Equal(M0 + 130_000, _context.WakeAtMs);

        WakeAt(M0 + 130_000);
        Assert.Equal(M0 + 90_000 + 5 * Minute, _context.WakeAtMs);
    }

    [Fact]
    public void Requests_no_wake_when_nothing_is_pending()
    {
        Deliver(M0, ("v", 1));
        Assert.Equal(M0 + 70_000, _context.WakeAtMs);

        WakeAt(M0 + 70_000);
        Assert.Null(_context.WakeAtMs);
        Assert.Null(_grain.View().WakeAtMs);
    }

    [Fact]
    public void Raw_threshold_sends_a_signal_only_on_edges()
    {
        _context.Rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50)]);

        Deliver(M0 + 1_000, ("hum", 55));            // not holding, as assumed: nothing
        Deliver(M0 + 2_000, ("hum", 49));            // starts holding
        Deliver(M0 + 3_000, ("hum", 48));            // still holding: nothing
        Deliver(M0 + 4_000, ("temp", 10));           // metric absent: nothing
        Deliver(M0 + 5_000, ("hum", 50));            // stops holding
        Deliver(M0 + 6_000, ("hum", 51));            // still not holding: nothing
        Deliver(M0 + 7_000, ("hum", 40.5));          // holds again

        var rule = GrainId.Rule("r1");
        Assert.Equal(
            [
                (rule, (GrainMessage)Signal("r1", 1, "s1", true, M0 + 2_000, 49, "49 < 50")),
                (rule, Signal("r1", 1, "s1", false, M0 + 5_000, 50, "50 < 50")),
                (rule, Signal("r1", 1, "s1", true, M0 + 7_000, 40.5, "40.5 < 50")),
            ],
            _context.Sent);
        Assert.Equal(M0 + 7_000, _grain.View().Rules["r1"].SinceMs);
    }

    [Fact]
    public void Late_reading_is_not_evaluated_against_rules()
    {
        _context.Rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50)]);
        Deliver(M0 + 80_000, ("hum", 60));
        Deliver(M0 + 1_000, ("hum", 10));   // M0 closed at M0+70s: late

        Assert.Empty(_context.Sent);
        Assert.Equal(1, _grain.View().LateCount);
        Assert.Equal(60, _grain.View().Latest["hum"].Value);
        Assert.False(_grain.View().Rules["r1"].Holding);
    }

    [Fact]
    public void Aggregate_rules_are_evaluated_when_the_window_closes()
    {
        _context.Rules = RuleCatalog.From(
        [
            Threshold("r-avg", "temp", ComparisonOperator.Greater, 30, ConditionSource.Avg),
            Threshold("r-count", "temp", ComparisonOperator.GreaterOrEqual, 2, ConditionSource.Count),
            Threshold("r-max", "hum", ComparisonOperator.Greater, 90, ConditionSource.Max),
        ]);

        Deliver(M0 + 1_000, ("temp", 30));
        Deliver(M0 + 2_000, ("temp", 33));
        Assert.Empty(_context.Sent);                 // aggregate rules ignore raw readings

        WakeAt(M0 + 70_000);
        Assert.Equal(
            [
                (GrainId.Rule("r-avg"), (GrainMessage)Signal("r-avg", 1, "s1", true, M0, 31.5, "avg 31.5 > 30")),
                (GrainId.Rule("r-count"), Signal("r-count", 1, "s1", true, M0, 2, "count 2 >= 2")),
            ],
            _context.Sent);

        _context.ClearRecorded();
        Deliver(M0 + Minute + 1_000, ("temp", 20));
        Deliver(M0 + Minute + 2_000, ("temp", 25));
        Deliver(M0 + Minute + 3_000, ("temp", 26));
        WakeAt(M0 + 130_000);
        Assert.Equal(
            [(GrainId.Rule("r-avg"), (GrainMessage)Signal("r-avg", 1, "s1", false, M0 + Minute, 23.666666666666668, "avg 23.666666666666668 > 30"))],
            _context.Sent);
        Assert.Equal(Json([Aggregate(M0 + Minute, Stats("temp", 3, 20, 26, 71, 20, 26))]), Json(_context.Emitted));
    }

    [Fact]
    public void Offline_rule_fires_on_wake_and_clears_on_data()
    {
        _context.Rules = RuleCatalog.From([Offline("off", 5)]);

        Deliver(M0, ("v", 1));
        Assert.Empty(_context.Sent);
        Assert.Equal(M0 + 70_000, _context.WakeAtMs);

        WakeAt(M0 + 70_000);
        Assert.Empty(_context.Sent);
        Assert.Equal(M0 + 5 * Minute, _context.WakeAtMs);

        WakeAt(M0 + 7 * Minute + 1_234);
        Assert.Equal([(GrainId.Rule("off"), (GrainMessage)Signal("off", 1, "s1", true, M0 + 5 * Minute, 7, "no data for 5 min"))], _context.Sent);
        Assert.Null(_context.WakeAtMs);

        WakeAt(M0 + 9 * Minute);                      // still holding: no repeat
        Assert.Single(_context.Sent);

        Deliver(M0 + 10 * Minute, ("v", 2));
        Assert.Equal(
            [
                (GrainId.Rule("off"), (GrainMessage)Signal("off", 1, "s1", true, M0 + 5 * Minute, 7, "no data for 5 min")),
                (GrainId.Rule("off"), Signal("off", 1, "s1", false, M0 + 10 * Minute, null, "data received")),
            ],
            _context.Sent);
        Assert.Equal(M0 + 10 * Minute + 70_000, _context.WakeAtMs);
    }

    [Fact]
    public void Rule_version_change_resets_the_condition_and_removed_rules_are_dropped()
    {
        _context.Rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50)]);
        Deliver(M0 + 1_000, ("hum", 49));

        // Version 2, same condition: treated as not holding, so holding again is an edge.
        _context.Rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50, version: 2)]);
        Deliver(M0 + 2_000, ("hum", 48));

        // Version 3 with a stricter threshold: not holding is no edge for a new version.
        _context.Rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 40, version: 3)]);
        Deliver(M0 + 3_000, ("hum", 45));

        Assert.Equal(
            [
                (GrainId.Rule("r1"), (GrainMessage)Signal("r1", 1, "s1", true, M0 + 1_000, 49, "49 < 50")),
                (GrainId.Rule("r1"), Signal("r1", 2, "s1", true, M0 + 2_000, 48, "48 < 50")),
            ],
            _context.Sent);
        Assert.Equal(3, _grain.View().Rules["r1"].Version);
        Assert.False(_grain.View().Rules["r1"].Holding);

        _context.Rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 40, version: 4, enabled: false)]);
        Deliver(M0 + 4_000, ("hum", 10));
        Assert.Empty(_grain.View().Rules);

        _context.Rules = RuleCatalog.Empty;
        Deliver(M0 + 5_000, ("hum", 10));
        Assert.Empty(_grain.View().Rules);
        Assert.Equal(2, _context.Sent.Count);
    }

    [Fact]
    public void Same_input_gives_same_output()
    {
        string Run()
        {
            var context = new TestGrainContext(GrainId.Sensor("s1"))
            {
                Rules = RuleCatalog.From([Threshold("r1", "hum", ComparisonOperator.Less, 50), Offline("off", 2)]),
            };
            var grain = new SensorGrain("s1", null, _options);
            foreach (var (t, v) in new[] { (M0 + 1_000, 49.0), (M0 + 2_000, 51.0), (M0 + 65_000, 30.0), (M0 + 500, 1.0) })
            {
                context.StreamTimeMs = Math.Max(context.StreamTimeMs, t);
                grain.Receive(Reading("s1", t, ("hum", v)), context);
            }

            context.StreamTimeMs = M0 + 10 * Minute;
            grain.Wake(context);
            return Json(context.Emitted) + string.Join("|", context.Sent) + context.WakeAtMs + grain.View().LateCount;
        }

        Assert.Equal(Run(), Run());
    }
}
