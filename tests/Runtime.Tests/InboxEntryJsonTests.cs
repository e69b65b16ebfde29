using Tests.Shared;
using System.Text;
using System.Text.Json;
using Grains.Abstractions;
using Runtime.RabbitMq;

namespace Runtime.Tests;

public sealed class InboxEntryJsonTests
{
    [Fact]
    public void A_telemetry_entry_is_written_with_name_value_pairs_and_reads_back_exactly()
    {
        InboxEntry entry = new TelemetryEntry(
        [
            new Reading
            {
                SensorId = "s-1", TimestampMs = 1_700_000_000_123,
                Metrics = [new("temperature", 21.5), new("nan", double.NaN), new("up", double.PositiveInfinity), new("down", double.NegativeInfinity)],
                Attributes = [new("light", "on")],
                Metadata = new SensorMetadata { Model = "m", Location = "roof" },
            },
            new Reading { SensorId = "s-2", TimestampMs = 5, Metrics = [] },
        ], "key-1", 1_700_000_000_500);

        var json = Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(entry, RabbitMqJsonContext.Default.InboxEntry));

        Assert.Equal(
            """{"$type":"telemetry","Readings":[{"SensorId":"s-1","TimestampMs":1700000000123,"Metrics":[["temperature",21.5],["nan","NaN"],["up","Infinity"],["down","-Infinity"]],"Attributes":[["light","on"]],"Metadata":{"Model":"m","Location":"roof"}},{"SensorId":"s-2","TimestampMs":5,"Metrics":[]}],"IdempotencyKey":"key-1","ReceivedAtMs":1700000000500}""",
            json);
        var back = (TelemetryEntry)JsonSerializer.Deserialize(Encoding.UTF8.GetBytes(json), RabbitMqJsonContext.Default.InboxEntry)!;
        Assert.Equal("key-1", back.IdempotencyKey);
        Assert.Equal(1_700_000_000_500, back.ReceivedAtMs);
        Assert.Equal(((TelemetryEntry)entry).Readings[0].Metrics, back.Readings[0].Metrics);
        Assert.Equal(((TelemetryEntry)entry).Readings[0].Attributes, back.Readings[0].Attributes);
        Assert.Equal("roof", back.Readings[0].Metadata!.Location);
        Assert.Empty(back.Readings[1].Metrics);
        Assert.Null(back.Readings[1].Attributes);
    }

    [Fact]
    public void Names_repeated_across_readings_are_read_once_and_escaped_ones_exactly()
    {
        var json = """
            {"$type":"telemetry","Readings":[
             {"SensorId":"s-1","TimestampMs":1,"Metrics":[["temperature",1],["t\u00e9mp",2]],"Attributes":[["light","on"]]},
             {"SensorId":"s-2","TimestampMs":2,"Metrics":[["temperature",3],["t\u00e9mp",4]],"Attributes":[["light","on"]]}]}
            """;
        var readings = ((TelemetryEntry)JsonSerializer.Deserialize(Encoding.UTF8.GetBytes(json), RabbitMqJsonContext.Default.InboxEntry)!).Readings;

        Assert.Equal([new MetricValue("temperature", 1), new MetricValue("t\u00e9mp", 2)], readings[0].Metrics);
        Assert.Equal([new MetricValue("temperature", 3), new MetricValue("t\u00e9mp", 4)], readings[1].Metrics);
        Assert.Same(readings[0].Metrics[0].Name, readings[1].Metrics[0].Name);
        Assert.Same(readings[0].Attributes![0].Name, readings[1].Attributes![0].Name);
        Assert.Same(readings[0].Attributes![0].Value, readings[1].Attributes![0].Value);
    }

    [Theory]
    [InlineData("""{"$type":"telemetry","Readings":[{"SensorId":"s","TimestampMs":1,"Metrics":[{"Name":"t","Value":1}]}]}""", "A metric must be an array [name, value].")]
    [InlineData("""{"$type":"telemetry","Readings":[{"SensorId":"s","TimestampMs":1,"Metrics":[["t",1,2]]}]}""", "A metric must be an array of two elements [name, value].")]
    [InlineData("""{"$type":"telemetry","Readings":[{"SensorId":"s","TimestampMs":1,"Metrics":[["t","warm"]]}]}""", "A metric's value must be a number, \"NaN\", \"Infinity\" or \"-Infinity\".")]
    [InlineData("""{"$type":"telemetry","Readings":[{"SensorId":"s","TimestampMs":1,"Metrics":[],"Attributes":[["light",1]]}]}""", "An attribute's value must be a string.")]
    public void A_malformed_pair_is_refused_with_what_was_wrong(string json, string message)
    {
        var error = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize(Encoding.UTF8.GetBytes(json), RabbitMqJsonContext.Default.InboxEntry));
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }
}
