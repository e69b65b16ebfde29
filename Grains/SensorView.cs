using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Grains;

/// <summary>
/// A sensor's state as plain dictionaries and lists, built by <see cref="SensorGrain.View"/> for queries. A copy: later
/// readings do not change it, and changing it does not change the grain.
/// </summary>
public sealed class SensorView
{
    public string SensorId { get; set; } = "";

    /// <summary>Merged metadata: each reading's non-null fields overwrite, Extra entries are merged.</summary>
    public SensorMetadata? Metadata { get; set; }

    /// <summary>Greatest event time of a counted (not late) reading; null before the first one.</summary>
    public long? LastSeenMs { get; set; }

    /// <summary>Per metric: the value of the reading with the greatest event time (on a tie, the later arrival).</summary>
    public Dictionary<string, TimedValue> Latest { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Per attribute: the value of the reading with the greatest event time (on a tie, the later arrival).</summary>
    public Dictionary<string, TimedAttribute> Attributes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The most recent readings by arrival, newest first, late ones included (flagged).</summary>
    public List<ReadingRecord> LastReadings { get; set; } = [];

    /// <summary>Open minute windows: minute start (epoch ms) -> metric -> running aggregate.</summary>
    public Dictionary<long, Dictionary<string, RunningAggregate>> Windows { get; set; } = [];

    /// <summary>Start of the newest minute this grain closed; null when none yet.</summary>
    public long? LastClosedMinuteMs { get; set; }

    /// <summary>How many readings arrived after their minute had closed.</summary>
    public long LateCount { get; set; }

    /// <summary>The last late reading; null when none.</summary>
    public LateReadingInfo? LastLate { get; set; }

    /// <summary>Per rule id: whether the rule's condition currently holds for this sensor, as last signalled.</summary>
    public Dictionary<string, RuleConditionState> Rules { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The stream time this grain last asked to be woken at; null when nothing is pending.</summary>
    public long? WakeAtMs { get; set; }
}

public sealed class TimedValue
{
    public double Value { get; set; }
    public long TimeMs { get; set; }
}

public sealed class TimedAttribute
{
    public string Value { get; set; } = "";
    public long TimeMs { get; set; }
}

public sealed class ReadingRecord
{
    public long TimestampMs { get; set; }
    public Dictionary<string, double> Metrics { get; set; } = new(StringComparer.Ordinal);
    public Dictionary<string, string>? Attributes { get; set; }

    /// <summary>True when the reading arrived after its minute closed (counted in LateCount, not aggregated).</summary>
    public bool Late { get; set; }
}

/// <summary>The running aggregate of one metric in one open minute.</summary>
public sealed class RunningAggregate
{
    public long Count { get; set; }
    public double Min { get; set; }
    public double Max { get; set; }
    public double Sum { get; set; }
    public double First { get; set; }
    public long FirstTimeMs { get; set; }
    public double Last { get; set; }
    public long LastTimeMs { get; set; }

    [JsonIgnore]
    public double Avg => Count == 0 ? 0 : Sum / Count;
}

public sealed class LateReadingInfo
{
    public long TimestampMs { get; set; }
    public long MinuteMs { get; set; }
}

/// <summary>What this sensor last told a rule grain, for the rule version <see cref="Version"/>.</summary>
public sealed class RuleConditionState
{
    public long Version { get; set; }
    public bool Holding { get; set; }

    /// <summary>Event time the condition started holding; null when not holding.</summary>
    public long? SinceMs { get; set; }
}
