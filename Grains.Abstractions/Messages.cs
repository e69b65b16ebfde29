namespace Grains.Abstractions;

/// <summary>
/// One telemetry reading of one sensor, as parsed from any accepted input format. Immutable once built: Orleans passes
/// it between grains of one silo by reference.
/// </summary>
[GenerateSerializer, Immutable, Alias("oiot.Reading")]
public sealed record Reading
{
    [Id(0)] public required string SensorId { get; init; }

    /// <summary>Event time, epoch milliseconds (time of receipt when the device sent none).</summary>
    [Id(1)] public required long TimestampMs { get; init; }

    [Id(2)] public required MetricValue[] Metrics { get; init; }

    /// <summary>String and boolean fields (booleans as "true"/"false"); null when none.</summary>
    [Id(3)] public AttributeValue[]? Attributes { get; init; }

    /// <summary>Metadata sent with the reading; null when none.</summary>
    [Id(4)] public SensorMetadata? Metadata { get; init; }
}

[GenerateSerializer, Immutable, Alias("oiot.MetricValue")]
public readonly record struct MetricValue([property: Id(0)] string Name, [property: Id(1)] double Value);

[GenerateSerializer, Immutable, Alias("oiot.AttributeValue")]
public readonly record struct AttributeValue([property: Id(0)] string Name, [property: Id(1)] string Value);

/// <summary>Describes a sensor. Known fields have properties; anything else sent in "metadata" is kept in Extra.</summary>
[GenerateSerializer, Alias("oiot.SensorMetadata")]
public sealed record SensorMetadata
{
    [Id(0)] public string? Model { get; init; }
    [Id(1)] public string? Location { get; init; }
    [Id(2)] public string? Owner { get; init; }
    [Id(3)] public string? Version { get; init; }
    [Id(4)] public Dictionary<string, string>? Extra { get; init; }
}

/// <summary>
/// What an operator set of a sensor's metadata through the API (null fields: not set by the operator). It merges with
/// what the device sends, the operator winning per field and per tag (<see cref="SensorMetadataMerge"/>).
/// </summary>
[GenerateSerializer, Immutable, Alias("oiot.OperatorMetadata")]
public sealed record OperatorMetadata
{
    [Id(0)] public string? Location { get; init; }
    [Id(1)] public string? Model { get; init; }
    [Id(2)] public string? Owner { get; init; }

    /// <summary>Free tags by name; merged with the device's extra metadata fields, the operator's value winning per name. Null when none.</summary>
    [Id(3)] public Dictionary<string, string>? Tags { get; init; }

    /// <summary>True when the operator sets nothing (no field, no tag).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsEmpty => Location is null && Model is null && Owner is null && Tags is not { Count: > 0 };
}

/// <summary>The metadata a sensor is known by: what its device sent, overridden field by field and tag by tag by what an operator set.</summary>
public static class SensorMetadataMerge
{
    /// <summary>
    /// The effective metadata: each of location, model and owner is the operator's when set, else the device's; the
    /// version is the device's; the extra fields are the device's with the operator's tags added and winning per name.
    /// Null when neither has anything. Without operator metadata it is <paramref name="device"/> itself.
    /// </summary>
    public static SensorMetadata? Effective(SensorMetadata? device, OperatorMetadata? @operator)
    {
        if (@operator is null || @operator.IsEmpty)
        {
            return device;
        }

        Dictionary<string, string>? extra = null;
        if (device?.Extra is { Count: > 0 } || @operator.Tags is { Count: > 0 })
        {
            extra = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in device?.Extra ?? [])
            {
                extra[k] = v;
            }

            foreach (var (k, v) in @operator.Tags ?? [])
            {
                extra[k] = v;
            }
        }

        return new SensorMetadata
        {
            Location = @operator.Location ?? device?.Location,
            Model = @operator.Model ?? device?.Model,
            Owner = @operator.Owner ?? device?.Owner,
            Version = device?.Version,
            Extra = extra,
        };
    }
}

/// <summary>
/// From a sensor grain to the rule grain of <see cref="RuleId"/>: the rule's condition started (Holding) or stopped
/// holding for the sensor at <see cref="EventTimeMs"/>. <see cref="Sequence"/> counts the signals of the sensor: a
/// sensor that replays its log after a crash sends the same signals with the same numbers, and the rule grain applies
/// each number once.
/// </summary>
[GenerateSerializer, Immutable, Alias("oiot.ConditionSignal")]
public sealed record ConditionSignal
{
    [Id(0)] public required string RuleId { get; init; }
    [Id(1)] public required long RuleVersion { get; init; }
    [Id(2)] public required string SensorId { get; init; }
    [Id(3)] public required bool Holding { get; init; }
    [Id(4)] public required long EventTimeMs { get; init; }

    /// <summary>The value the condition was evaluated on (raw value, aggregate, or minutes without data).</summary>
    [Id(5)] public double? Value { get; init; }

    /// <summary>Human-readable evaluation, for example "49 &lt; 50" or "no data for 5 min".</summary>
    [Id(6)] public required string Message { get; init; }

    /// <summary>The sensor's signal number: increases by one with each signal the sensor sends (0: not numbered).</summary>
    [Id(7)] public long Sequence { get; init; }
}
