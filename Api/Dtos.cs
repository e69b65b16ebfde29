using System.Text.Json;
using System.Text.Json.Serialization;
using Grains.Abstractions;
using Runtime;

namespace Api;

// The shapes the HTTP API and the live hub speak. Grain state and outputs stay inside; these are mapped from them.

public sealed record TelemetryResponse(int Accepted, IReadOnlyList<RejectedItem> Rejected);

public sealed record RejectedItem(int Index, string Error);

public sealed record PageResponse<T>(IReadOnlyList<T> Items, int Total, int Offset, int Limit);

/// <summary>
/// A sensor of the list: <see cref="Metadata"/> is the effective metadata (the device's, overridden by the operator's),
/// <see cref="OperatorMetadata"/> what an operator set; <see cref="LastSeen"/> is null for a sensor an operator registered
/// that has sent nothing counted yet.
/// </summary>
public sealed record SensorListItem(
    string Id,
    DateTimeOffset? LastSeen,
    SensorMetadata? Metadata,
    IReadOnlyDictionary<string, double> Latest,
    long LateCount,
    OperatorMetadata? OperatorMetadata = null);

/// <summary>
/// A sensor read live from its grain. <see cref="Metadata"/> is the effective metadata: <see cref="DeviceMetadata"/> (what the
/// device sent) overridden field by field and tag by tag by <see cref="OperatorMetadata"/> (what an operator set; null: nothing).
/// </summary>
public sealed record SensorDetail(
    string Id,
    DateTimeOffset? LastSeen,
    SensorMetadata? Metadata,
    IReadOnlyDictionary<string, double> Latest,
    IReadOnlyDictionary<string, string>? Attributes,
    IReadOnlyList<ReadingDto> LastReadings,
    MinuteDto? CurrentMinute,
    long LateCount,
    DateTimeOffset? LastLate,
    long? NamesDropped = null,
    Api.Mqtt.MqttConnectionDto? Mqtt = null)
{
    public SensorMetadata? DeviceMetadata { get; init; }

    public OperatorMetadata? OperatorMetadata { get; init; }
}

public sealed record ReadingDto(DateTimeOffset Timestamp, IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyDictionary<string, string>? Attributes, bool Late);

public sealed record MinuteDto(DateTimeOffset Minute, IReadOnlyList<MetricStatsDto> Metrics);

public sealed record MetricStatsDto(string Metric, long Count, double Min, double Max, double Sum, double Avg, double First, double Last);

public sealed record MetricsResponse(string SensorId, DateTimeOffset From, DateTimeOffset To, string? Metric, IReadOnlyList<MetricPointDto> Points,
    IReadOnlyList<OutsidePointDto>? Outside = null);

/// <summary>An outside condition of the sensor's location joined into a closed minute.</summary>
public sealed record OutsidePointDto(DateTimeOffset Minute, string Metric, double Value);

public sealed record MetricPointDto(DateTimeOffset Minute, string Metric, long Count, double Min, double Max, double Sum, double Avg, double First, double Last);

public sealed record AlertDto(
    string Id,
    string RuleId,
    string RuleName,
    string SensorId,
    string Severity,
    string State,
    bool Acknowledged,
    DateTimeOffset StartedAt,
    DateTimeOffset OpenedAt,
    DateTimeOffset? ResolvedAt,
    string? ResolvedReason,
    DateTimeOffset? AcknowledgedAt,
    string? AcknowledgedBy,
    double? Value,
    double? Threshold,
    string Message);

public sealed record CommandDto(string Id, string DeviceId, string Command, IReadOnlyDictionary<string, string>? Parameters,
    string RuleId, string AlertId, DateTimeOffset CreatedAt);

/// <summary>A command sent to a device, with when the device fetched it (null: still pending).</summary>
public sealed record SentCommandDto(string Id, string DeviceId, string Command, IReadOnlyDictionary<string, string>? Parameters,
    string RuleId, string AlertId, DateTimeOffset CreatedAt, DateTimeOffset? DeliveredAt);

public sealed record ClusterResponse(
    int Partitions,
    IReadOnlyList<SiloDto> Silos,
    IReadOnlyList<PartitionDto> PartitionMap,
    IReadOnlyDictionary<string, int> Activations);

/// <summary>
/// An Orleans silo of the cluster's membership: its address (<see cref="Id"/>), status (active, joining, shutting down,
/// stopping, dead), start and last "I am alive" time, the partitions whose readers it runs, its activations per grain
/// type (null when it did not answer within 3 s: not active, paused, or dying), and the readings those readers
/// applied since they started there.
/// </summary>
public sealed record SiloDto(string Id, string Name, string HostName, string Status, DateTimeOffset StartedAt, DateTimeOffset? LastHeartbeat,
    IReadOnlyList<int> Partitions, IReadOnlyDictionary<string, int>? Activations, long ReadingsApplied);

