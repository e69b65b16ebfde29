using System.Text.Json.Serialization;

namespace Grains.Abstractions;

/// <summary>
/// Something a grain produces for the outside world. Every output has a deterministic <see cref="Id"/>,
/// so a replay after a crash reproduces the same ids and sinks upsert or skip them.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "$type")]
[JsonDerivedType(typeof(MinuteAggregate), "aggregate")]
[JsonDerivedType(typeof(AlertEvent), "alert")]
[JsonDerivedType(typeof(DeviceCommand), "command")]
[JsonDerivedType(typeof(SensorSummary), "sensor")]
[GenerateSerializer, Alias("oiot.GrainOutput")]
public abstract record GrainOutput
{
    public abstract string Id { get; }
}

/// <summary>The final aggregates of one sensor's UTC minute, one entry per numeric metric.</summary>
[GenerateSerializer, Alias("oiot.MinuteAggregate")]
public sealed record MinuteAggregate : GrainOutput
{
    [Id(0)] public required string SensorId { get; init; }

    /// <summary>Start of the minute, epoch milliseconds (a multiple of 60,000).</summary>
    [Id(1)] public required long MinuteMs { get; init; }

    [Id(2)] public required MetricAggregate[] Metrics { get; init; }

    /// <summary>The outside conditions of the sensor's location current at the end of the minute, in name order; null when none.</summary>
    [Id(3)] public MetricValue[]? Outside { get; init; }

    public override string Id => $"{SensorId}@{MinuteMs}";
}

[GenerateSerializer, Alias("oiot.MetricAggregate")]
public sealed record MetricAggregate
{
    [Id(0)] public required string Metric { get; init; }
    [Id(1)] public required long Count { get; init; }
    [Id(2)] public required double Min { get; init; }
    [Id(3)] public required double Max { get; init; }
    [Id(4)] public required double Sum { get; init; }
    public double Avg => Count == 0 ? 0 : Sum / Count;
    [Id(5)] public required double First { get; init; }
    [Id(6)] public required double Last { get; init; }
}

[JsonConverter(typeof(JsonStringEnumConverter<AlertEventKind>))]
[GenerateSerializer, Alias("oiot.AlertEventKind")]
public enum AlertEventKind { Opened, Resolved, Acknowledged }

[JsonConverter(typeof(JsonStringEnumConverter<AlertState>))]
[GenerateSerializer, Alias("oiot.AlertState")]
public enum AlertState { Open, Resolved }

/// <summary>An alert lifecycle event with the alert as it is after the event.</summary>
[GenerateSerializer, Alias("oiot.AlertEvent")]
public sealed record AlertEvent : GrainOutput
{
    [Id(0)] public required AlertEventKind Kind { get; init; }
    [Id(1)] public required Alert Alert { get; init; }

    public override string Id => $"{Alert.Id}/{Kind}";
}

[GenerateSerializer, Alias("oiot.Alert")]
public sealed record Alert
{
    /// <summary>Deterministic: derived from rule id, rule version, sensor id and incident start (see <see cref="AlertIds"/>).</summary>
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required string RuleId { get; init; }
    [Id(2)] public required string RuleName { get; init; }
    [Id(3)] public required long RuleVersion { get; init; }
    [Id(4)] public required string SensorId { get; init; }
    [Id(5)] public required Severity Severity { get; init; }
    [Id(6)] public required AlertState State { get; init; }

    /// <summary>When the condition started holding (event time, epoch ms).</summary>
    [Id(7)] public required long StartedAtMs { get; init; }
    [Id(8)] public required long OpenedAtMs { get; init; }
    [Id(9)] public long? ResolvedAtMs { get; init; }
    [Id(10)] public string? ResolvedReason { get; init; }
    [Id(11)] public long? AcknowledgedAtMs { get; init; }
    [Id(12)] public string? AcknowledgedBy { get; init; }

    [Id(13)] public double? Value { get; init; }
    [Id(14)] public double? Threshold { get; init; }
    [Id(15)] public required string Message { get; init; }
}

/// <summary>A command queued for a device, produced by a rule's control action.</summary>
[GenerateSerializer, Alias("oiot.DeviceCommand")]
public sealed record DeviceCommand : GrainOutput
{
    [Id(0)] public required string CommandId { get; init; }
    [Id(1)] public required string DeviceId { get; init; }
    [Id(2)] public required string Command { get; init; }
    [Id(3)] public Dictionary<string, string>? Parameters { get; init; }
    [Id(4)] public required string RuleId { get; init; }
    [Id(5)] public required string AlertId { get; init; }
    [Id(6)] public required long CreatedAtMs { get; init; }

    public override string Id => CommandId;
}

/// <summary>The read model of a sensor: what the sensor list shows.</summary>
[GenerateSerializer, Alias("oiot.SensorSummary")]
public sealed record SensorSummary : GrainOutput
{
    [Id(0)] public required string SensorId { get; init; }

    /// <summary>Greatest event time of a counted reading; null when none (an operator set the metadata of a sensor that has sent nothing counted yet).</summary>
    [Id(1)] public required long? LastSeenMs { get; init; }

    /// <summary>The effective metadata: the device's, overridden by the operator's (<see cref="SensorMetadataMerge"/>).</summary>
    [Id(2)] public SensorMetadata? Metadata { get; init; }
    [Id(3)] public required Dictionary<string, double> Latest { get; init; }
    [Id(4)] public Dictionary<string, string>? Attributes { get; init; }
    [Id(5)] public required long LateCount { get; init; }

    /// <summary>The position of the sensor's partition log (<see cref="LogPosition"/>) the summary reflects: a summary never replaces a newer one.</summary>
    [Id(6)] public long AppliedPosition { get; init; } = -1;

    /// <summary>What an operator set (null: nothing); already merged into <see cref="Metadata"/>.</summary>
    [Id(7)] public OperatorMetadata? OperatorMetadata { get; init; }

    public override string Id => SensorId;
}

/// <summary>Deterministic alert ids: the same incident always gets the same id, on any silo, in any replay.</summary>
public static class AlertIds
{
    public static string For(string ruleId, long ruleVersion, string sensorId, long startedAtMs)
    {
        // FNV-1a 64 over the UTF-16 code units of the parts, separated by a character that cannot occur in ids.
        ulong hash = 14695981039346656037UL;
        Mix(ref hash, ruleId);
        Mix(ref hash, "\u0001");
        Mix(ref hash, ruleVersion.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Mix(ref hash, "\u0001");
        Mix(ref hash, sensorId);
        Mix(ref hash, "\u0001");
        Mix(ref hash, startedAtMs.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void Mix(ref ulong hash, string text)
    {
        foreach (var c in text)
        {
            hash ^= c;
            hash *= 1099511628211UL;
        }
    }
}
