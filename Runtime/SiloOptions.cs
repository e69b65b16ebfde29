using System.ComponentModel.DataAnnotations;

namespace Runtime;

/// <summary>Settings of a silo (section "Silo").</summary>
public sealed class SiloOptions
{
    /// <summary>Unique name of this silo in the cluster; default: host name plus a random suffix.</summary>
    public string SiloId { get; set; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Where other nodes reach this silo's internal endpoint (empty in embedded mode).</summary>
    public string Address { get; set; } = "";

    /// <summary>Number of partitions of the cluster. Fixed when the cluster is created.</summary>
    [Range(1, 4096)]
    public int Partitions { get; set; } = 8;

    /// <summary>How long a lease lasts without renewal: the failover time after a silo dies.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the silo heartbeats, renews its leases and rebalances.</summary>
    public TimeSpan RenewInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest time between checkpoints of a busy partition.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A checkpoint is also taken after this many log records.</summary>
    [Range(1, 1_000_000)]
    public int CheckpointMaxRecords { get; set; } = 2_000;

    /// <summary>A grain with no message for this long is deactivated (after its state is checkpointed).</summary>
    public TimeSpan IdleDeactivation { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>An idle partition with due timers gets a tick appended after this long, advancing its stream time.</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Appending ticks can be turned off (tests that drive stream time themselves).</summary>
    public bool TicksEnabled { get; set; } = true;

    [Range(1, 100_000)]
    public int ReadBatchSize { get; set; } = 512;

    /// <summary>How long (in stream time) a partition remembers the idempotency keys of the telemetry it applied.</summary>
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromMinutes(15);
}
