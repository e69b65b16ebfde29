using Grains.Abstractions;

namespace Runtime;

/// <summary>The partitioned inbox log (in memory, or RabbitMQ stream queues).</summary>
public interface IInboxLog
{
    int Partitions { get; }

    /// <summary>Appends entries to one partition; completes once they are durable in the log.</summary>
    ValueTask AppendAsync(int partition, IReadOnlyList<InboxEntry> entries, CancellationToken cancellationToken);

    /// <summary>Opens a reader that yields records from <paramref name="fromOffset"/> on, in order.</summary>
    IInboxReader OpenReader(int partition, long fromOffset);

    /// <summary>The offset the next appended record of the partition will get (for lag).</summary>
    ValueTask<long> EndOffsetAsync(int partition, CancellationToken cancellationToken);
}

public interface IInboxReader : IAsyncDisposable
{
    /// <summary>Adds up to <paramref name="max"/> records to <paramref name="into"/>, waiting at most <paramref name="maxWait"/> for the first.</summary>
    ValueTask<int> ReadAsync(List<LogRecord> into, int max, TimeSpan maxWait, CancellationToken cancellationToken);
}

/// <summary>
/// A silo's membership heartbeat. <see cref="ReadingsApplied"/> and <see cref="AlertsOpened"/> count what the silo's
/// partitions applied since the silo started (<see cref="StartedAt"/>); they only grow while the process lives.
/// </summary>
public sealed record SiloInfo(string SiloId, string Address, DateTimeOffset StartedAt, DateTimeOffset LastHeartbeat,
    IReadOnlyDictionary<string, int> Activations, long ReadingsApplied = 0, long AlertsOpened = 0);

public sealed record Lease(int Partition, string? Owner, long Epoch, DateTimeOffset ExpiresAt);

/// <summary>Membership and partition leases (in memory, or PostgreSQL rows).</summary>
public interface ILeaseStore
{
    /// <summary>Creates the cluster with <paramref name="partitions"/> partitions, or checks that it has that many.</summary>
    Task EnsureClusterAsync(int partitions, CancellationToken cancellationToken);

    Task HeartbeatAsync(SiloInfo silo, CancellationToken cancellationToken);

    Task LeaveAsync(string siloId, CancellationToken cancellationToken);

    Task<IReadOnlyList<SiloInfo>> SilosAsync(CancellationToken cancellationToken);

    Task<IReadOnlyList<Lease>> LeasesAsync(CancellationToken cancellationToken);

    /// <summary>Takes a lease that is free or expired, increasing its epoch. Null when another silo holds it.</summary>
    Task<Lease?> TryAcquireAsync(int partition, string siloId, TimeSpan duration, CancellationToken cancellationToken);

    /// <summary>Extends a lease still held with <paramref name="epoch"/>. False when it was lost.</summary>
    Task<bool> RenewAsync(int partition, string siloId, long epoch, TimeSpan duration, CancellationToken cancellationToken);

    Task ReleaseAsync(int partition, string siloId, long epoch, CancellationToken cancellationToken);
}

public sealed record PartitionCheckpoint(int Partition, long NextOffset, long StreamTimeMs, IReadOnlyList<RuleDefinition> Rules,
    IReadOnlyList<AppliedKey>? AppliedKeys = null);

/// <summary>An idempotency key a partition applied, with the stream time at which it did.</summary>
public readonly record struct AppliedKey(string Key, long AtMs);

/// <summary>A grain's persisted state with the runtime's bookkeeping for it.</summary>
public sealed record GrainRecord(GrainId Id, byte[] State, long? WakeAtMs, IReadOnlyDictionary<int, MessageId>? Received);

/// <summary>Everything one checkpoint writes, in one transaction fenced by <see cref="Epoch"/>.</summary>
public sealed record Checkpoint(
    int Partition,
    long Epoch,
    long NextOffset,
    long StreamTimeMs,
    IReadOnlyList<RuleDefinition>? Rules,
    IReadOnlyList<GrainRecord> Grains,
    IReadOnlyList<GrainOutput> Outputs,
    IReadOnlyList<AppliedKey>? NewKeys = null,
    long ForgetKeysBeforeMs = long.MinValue);

/// <summary>Checkpoints of partitions and grains (in memory, or PostgreSQL).</summary>
public interface ICheckpointStore
{
    Task<PartitionCheckpoint?> LoadPartitionAsync(int partition, CancellationToken cancellationToken);

