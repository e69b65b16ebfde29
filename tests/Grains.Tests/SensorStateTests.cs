using System.Text;
using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

/// <summary>The compact sensor state: shared names, slots, presence, allocations and the checkpoint document.</summary>
public sealed class SensorStateTests
{
    private readonly GrainFactory _factory = new(new SensorGrainOptions { AllowedLatenessMs = 10_000, LastReadingsCount = 3 });

    private static string Fresh(string s) => new(s.AsSpan());

    private static Reading FreshReading(string sensorId, long timeMs, string light, params (string Name, double Value)[] metrics) => new()
    {
        SensorId = sensorId,
        TimestampMs = timeMs,
        Metrics = metrics.Select(m => new MetricValue(Fresh(m.Name), m.Value)).ToArray(),
        Attributes = [new AttributeValue(Fresh("light"), Fresh(light))],
        Metadata = new SensorMetadata { Model = Fresh("HW-MD202"), Location = Fresh("garden") },
    };

    private static void Deliver(IGrain grain, TestGrainContext context, Reading reading)
    {
        context.StreamTimeMs = Math.Max(context.StreamTimeMs, reading.TimestampMs);
        grain.Receive(reading, context);
    }

    [Fact]
    public void Sensors_of_one_factory_share_metric_names_attribute_values_and_metadata()
    {
        var a = (SensorGrain)_factory.Activate(GrainId.Sensor("a"), null);
        var b = (SensorGrain)_factory.Activate(GrainId.Sensor("b"), null);
        Deliver(a, new TestGrainContext(GrainId.Sensor("a")), FreshReading("a", M0, "on", ("temperature", 20), ("humidity", 50)));
        Deliver(b, new TestGrainContext(GrainId.Sensor("b")), FreshReading("b", M0, "on", ("temperature", 21), ("humidity", 51)));

        var va = a.View();
        var vb = b.View();
        Assert.Equal(["temperature", "humidity"], va.Latest.Keys);
        Assert.All(va.Latest.Keys.Zip(vb.Latest.Keys), p => Assert.Same(p.First, p.Second));
        Assert.Same(va.Attributes["light"].Value, vb.Attributes["light"].Value);
        Assert.Same(va.Metadata!.Model, vb.Metadata!.Model);
        Assert.Same(va.Metadata.Location, vb.Metadata.Location);
    }

    [Fact]
    public void Name_table_returns_equal_instances_and_leaves_long_strings_alone()
    {
        var names = new SensorNameTable();
        var first = names.Intern(Fresh("temperature"));
        Assert.Same(first, names.Intern(Fresh("temperature")));
        var layout = names.Extend([], ["a", "b"]);
        Assert.Same(layout, names.Extend(names.Extend([], ["a"]), ["b"]));
        Assert.Same(layout, names.Share([Fresh("a"), Fresh("b")]));
        var longText = new string('x', SensorNameTable.MaxSharedLength + 1);
        Assert.Same(longText, names.Intern(longText));
        Assert.NotSame(longText, names.Intern(new string('x', SensorNameTable.MaxSharedLength + 1)));
    }