/// <summary>
/// A partition of the log as its reader reports it: the silo running it (null: no reader answered), since when, the
/// committed position (everything below is durably applied), the position read, the log's end and the lag (end minus
/// committed), readings applied by this reader, sensors it schedules, and its last checkpoint.
/// </summary>
public sealed record PartitionDto(int Partition, string? Owner, DateTimeOffset? ActiveSince, long? CommittedOffset, long? AppliedOffset,
    long? EndOffset, long? Lag, long? ReadingsApplied, int? Sensors, DateTimeOffset? LastCheckpointAt);

/// <summary>The cluster load of the last minutes, one point per sample, oldest first; <see cref="Silos"/> lists every silo with a rate in some point.</summary>
public sealed record ClusterMetricsResponse(double SampleIntervalSeconds, double HistorySeconds, IReadOnlyList<string> Silos,
    IReadOnlyList<ClusterMetricsPointDto> Points);

/// <summary>Rates over the span since the previous sample: readings applied per second (all silos and per silo), alerts opened per minute.</summary>
public sealed record ClusterMetricsPointDto(DateTimeOffset Time, double ReadingsPerSecond, double AlertsPerMinute,
    IReadOnlyDictionary<string, double> ReadingsPerSecondBySilo);

/// <summary>Live event "alert". <see cref="EventId"/> repeats when a replay reproduces the event: clients drop ids they have seen.</summary>
public sealed record AlertEventDto(string EventId, string Kind, AlertDto Alert);

/// <summary>Live event "aggregate": a closed minute of a sensor the client subscribed to.</summary>
public sealed record AggregateEventDto(string EventId, string SensorId, DateTimeOffset Minute, IReadOnlyList<MetricStatsDto> Metrics,
    IReadOnlyDictionary<string, double>? Outside = null);

/// <summary>Live event "command": a command queued for a device whose group the client joined.</summary>
public sealed record CommandEventDto(string EventId, CommandDto Command);

public static class Map
{
    public static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    public static DateTimeOffset? Time(long? ms) => ms is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;

    public static AlertDto ToDto(this Alert a) => new(a.Id, a.RuleId, a.RuleName, a.SensorId, a.Severity.ToString().ToLowerInvariant(),
        a.State == AlertState.Open ? "open" : "resolved", a.AcknowledgedAtMs is not null,
        Time(a.StartedAtMs), Time(a.OpenedAtMs), Time(a.ResolvedAtMs), a.ResolvedReason, Time(a.AcknowledgedAtMs), a.AcknowledgedBy,
        a.Value, a.Threshold, a.Message);

    public static CommandDto ToDto(this DeviceCommand c) =>
        new(c.CommandId, c.DeviceId, c.Command, c.Parameters, c.RuleId, c.AlertId, Time(c.CreatedAtMs));

    public static SentCommandDto ToDto(this CommandRecord r) => new(r.Command.CommandId, r.Command.DeviceId, r.Command.Command,
        r.Command.Parameters, r.Command.RuleId, r.Command.AlertId, Time(r.Command.CreatedAtMs), Time(r.DeliveredAtMs));

    public static MetricStatsDto ToDto(this MetricAggregate m) => new(m.Metric, m.Count, m.Min, m.Max, m.Sum, m.Avg, m.First, m.Last);

    public static MinuteDto ToDto(this MinuteAggregate m) => new(Time(m.MinuteMs), m.Metrics.Select(ToDto).ToArray());

    public static SensorListItem ToListItem(this SensorSummary s) =>
        new(s.SensorId, Time(s.LastSeenMs), s.Metadata, s.Latest, s.LateCount, s.OperatorMetadata);
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, UseStringEnumConverter = true)]
[JsonSerializable(typeof(TelemetryResponse))]
[JsonSerializable(typeof(PageResponse<SensorListItem>))]
[JsonSerializable(typeof(SensorDetail))]
[JsonSerializable(typeof(OperatorMetadata))]
[JsonSerializable(typeof(MetricsResponse))]
[JsonSerializable(typeof(AlertDto))]
[JsonSerializable(typeof(IReadOnlyList<AlertDto>))]
[JsonSerializable(typeof(IReadOnlyList<CommandDto>))]
[JsonSerializable(typeof(IReadOnlyList<SentCommandDto>))]
[JsonSerializable(typeof(Api.Rules.RulePreviewResponse))]
[JsonSerializable(typeof(ClusterResponse))]
[JsonSerializable(typeof(ClusterMetricsResponse))]
[JsonSerializable(typeof(AlertEventDto))]
[JsonSerializable(typeof(AggregateEventDto))]
[JsonSerializable(typeof(CommandEventDto))]
[JsonSerializable(typeof(Api.Mqtt.MqttStatusDto))]
[JsonSerializable(typeof(Microsoft.AspNetCore.Mvc.ProblemDetails))]
[JsonSerializable(typeof(Microsoft.AspNetCore.Http.HttpValidationProblemDetails))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;
