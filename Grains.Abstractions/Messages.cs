using System.Text.Json.Serialization;

namespace Grains.Abstractions;

/// <summary>A message to a grain. Messages travel through the partition inbox, so they are plain serializable records.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "$type")]
[JsonDerivedType(typeof(Reading), "reading")]
[JsonDerivedType(typeof(ConditionSignal), "signal")]
[JsonDerivedType(typeof(AcknowledgeAlert), "ack")]
[JsonDerivedType(typeof(RuleDefinitionChanged), "ruleChanged")]
public abstract record GrainMessage;

/// <summary>One telemetry reading of one sensor, as parsed from any accepted input format.</summary>
public sealed record Reading : GrainMessage
{
    public required string SensorId { get; init; }

    /// <summary>Event time, epoch milliseconds (time of receipt when the device sent none).</summary>
    public required long TimestampMs { get; init; }

    public required MetricValue[] Metrics { get; init; }

    /// <summary>String and boolean fields (booleans as "true"/"false"); null when none.</summary>
    public AttributeValue[]? Attributes { get; init; }

    /// <summary>Metadata sent with the reading; null when none.</summary>
    public SensorMetadata? Metadata { get; init; }
}

public readonly record struct MetricValue(string Name, double Value);

public readonly record struct AttributeValue(string Name, string Value);

/// <summary>Describes a sensor. Known fields have properties; anything else sent in "metadata" is kept in Extra.</summary>
public sealed record SensorMetadata
{
    public string? Model { get; init; }
    public string? Location { get; init; }
    public string? Owner { get; init; }
    public string? Version { get; init; }
    public Dictionary<string, string>? Extra { get; init; }
}

/// <summary>
/// From a SensorGrain to the RuleGrain of <see cref="RuleId"/>: the rule's condition started (Holding) or
/// stopped holding for the sensor at <see cref="EventTimeMs"/>.
/// </summary>
public sealed record ConditionSignal : GrainMessage
{
    public required string RuleId { get; init; }
    public required long RuleVersion { get; init; }
    public required string SensorId { get; init; }
    public required bool Holding { get; init; }
    public required long EventTimeMs { get; init; }

    /// <summary>The value the condition was evaluated on (raw value, aggregate, or minutes without data).</summary>
    public double? Value { get; init; }

    /// <summary>Human-readable evaluation, for example "49 &lt; 50" or "no data for 5 min".</summary>
    public required string Message { get; init; }
}

/// <summary>From an operator through the Api to a RuleGrain: acknowledge an open alert.</summary>
public sealed record AcknowledgeAlert : GrainMessage
{
    public required string AlertId { get; init; }
    public required string By { get; init; }
    public required long AtMs { get; init; }
}

/// <summary>Delivered by the runtime to a RuleGrain when its definition changed in the partition's rule catalog.</summary>
public sealed record RuleDefinitionChanged : GrainMessage
{
    public required string RuleId { get; init; }

    /// <summary>The new definition; null when the rule was deleted.</summary>
    public RuleDefinition? Rule { get; init; }
}
