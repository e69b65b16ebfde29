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
public abstract record GrainOutput
{
    public abstract string Id { get; }
}

/// <summary>The final aggregates of one sensor's UTC minute, one entry per numeric metric.</summary>
public sealed record MinuteAggregate : GrainOutput
{
    public required string SensorId { get; init; }

    /// <summary>Start of the minute, epoch milliseconds (a multiple of 60,000).</summary>
    public required long MinuteMs { get; init; }

    public required MetricAggregate[] Metrics { get; init; }

    public override string Id => $"{SensorId}@{MinuteMs}";
}

public sealed record MetricAggregate
{
    public required string Metric { get; init; }
    public required long Count { get; init; }
    public required double Min { get; init; }
    public required double Max { get; init; }
    public required double Sum { get; init; }
    public double Avg => Count == 0 ? 0 : Sum / Count;
    public required double First { get; init; }
    public required double Last { get; init; }
}

[JsonConverter(typeof(JsonStringEnumConverter<AlertEventKind>))]
public enum AlertEventKind { Opened, Resolved, Acknowledged }

[JsonConverter(typeof(JsonStringEnumConverter<AlertState>))]
public enum AlertState { Open, Resolved }

/// <summary>An alert lifecycle event with the alert as it is after the event.</summary>
public sealed record AlertEvent : GrainOutput
{
    public required AlertEventKind Kind { get; init; }
    public required Alert Alert { get; init; }

    public override string Id => $"{Alert.Id}/{Kind}";
}

public sealed record Alert
{
    /// <summary>Deterministic: derived from rule id, rule version, sensor id and incident start (see <see cref="AlertIds"/>).</summary>
    public required string Id { get; init; }
    public required string RuleId { get; init; }
    public required string RuleName { get; init; }
    public required long RuleVersion { get; init; }
    public required string SensorId { get; init; }
    public required Severity Severity { get; init; }
    public required AlertState State { get; init; }

    /// <summary>When the condition started holding (event time, epoch ms).</summary>
    public required long StartedAtMs { get; init; }
    public required long OpenedAtMs { get; init; }
    public long? ResolvedAtMs { get; init; }
    public string? ResolvedReason { get; init; }
    public long? AcknowledgedAtMs { get; init; }
    public string? AcknowledgedBy { get; init; }

    public double? Value { get; init; }
    public double? Threshold { get; init; }
    public required string Message { get; init; }
}

/// <summary>A command queued for a device, produced by a rule's control action.</summary>
public sealed record DeviceCommand : GrainOutput
{
    public required string CommandId { get; init; }
    public required string DeviceId { get; init; }
    public required string Command { get; init; }
    public Dictionary<string, string>? Parameters { get; init; }
    public required string RuleId { get; init; }
    public required string AlertId { get; init; }
    public required long CreatedAtMs { get; init; }

    public override string Id => CommandId;
}

/// <summary>The read model of a sensor: what the sensor list shows.</summary>
public sealed record SensorSummary : GrainOutput
{
    public required string SensorId { get; init; }
    public required long LastSeenMs { get; init; }
    public SensorMetadata? Metadata { get; init; }
    public required Dictionary<string, double> Latest { get; init; }
    public Dictionary<string, string>? Attributes { get; init; }
    public required long LateCount { get; init; }

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