    /// <summary>The stored records of those grains that have one.</summary>
    Task<IReadOnlyDictionary<GrainId, GrainRecord>> LoadGrainsAsync(int partition, IReadOnlyCollection<GrainId> ids, CancellationToken cancellationToken);

    /// <summary>The ids of every grain of <paramref name="grainType"/> with a stored record in the partition.</summary>
    Task<IReadOnlyList<GrainId>> LoadGrainIdsAsync(int partition, string grainType, CancellationToken cancellationToken);

    /// <summary>The pending wake-ups of the partition's grains, so that timers survive deactivation and failover.</summary>
    Task<IReadOnlyList<(GrainId Id, long WakeAtMs)>> LoadWakeupsAsync(int partition, CancellationToken cancellationToken);

    /// <summary>Commits atomically if the partition's lease still carries <see cref="Checkpoint.Epoch"/>; false when fenced.</summary>
    Task<bool> CommitAsync(Checkpoint checkpoint, CancellationToken cancellationToken);

    /// <summary>Committed next offset per partition.</summary>
    Task<IReadOnlyDictionary<int, long>> CommittedOffsetsAsync(CancellationToken cancellationToken);
}

public sealed record Page<T>(IReadOnlyList<T> Items, int Total);

/// <summary>A stored command and when it was handed to its device (epoch ms; null while it is pending).</summary>
public sealed record CommandRecord(DeviceCommand Command, long? DeliveredAtMs);

public sealed record AlertQuery(AlertState? State, string? RuleId, string? SensorId, long? FromMs, long? ToMs, int Limit);

/// <summary>What the Api reads: the outputs written by checkpoints.</summary>
public interface IReadStore
{
    Task<Page<SensorSummary>> ListSensorsAsync(string? search, int offset, int limit, CancellationToken cancellationToken);

    Task<SensorSummary?> GetSensorAsync(string sensorId, CancellationToken cancellationToken);

    /// <summary>
    /// Closed minutes of the sensor with MinuteMs in [fromMs, toMs), ordered by minute; with <paramref name="metric"/>,
    /// only that metric's statistics and only the minutes that have it.
    /// </summary>
    Task<IReadOnlyList<MinuteAggregate>> GetAggregatesAsync(string sensorId, long fromMs, long toMs, string? metric, CancellationToken cancellationToken);

    /// <summary>Alerts newest first (by opening time).</summary>
    Task<IReadOnlyList<Alert>> QueryAlertsAsync(AlertQuery query, CancellationToken cancellationToken);

    Task<Alert?> GetAlertAsync(string alertId, CancellationToken cancellationToken);

    /// <summary>Pending commands of the device, oldest first, marked delivered by this call.</summary>
    Task<IReadOnlyList<DeviceCommand>> TakePendingCommandsAsync(string deviceId, CancellationToken cancellationToken);

    /// <summary>The device's commands, delivered or not, newest (last stored) first, at most <paramref name="limit"/>; changes nothing.</summary>
    Task<IReadOnlyList<CommandRecord>> ListCommandsAsync(string deviceId, int limit, CancellationToken cancellationToken);
}

/// <summary>The rule definitions as operators manage them. Versions come from one increasing sequence.</summary>
public interface IRuleStore
{
    Task<IReadOnlyList<RuleDefinition>> ListAsync(CancellationToken cancellationToken);

    Task<RuleDefinition?> GetAsync(string ruleId, CancellationToken cancellationToken);

    Task<long> NextVersionAsync(CancellationToken cancellationToken);

    /// <summary>False when a rule with that id exists.</summary>
    Task<bool> TryCreateAsync(RuleDefinition rule, CancellationToken cancellationToken);

    /// <summary>False when no rule with that id exists.</summary>
    Task<bool> TryUpdateAsync(RuleDefinition rule, CancellationToken cancellationToken);

    Task<bool> TryDeleteAsync(string ruleId, CancellationToken cancellationToken);
}

/// <summary>Live events to Api nodes (in process, or a RabbitMQ fan-out exchange). At least once: ids repeat on replay.</summary>
public interface ILiveEvents
{
    void Publish(GrainOutput output);

    /// <summary>Receives every published output until the token is cancelled.</summary>
    IAsyncEnumerable<GrainOutput> SubscribeAsync(CancellationToken cancellationToken);
}
