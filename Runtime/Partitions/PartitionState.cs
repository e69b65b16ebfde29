using Grains.Abstractions;

namespace Runtime.Partitions;

/// <summary>
/// The stored state of a partition's reader (<see cref="PartitionGrain"/>): how far the partition is durably applied,
/// and what the reader needs to go on from there without activating every sensor: the rule catalog as of that point,
/// the idempotency keys it applied, and an entry per sensor it has seen with what its schedule needs.
/// </summary>
[GenerateSerializer, Alias("oiot.PartitionState")]
public sealed class PartitionState
{
    /// <summary>The next log offset to read: everything below has effects that are durable.</summary>
    [Id(0)] public long NextOffset { get; set; }

    /// <summary>The greatest receipt time the partition has reached (telemetry receipt times and ticks).</summary>
    [Id(1)] public long ReceivedUpToMs { get; set; } = long.MinValue;

    /// <summary>The rule catalog as of <see cref="NextOffset"/>.</summary>
    [Id(2)] public RuleDefinition[] Rules { get; set; } = [];

    /// <summary>
    /// Idempotency keys of applied telemetry as states stored them before <see cref="AppliedKeySegments"/>: read into those
    /// when such a state is loaded. Written empty, not left out: a silo of the earlier version that takes the partition
    /// over during a rolling update finds an empty dictionary where it expects one.
    /// </summary>
    [Id(3)] public Dictionary<string, long> AppliedKeys { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Every sensor of the partition that has a clock or has applied a log position (an operator set its metadata before its first reading), by id.</summary>
    [Id(4)] public Dictionary<string, SensorEntry> Sensors { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The outside conditions of the locations as of <see cref="NextOffset"/>.</summary>
    [Id(5)] public OutsideConditions Outside { get; set; } = OutsideConditions.Empty;

    /// <summary>Idempotency keys of applied telemetry within the window, with the receipt time each was applied at, compact and in segments (<see cref="Partitions.AppliedKeys"/>).</summary>
    [Id(6)] public byte[][] AppliedKeySegments { get; set; } = [];
}

/// <summary>
/// What a partition keeps of one sensor: the log position it reported applied (it must not be found behind it), when its
/// clock must next run (receipt time; null: nothing due), and enough to plan an offline rule for it without activating it:
/// its clock reading, last reading time and what rules target.
/// </summary>
[GenerateSerializer, Alias("oiot.SensorEntry")]
public readonly record struct SensorEntry(
    [property: Id(0)] long? WakeAtMs,
    [property: Id(1)] long ClockMs,
    [property: Id(2)] long ClockReceivedAtMs,
    [property: Id(3)] long? LastSeenMs,
    [property: Id(4)] string? Location,
    [property: Id(5)] string? Model,
    [property: Id(6)] long AppliedPosition);
