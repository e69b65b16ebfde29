using System.Text;
using System.Text.Json;

namespace Simulator.Tests;

/// <summary>Bodies of each format parse back into exactly the format's fields, with the model's values.</summary>
public sealed class PayloadTests
{
    private const long TimeMs = 1_750_000_123_456;

    private static readonly FleetModel Model = new(8, 7, AnomalyOptions.None, 0);

    [Theory]
    [InlineData(PayloadFormat.Slide, new[] { "sensor", "temperature", "humidity", "light", "timestamp", "metadata" })]
    [InlineData(PayloadFormat.Engine, new[] { "id", "timestamp", "metrics" })]
    [InlineData(PayloadFormat.Serial, new[] { "nodo", "humedad", "temperatura", "sensacion", "radiacion" })]
    public void A_batch_is_a_json_array_of_objects_with_exactly_the_formats_fields(PayloadFormat format, string[] fields)
    {
        var items = WriteArray(format, batch: 3, firstSlot: 6);

        Assert.Equal(3, items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var sensor = (6 + i) % Model.Count;
            Assert.Equal(fields, items[i].EnumerateObject().Select(p => p.Name));
            AssertValues(format, items[i], sensor);
        }
    }

    [Theory]
    [InlineData(PayloadFormat.Slide)]
    [InlineData(PayloadFormat.Engine)]
    [InlineData(PayloadFormat.Serial)]
    public void Batch_one_is_a_single_object(PayloadFormat format)
    {
        var writer = new PayloadWriter(Model, format, batch: 1, ndJson: false);
        using var buffer = new PooledBufferWriter();

        Assert.Equal(1, writer.Write(buffer, 2, 1, 1, TimeMs));

        using var doc = JsonDocument.Parse(buffer.WrittenSpan.ToArray());
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        AssertValues(format, doc.RootElement, 2);
        Assert.Equal("application/json", writer.ContentType);
    }

    [Theory]
    [InlineData(PayloadFormat.Slide)]
    [InlineData(PayloadFormat.Engine)]
    [InlineData(PayloadFormat.Serial)]
    public void Ndjson_is_one_object_per_line(PayloadFormat format)
    {
        var writer = new PayloadWriter(Model, format, batch: 5, ndJson: true);
        using var buffer = new PooledBufferWriter();

        Assert.Equal(5, writer.Write(buffer, 0, 5, 5, TimeMs));

        var lines = Encoding.UTF8.GetString(buffer.WrittenSpan).Split('\n');
        Assert.Equal(5, lines.Length);
        for (var i = 0; i < lines.Length; i++)
        {
            using var doc = JsonDocument.Parse(lines[i]);
            AssertValues(format, doc.RootElement, i);
        }
        Assert.Equal("application/x-ndjson", writer.ContentType);
    }

    [Fact]
    public void Slide_readings_carry_the_sensors_metadata_and_epoch_seconds()
    {
        var item = WriteArray(PayloadFormat.Slide, batch: 2, firstSlot: 1)[0];

        Assert.Equal("greenhouse-01", item.GetProperty("sensor").GetString());
        Assert.Equal(TimeMs / 1000, item.GetProperty("timestamp").GetInt64());
        var metadata = item.GetProperty("metadata");
        Assert.Equal(["model", "location"], metadata.EnumerateObject().Select(p => p.Name));
        Assert.Equal("TH-100", metadata.GetProperty("model").GetString());
        Assert.Equal("greenhouse", metadata.GetProperty("location").GetString());
    }

    [Fact]
    public void Engine_readings_carry_epoch_milliseconds_and_four_metrics()
    {
        var item = WriteArray(PayloadFormat.Engine, batch: 2, firstSlot: 0)[0];

        Assert.Equal(TimeMs, item.GetProperty("timestamp").GetInt64());
        Assert.Equal(["temp", "hum", "heat_index", "radiation"], item.GetProperty("metrics").EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void Slots_wrap_around_the_fleet_and_silent_sensors_are_left_out()
    {
        var origin = TimeMs - 4 * 60_000; // minute 4 of 6: warehouse-01 (sensor 2) is silent
        var model = new FleetModel(4, 7, AnomalyOptions.Demo, origin);
        var writer = new PayloadWriter(model, PayloadFormat.Serial, batch: 6, ndJson: false);
        using var buffer = new PooledBufferWriter();

        Assert.Equal(5, writer.CountReadings(3, 6, 6, TimeMs));
        Assert.Equal(5, writer.Write(buffer, 3, 6, 6, TimeMs));
        Assert.Equal(4, writer.CountReadings(3, 6, 4, TimeMs));

        using var doc = JsonDocument.Parse(buffer.WrittenSpan.ToArray());
        Assert.Equal(["office-01", "garden-01", "greenhouse-01", "office-01", "garden-01"],
            doc.RootElement.EnumerateArray().Select(e => e.GetProperty("nodo").GetString()));
    }

    private static List<JsonElement> WriteArray(PayloadFormat format, int batch, long firstSlot)
    {
        var writer = new PayloadWriter(Model, format, batch, ndJson: false);
        using var buffer = new PooledBufferWriter(16); // small on purpose: the buffer must grow
        Assert.Equal(batch, writer.Write(buffer, firstSlot, batch, batch, TimeMs));
        using var doc = JsonDocument.Parse(buffer.WrittenSpan.ToArray());
        Assert.Equal(JsonValueKind.Array, doc.RootElement.ValueKind);
        return doc.RootElement.EnumerateArray().Select(e => e.Clone()).ToList();
    }

    private static void AssertValues(PayloadFormat format, JsonElement item, int sensor)
    {
        var expected = Model.Read(sensor, TimeMs);
        var id = Model.Id(sensor);
        switch (format)
        {
            case PayloadFormat.Slide:
                Assert.Equal(id, item.GetProperty("sensor").GetString());
                Assert.Equal(expected.Temperature, item.GetProperty("temperature").GetDouble());
                Assert.Equal(expected.Humidity, item.GetProperty("humidity").GetDouble());
                Assert.Equal(expected.LightOn ? "on" : "off", item.GetProperty("light").GetString());
                break;
            case PayloadFormat.Engine:
                Assert.Equal(id, item.GetProperty("id").GetString());
                var metrics = item.GetProperty("metrics");
                Assert.Equal(expected.Temperature, metrics.GetProperty("temp").GetDouble());
                Assert.Equal(expected.Humidity, metrics.GetProperty("hum").GetDouble());
                Assert.Equal(expected.HeatIndex, metrics.GetProperty("heat_index").GetDouble());
                Assert.Equal(expected.SolarRadiation, metrics.GetProperty("radiation").GetDouble());
                break;
            default:
                Assert.Equal(id, item.GetProperty("nodo").GetString());
                Assert.Equal(expected.Humidity, item.GetProperty("humedad").GetDouble());
                Assert.Equal(expected.Temperature, item.GetProperty("temperatura").GetDouble());
                Assert.Equal(expected.HeatIndex, item.GetProperty("sensacion").GetDouble());
                Assert.Equal(expected.SolarRadiation, item.GetProperty("radiacion").GetDouble());
                break;
        }
    }
}
