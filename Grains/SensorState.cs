using Grains.Abstractions;

namespace Grains;

/// <summary>
/// The state of a <see cref="SensorGrain"/>, laid out for memory: a million active sensors must fit in about 2 KB each.
/// Metrics and attributes are addressed by slot, an index into <see cref="Metrics"/> / <see cref="AttributeNames"/>
/// (names in order of first appearance, shared between sensors through the <see cref="SensorNameTable"/> and never
/// modified in place: a new name replaces the whole layout). Per-slot values live in flat arrays, the last readings in
/// fixed-capacity arrays newest first, open minutes as one accumulator per slot. Only <see cref="SensorGrain"/> changes
/// it; it is persisted as a <see cref="SensorStateDocument"/> and read through <see cref="SensorGrain.View"/>.
/// </summary>
public sealed class SensorState
{
    internal SensorState(string sensorId) => SensorId = sensorId;

    internal string SensorId;

    /// <summary>Merged metadata: each reading's non-null fields overwrite, Extra entries are merged.</summary>
    internal SensorMetadata? Metadata;

    /// <summary>Greatest event time of a counted (not late) reading; null before the first one.</summary>
    internal long? LastSeenMs;

    /// <summary>Metric names by slot (shared layout).</summary>
    internal string[] Metrics = [];

    /// <summary>Per metric slot: the value and event time of the counted reading with the greatest event time (on a tie, the later arrival).</summary>
    internal double[] LatestValues = [];

    internal long[] LatestTimes = [];

    /// <summary>Bit per metric slot set when the slot has no latest value (its name was only seen in late readings); null when none.</summary>
    internal ulong[]? LatestAbsent;

    /// <summary>Attribute names by slot (shared layout).</summary>
    internal string[] AttributeNames = [];

    /// <summary>Per attribute slot: the latest value (null: only seen in late readings) and its event time.</summary>
    internal string?[]? AttributeValues;

    internal long[]? AttributeTimes;

    /// <summary>How many of the last readings are held (rows 0..ReadingCount-1 of the arrays below, newest first).</summary>
    internal int ReadingCount;

    internal long[]? ReadingTimes;

    /// <summary>Row-major: [row * Metrics.Length + slot]; meaningful where the row's presence bit is set.</summary>
    internal double[]? ReadingValues;

    /// <summary>Row-major: [row * FlagWords(Metrics.Length) + word]; bit 0 of the first word is "late", bit 1 + slot "metric present".</summary>
    internal ulong[]? ReadingFlags;

    /// <summary>Row-major: [row * AttributeNames.Length + slot]; null where the reading had no such attribute. Null when no attribute was ever seen.</summary>
    internal string?[]? ReadingAttributes;

    /// <summary>Open minute windows in order of opening; null when none.</summary>
    internal MinuteWindow[]? Windows;

    /// <summary>Start of the newest minute this grain closed; null when none yet.</summary>
    internal long? LastClosedMinuteMs;

    /// <summary>How many readings arrived after their minute had closed.</summary>
    internal long LateCount;

    /// <summary>The last late reading; null when none. Replaced, never modified.</summary>
    internal LateReadingInfo? LastLate;

    /// <summary>Per rule targeting this sensor, in rule id order: what the rule grain was last told. Null when no rule targets it.</summary>
    internal RuleSlot[]? Rules;

    /// <summary>The stream time this grain last asked to be woken at; null when nothing is pending.</summary>
    internal long? WakeAtMs;

    internal static int FlagWords(int stride) => (stride + 64) >> 6;
}

/// <summary>One open UTC minute: a running aggregate per metric slot (Count 0: the metric has no reading in it).</summary>
internal sealed class MinuteWindow(long minuteMs, int slots)
{
    public long MinuteMs { get; } = minuteMs;

    public Accumulator[] Slots { get; set; } = new Accumulator[slots];
}

/// <summary>The running aggregate of one metric in one open minute. Event times are kept as offsets into the minute.</summary>
internal struct Accumulator
{
    public long Count;
    public double Min;
    public double Max;
    public double Sum;
    public double First;
    public double Last;
    public int FirstOffsetMs;
    public int LastOffsetMs;
}

/// <summary>What this sensor last told a rule grain, for the rule version <see cref="Version"/>.</summary>
internal sealed class RuleSlot(string ruleId, long version)
{
    public string RuleId { get; } = ruleId;
    public long Version { get; } = version;
    public bool Holding { get; set; }

    /// <summary>Event time the condition started holding; null when not holding.</summary>
    public long? SinceMs { get; set; }

    /// <summary>The definition this slot was last synchronized with (not persisted).</summary>
    public RuleDefinition? Rule { get; set; }
}