    [Fact]
    public void Applying_a_reading_allocates_nothing_in_the_steady_state()
    {
        var context = new TestGrainContext(GrainId.Sensor("s1"))
        {
            Rules = RuleCatalog.From([Threshold("r1", "temperature", ComparisonOperator.Greater, 35), Offline("off", 5)]),
        };
        var grain = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), null);
        var readings = Enumerable.Range(0, 20)
            .Select(i => FreshReading("s1", M0 + 1_000 + i * 1_000, i % 2 == 0 ? "on" : "off", ("temperature", 20 + i * 0.1), ("humidity", 50), ("heat_index", 21)))
            .ToArray();
        for (var i = 0; i < 10; i++)
        {
            Deliver(grain, context, readings[i]);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 10; i < readings.Length; i++)
        {
            Deliver(grain, context, readings[i]);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Empty(context.Sent);
        Assert.Equal(20, grain.CurrentMinute()!.Metrics[0].Count);
    }

    [Fact]
    public void A_metric_seen_only_in_a_late_reading_has_no_latest_value_until_a_counted_one()
    {
        var context = new TestGrainContext(GrainId.Sensor("s1"));
        var grain = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), null);
        Deliver(grain, context, Reading("s1", M0 + 80_000, ("v", 1)));
        Deliver(grain, context, Reading("s1", M0 + 1_000, ("w", 2)));      // late: w only in the last readings

        var view = grain.View();
        Assert.Equal(["v"], view.Latest.Keys);
        Assert.Equal(2, view.LastReadings[0].Metrics["w"]);
        Assert.True(view.LastReadings[0].Late);
        Assert.Equal(new Dictionary<string, double> { ["v"] = 1 }, ((SensorSummary)grain.Snapshot()!).Latest);

        var restored = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), _factory.SerializeState(grain));
        Assert.Equal(["v"], restored.View().Latest.Keys);

        // A counted reading of w sets it whatever its event time; so does a new metric before 1970.
        Deliver(restored, context, Reading("s1", M0 + 75_000, ("w", 3)));
        Deliver(restored, context, Reading("s1", -5_000, ("x", 4)));       // late for its minute, not evaluated
        Assert.Equal(3, restored.View().Latest["w"].Value);
        Assert.False(restored.View().Latest.ContainsKey("x"));

        var fresh = (SensorGrain)_factory.Activate(GrainId.Sensor("s2"), null);
        Deliver(fresh, new TestGrainContext(GrainId.Sensor("s2")) { StreamTimeMs = -10_000 }, Reading("s2", -5_000, ("x", 4)));
        Assert.Equal(-5_000, fresh.View().Latest["x"].TimeMs);
    }

    [Fact]
    public void A_name_repeated_within_one_reading_counts_once_with_its_last_value()
    {
        var context = new TestGrainContext(GrainId.Sensor("s1"));
        var grain = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), null);
        Deliver(grain, context, Reading("s1", M0, ("v", 1), ("w", 5), ("v", 2)) with
        {
            Attributes = [new AttributeValue("a", "x"), new AttributeValue("a", "y")],
        });

        var view = grain.View();
        Assert.Equal(new Dictionary<string, double> { ["v"] = 2, ["w"] = 5 }, view.LastReadings[0].Metrics);
        Assert.Equal(new Dictionary<string, string> { ["a"] = "y" }, view.LastReadings[0].Attributes);
        Assert.Equal((1L, 2.0), (view.Windows[M0]["v"].Count, view.Windows[M0]["v"].Sum));
    }

    [Fact]
    public void Keeps_the_configured_number_of_readings_across_new_names_and_many_metrics()
    {
        var context = new TestGrainContext(GrainId.Sensor("s1"));
        var grain = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), null);
        Deliver(grain, context, Reading("s1", M0, ("m0", 0)));
        Deliver(grain, context, Reading("s1", M0 + 1_000, Enumerable.Range(0, 70).Select(i => ("m" + i, (double)i)).ToArray()) with
        {
            Attributes = [new AttributeValue("light", "on")],
        });
        Deliver(grain, context, Reading("s1", M0 + 2_000, ("m69", 69.5), ("m1", 1.5)));
        Deliver(grain, context, Reading("s1", M0 + 3_000, ("m68", 68.5)));

        var view = grain.View();
        Assert.Equal([M0 + 3_000, M0 + 2_000, M0 + 1_000], view.LastReadings.Select(r => r.TimestampMs));
        Assert.Equal(new Dictionary<string, double> { ["m68"] = 68.5 }, view.LastReadings[0].Metrics);
        Assert.Equal(new Dictionary<string, double> { ["m1"] = 1.5, ["m69"] = 69.5 }, view.LastReadings[1].Metrics);
        Assert.Equal(70, view.LastReadings[2].Metrics.Count);
        Assert.Null(view.LastReadings[0].Attributes);
        Assert.Equal("on", view.LastReadings[2].Attributes!["light"]);
        Assert.Equal(70, view.Latest.Count);
        Assert.Equal(2, view.Windows[M0]["m69"].Count);
        Assert.Equal(70, grain.CurrentMinute()!.Metrics.Length);

        var json = _factory.SerializeState(grain);
        var restored = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), json);
        Assert.Equal(json, _factory.SerializeState(restored));
        Assert.Equal(Json(grain.CurrentMinute()!), Json(restored.CurrentMinute()!));
    }

    [Fact]
    public void State_document_names_metrics_once_and_indexes_values_by_them()
    {
        var rules = RuleCatalog.From([Threshold("r1", "temp", ComparisonOperator.Greater, 10)]);
        var context = new TestGrainContext(GrainId.Sensor("s1")) { Rules = rules };
        var grain = (SensorGrain)_factory.Activate(GrainId.Sensor("s1"), null);
        Deliver(grain, context, Reading("s1", M0 + 1_000, ("temp", 20), ("hum", 49)) with
        {
            Attributes = [new AttributeValue("light", "on")],
            Metadata = new SensorMetadata { Model = "TH-100" },
        });
        Deliver(grain, context, Reading("s1", M0 + 2_000, ("hum", double.NaN)));

        Assert.Equal(
            "{\"SensorId\":\"s1\",\"Metadata\":{\"Model\":\"TH-100\"},\"LastSeenMs\":" + (M0 + 2_000)
            + ",\"Metrics\":[\"temp\",\"hum\"],\"Latest\":[20,\"NaN\"],\"LatestTimesMs\":[" + (M0 + 1_000) + "," + (M0 + 2_000) + "]"
            + ",\"Attributes\":[\"light\"],\"LatestAttributes\":[\"on\"],\"LatestAttributeTimesMs\":[" + (M0 + 1_000) + "]"
            + ",\"LastReadings\":[{\"TimestampMs\":" + (M0 + 2_000) + ",\"Values\":[null,\"NaN\"]},"
            + "{\"TimestampMs\":" + (M0 + 1_000) + ",\"Values\":[20,49],\"Attributes\":[\"on\"]}]"
            + ",\"Windows\":[{\"MinuteMs\":" + M0 + ",\"Metrics\":["
            + "{\"Count\":1,\"Min\":20,\"Max\":20,\"Sum\":20,\"First\":20,\"FirstTimeMs\":" + (M0 + 1_000) + ",\"Last\":20,\"LastTimeMs\":" + (M0 + 1_000) + "},"
            + "{\"Count\":2,\"Min\":\"NaN\",\"Max\":\"NaN\",\"Sum\":\"NaN\",\"First\":49,\"FirstTimeMs\":" + (M0 + 1_000) + ",\"Last\":\"NaN\",\"LastTimeMs\":" + (M0 + 2_000) + "}]}]"
            + ",\"LateCount\":0,\"Rules\":[{\"RuleId\":\"r1\",\"Version\":1,\"Holding\":true,\"SinceMs\":" + (M0 + 1_000) + "}]"
            + ",\"WakeAtMs\":" + (M0 + 70_000) + "}",
            Encoding.UTF8.GetString(_factory.SerializeState(grain)));
    }
}
