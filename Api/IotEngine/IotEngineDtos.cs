using System.Text.Json.Serialization;

namespace Api.IotEngine;

/// <summary>The rules of one sensor in the Kafka Streams iot-engine's shape (its IotSensorRules).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record IotSensorRules
{
    public string? Id { get; init; }
    public IReadOnlyList<IotSensorRule?>? Rules { get; init; }
}

/// <summary>One rule of a sensor: <c>{metricName} {condition} {metricValue}</c> on each reading; the control action is a command name.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record IotSensorRule
{
    public string? RuleName { get; init; }
    public string? MetricName { get; init; }
    public double? MetricValue { get; init; }
    public string? Condition { get; init; }
    public string? ControlAction { get; init; }
}

/// <summary>The iot-engine's answer to rule changes and its errors: <c>{"status":"OK","errorMessage":null}</c>.</summary>
public sealed record MessageResponse(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("errorMessage"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? ErrorMessage);

/// <summary>A closed minute of a sensor as the iot-engine returns it: the minute's start (epoch ms) and each metric's average.</summary>
public sealed record IotDataMessage(long Timestamp, string Id, IReadOnlyDictionary<string, double> Metrics);

/// <summary>A node of the cluster as the iot-engine lists its instances: a silo's address and the log partitions it reads.</summary>
public sealed record HostStoreInfo(string Host, int Port, IReadOnlyList<string> StoreNames);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(IotSensorRules))]
[JsonSerializable(typeof(MessageResponse))]
[JsonSerializable(typeof(IReadOnlyList<IotDataMessage>))]
[JsonSerializable(typeof(IReadOnlyList<HostStoreInfo>))]
public sealed partial class IotEngineJsonContext : JsonSerializerContext;
