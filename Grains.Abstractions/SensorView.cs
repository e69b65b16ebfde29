using System.Text.Json.Serialization;

namespace Grains.Abstractions;

/// <summary>
/// A sensor's state as plain dictionaries and lists, built by the sensor grain for queries. A copy: later
/// readings do not change it, and changing it does not change the grain.
/// </summary>
[GenerateSerializer, Alias("oiot.SensorView")]
public sealed class SensorView
{
    [Id(0)] public string SensorId { get; set; } = "";

    /// <summary>The effective metadata: <see cref="DeviceMetadata"/> overridden by <see cref="OperatorMetadata"/> (<see cref="SensorMetadataMerge"/>).</summary>
    [Id(1)] public SensorMetadata? Metadata { get; set; }

    /// <summary>Greatest event time of a counted (not late) reading; null before the first one.</summary>
    [Id(2)] public long? LastSeenMs { get; set; }

    /// <summary>Per metric: the value of the reading with the greatest event time (on a tie, the later arrival).</summary>
    [Id(3)] public Dictionary<string, TimedValue> Latest { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Per attribute: the value of the reading with the greatest event time (on a tie, the later arrival).</summary>
    [Id(4)] public Dictionary<string, TimedAttribute> Attributes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The most recent readings by arrival, newest first, late ones included (flagged).</summary>
    [Id(5)] public List<ReadingRecord> LastReadings { get; set; } = [];

    /// <summary>Open minute windows: minute start (epoch ms) -> metric -> running aggregate.</summary>
    [Id(6)] public Dictionary<long, Dictionary<string, RunningAggregate>> Windows { get; set; } = [];

    /// <summary>Start of the newest minute this grain closed; null when none yet.</summary>
    [Id(7)] public long? LastClosedMinuteMs { get; set; }

    /// <summary>How many readings arrived after their minute had closed.</summary>
    [Id(8)] public long LateCount { get; set; }

    /// <summary>The last late reading; null when none.</summary>
    [Id(9)] public LateReadingInfo? LastLate { get; set; }

    /// <summary>Per rule id: whether the rule's condition currently holds for this sensor, as last signalled.</summary>
    [Id(10)] public Dictionary<string, RuleConditionState> Rules { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The sensor's own time (its clock), epoch milliseconds: what closes its minutes.</summary>
    [Id(11)] public long ClockMs { get; set; }

    /// <summary>The newest open minute as it stands now; null when no minute is open.</summary>
    [Id(12)] public MinuteAggregate? CurrentMinute { get; set; }

    /// <summary>Metric and attribute values applied without being stored: the sensor had as many names as it may.</summary>
    [Id(13)] public long NamesDropped { get; set; }

    /// <summary>What the device sent: each reading's non-null fields overwrite, Extra entries are merged. Null when none.</summary>
    [Id(14)] public SensorMetadata? DeviceMetadata { get; set; }

    /// <summary>What an operator set through the API; null when nothing.</summary>
    [Id(15)] public OperatorMetadata? OperatorMetadata { get; set; }
}

[GenerateSerializer, Alias("oiot.TimedValue")]
public sealed class TimedValue
{
    [Id(0)] public double Value { get; set; }
    [Id(1)] public long TimeMs { get; set; }
}

[GenerateSerializer, Alias("oiot.TimedAttribute")]
public sealed class TimedAttribute
{
    [Id(0)] public string Value { get; set; } = "";
    [Id(1)] public long TimeMs { get; set; }
}

[GenerateSerializer, Alias("oiot.ReadingRecord")]
public sealed class ReadingRecord
{
    [Id(0)] public long TimestampMs { get; set; }
    [Id(1)] public Dictionary<string, double> Metrics { get; set; } = new(StringComparer.Ordinal);
    [Id(2)] public Dictionary<string, string>? Attributes { get; set; }

    /// <summary>True when the reading arrived after its minute closed (counted in LateCount, not aggregated).</summary>
    [Id(3)] public bool Late { get; set; }
}

/// <summary>The running aggregate of one metric in one open minute.</summary>
[GenerateSerializer, Alias("oiot.RunningAggregate")]
public sealed class RunningAggregate
{
    [Id(0)] public long Count { get; set; }
    [Id(1)] public double Min { get; set; }
    [Id(2)] public double Max { get; set; }
    [Id(3)] public double Sum { get; set; }
    [Id(4)] public double First { get; set; }
    [Id(5)] public long FirstTimeMs { get; set; }
    [Id(6)] public double Last { get; set; }
    [Id(7)] public long LastTimeMs { get; set; }

    [JsonIgnore]
    public double Avg => Count == 0 ? 0 : Sum / Count;
}

[GenerateSerializer, Alias("oiot.LateReadingInfo")]
public sealed class LateReadingInfo
{
    [Id(0)] public long TimestampMs { get; set; }
    [Id(1)] public long MinuteMs { get; set; }
}

/// <summary>What this sensor last told a rule grain, for the rule version <see cref="Version"/>.</summary>
[GenerateSerializer, Alias("oiot.RuleConditionState")]
public sealed class RuleConditionState
{
    [Id(0)] public long Version { get; set; }
    [Id(1)] public bool Holding { get; set; }

    /// <summary>Event time the condition started holding; null when not holding.</summary>
    [Id(2)] public long? SinceMs { get; set; }
}
