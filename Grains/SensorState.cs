using Grains.Abstractions;

namespace Grains;

/// <summary>
/// The state of a <see cref="SensorGrain"/>, laid out for memory: a million active sensors must fit in about 2 KB each.
/// Metrics and attributes are addressed by slot, an index into <see cref="Metrics"/> / <see cref="AttributeNames"/>
/// (names in order of first appearance, shared between sensors through the <see cref="SensorNameTable"/> and never
/// modified in place: a new name replaces the whole layout). Per-slot values live in flat arrays, the last readings in
/// fixed-capacity arrays newest first, open minutes as one accumulator per slot. Only <see cref="SensorLogic"/> changes
/// it and reads it (<see cref="SensorLogic.View"/>); Orleans stores it in its binary form.
/// </summary>
[GenerateSerializer, Alias("oiot.SensorState")]
public sealed class SensorState
{
    internal SensorState(string sensorId) => SensorId = sensorId;

    internal SensorState() => SensorId = "";

    [Id(0)] internal string SensorId;

    /// <summary>The greatest <see cref="LogPosition"/> of the sensor's partition log applied to this state (-1: none).</summary>
    [Id(1)] internal long AppliedPosition = -1;

    /// <summary>
    /// The sensor's clock: its own time, which closes its minutes and measures its silence. Set from its readings' event
    /// times (never beyond their receipt time) and run on with receipt time in between: at receipt time r the clock reads
    /// <c>ClockMs + (r - ClockReceivedAtMs)</c>. <see cref="long.MinValue"/> before the first reading.
    /// </summary>
    [Id(2)] internal long ClockMs = long.MinValue;

    /// <summary>The receipt time at which <see cref="ClockMs"/> was read last (the greatest seen).</summary>
    [Id(3)] internal long ClockReceivedAtMs = long.MinValue;

    /// <summary>How many condition signals this sensor has sent (the last one's <see cref="ConditionSignal.Sequence"/>).</summary>
    [Id(4)] internal long SignalSequence;

    /// <summary>The device's metadata, merged from its readings: each reading's non-null fields overwrite, Extra entries are merged.</summary>
    [Id(5)] internal SensorMetadata? Metadata;

    /// <summary>Greatest event time of a counted (not late) reading; null before the first one.</summary>
    [Id(6)] internal long? LastSeenMs;

    /// <summary>Metric names by slot (shared layout).</summary>
    [Id(7)] internal string[] Metrics = [];

    /// <summary>Per metric slot: the value and event time of the counted reading with the greatest event time (on a tie, the later arrival).</summary>
    [Id(8)] internal double[] LatestValues = [];

    [Id(9)] internal long[] LatestTimes = [];

    /// <summary>Bit per metric slot set when the slot has no latest value (its name was only seen in late readings); null when none.</summary>
    [Id(10)] internal ulong[]? LatestAbsent;

    /// <summary>Attribute names by slot (shared layout).</summary>
    [Id(11)] internal string[] AttributeNames = [];

    /// <summary>Per attribute slot: the latest value (null: only seen in late readings) and its event time.</summary>
    [Id(12)] internal string?[]? AttributeValues;

    [Id(13)] internal long[]? AttributeTimes;

    /// <summary>How many of the last readings are held (rows 0..ReadingCount-1 of the arrays below, newest first).</summary>
    [Id(14)] internal int ReadingCount;

    [Id(15)] internal long[]? ReadingTimes;

    /// <summary>Row-major: [row * Metrics.Length + slot]; meaningful where the row's presence bit is set.</summary>
    [Id(16)] internal double[]? ReadingValues;

    /// <summary>Row-major: [row * FlagWords(Metrics.Length) + word]; bit 0 of the first word is "late", bit 1 + slot "metric present".</summary>
    [Id(17)] internal ulong[]? ReadingFlags;

    /// <summary>Row-major: [row * AttributeNames.Length + slot]; null where the reading had no such attribute. Null when no attribute was ever seen.</summary>
    [Id(18)] internal string?[]? ReadingAttributes;

    /// <summary>Open minute windows in order of opening; null when none.</summary>
    [Id(19)] internal MinuteWindow[]? Windows;

    /// <summary>Start of the newest minute this grain closed; null when none yet.</summary>
    [Id(20)] internal long? LastClosedMinuteMs;

    /// <summary>How many readings arrived after their minute had closed.</summary>
    [Id(21)] internal long LateCount;

    /// <summary>The last late reading; null when none. Replaced, never modified.</summary>
    [Id(22)] internal LateReadingInfo? LastLate;

    /// <summary>Per rule targeting this sensor, in rule id order: what the rule grain was last told. Null when no rule targets it.</summary>
    [Id(23)] internal RuleSlot[]? Rules;

    /// <summary>
    /// Names of readings applied without a slot because the sensor had as many names as it may (readings admitted by
    /// two Api nodes at once, or after an admission lost in a crash): counted, not stored.
    /// </summary>
    [Id(24)] internal long NamesDropped;

    /// <summary>
    /// What an operator set through the API, as of the log position of its last change; null when nothing. It wins over
    /// <see cref="Metadata"/> field by field and tag by tag (<see cref="SensorMetadataMerge"/>).
    /// </summary>
    [Id(25)] internal OperatorMetadata? OperatorMetadata;

    internal static int FlagWords(int stride) => (stride + 64) >> 6;
}

/// <summary>One open UTC minute: a running aggregate per metric slot (Count 0: the metric has no reading in it).</summary>
[GenerateSerializer, Alias("oiot.MinuteWindow")]
internal sealed class MinuteWindow(long minuteMs, int slots)
{
    [Id(0)] public long MinuteMs { get; private set; } = minuteMs;

    [Id(1)] public Accumulator[] Slots { get; set; } = new Accumulator[slots];
}

/// <summary>The running aggregate of one metric in one open minute. Event times are kept as offsets into the minute.</summary>
[GenerateSerializer, Alias("oiot.Accumulator")]
internal struct Accumulator
{
    [Id(0)] public long Count;
    [Id(1)] public double Min;
    [Id(2)] public double Max;
    [Id(3)] public double Sum;
    [Id(4)] public double First;
    [Id(5)] public double Last;
    [Id(6)] public int FirstOffsetMs;
    [Id(7)] public int LastOffsetMs;
}

/// <summary>What this sensor last told a rule grain, for the rule version <see cref="Version"/>.</summary>
[GenerateSerializer, Alias("oiot.RuleSlot")]
internal sealed class RuleSlot(string ruleId, long version)
{
    [Id(0)] public string RuleId { get; private set; } = ruleId;
    [Id(1)] public long Version { get; private set; } = version;
    [Id(2)] public bool Holding { get; set; }

    /// <summary>Event time the condition started holding; null when not holding.</summary>
    [Id(3)] public long? SinceMs { get; set; }

    /// <summary>When the rule grain next needs to hear this sensor's time (a pending alert, a cooldown); null when it does not.</summary>
    [Id(4)] public long? DueMs { get; set; }

    /// <summary>The definition this slot was last synchronized with (not stored).</summary>
    [NonSerialized]
    public RuleDefinition? Rule;
}
