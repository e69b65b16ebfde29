using System.ComponentModel.DataAnnotations;

namespace Runtime;

/// <summary>Settings of the grains' hosting (section "Silo"), read by silos and, for the partition count, by Api nodes.</summary>
public sealed class SiloOptions
{
    /// <summary>Number of partitions of the log. Fixed when the cluster is created.</summary>
    [Range(1, 4096)]
    public int Partitions { get; set; } = 8;

    /// <summary>
    /// Longest time between checkpoints of a busy partition: at each one the partition flushes the sensors due to store
    /// their work (<see cref="SensorWriteInterval"/>) and stores the newest position every sensor has stored the work
    /// before.
    /// </summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a sensor's applied work may stay unstored in a large fleet: a checkpoint flushes (outputs, then state) the
    /// sensors whose oldest unstored work is this old, so a sensor with steady readings writes its state once per
    /// interval, not once per checkpoint. The partition's stored position follows about this far behind, and a new reader
    /// replays about this plus <see cref="CheckpointInterval"/> of the log; more when checkpoints come faster than every
    /// eighth of this (<see cref="Partitions.UnstoredWork.MaxSnapshots"/> snapshots wait at most), and a little more after
    /// a fleet started at once: a checkpoint has at most twice its share of the sensors write
    /// (<see cref="Partitions.UnstoredWork.FlushBound"/>). Minute aggregates and alerts are written when they happen,
    /// whatever this is.
    /// </summary>
    public TimeSpan SensorWriteInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A checkpoint that finds at most this many sensors of its partition with unstored work flushes them all (a small
    /// fleet: every sensor stored and the position committed at each checkpoint, as if the interval were zero).
    /// </summary>
    [Range(0, 10_000_000)]
    public int SensorWriteAllUpTo { get; set; } = 1_000;

    /// <summary>A checkpoint is also taken after this many log records.</summary>
    [Range(1, 1_000_000)]
    public int CheckpointMaxRecords { get; set; } = 20_000;

    /// <summary>Grains with no call for this long are deactivated by Orleans (their state written first).</summary>
    public TimeSpan IdleDeactivation { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>An idle partition with a sensor due gets a tick appended after this long, advancing its receipt time.</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Appending ticks can be turned off (tests that drive time themselves).</summary>
    public bool TicksEnabled { get; set; } = true;

    [Range(1, 100_000)]
    public int ReadBatchSize { get; set; } = 512;

    /// <summary>How long (receipt time) a partition remembers the idempotency keys of the telemetry it applied.</summary>
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>How often every silo makes sure every partition grain is active (a dead silo's partitions restart elsewhere).</summary>
    public TimeSpan PartitionCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Silo-to-silo port (durable mode; embedded mode picks a free loopback port when 0).</summary>
    [Range(0, 65535)]
    public int Port { get; set; }

    /// <summary>Port Orleans clients (Api nodes) connect to (durable mode).</summary>
    [Range(0, 65535)]
    public int GatewayPort { get; set; }
}
