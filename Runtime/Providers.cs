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

    /// <summary>
    /// The partition's reader committed its position: records below <paramref name="beforeOffset"/> are not read again.
    /// A log that keeps history by its own retention (RabbitMQ streams) ignores it; the in-memory log drops them.
    /// </summary>
    void Committed(int partition, long beforeOffset);
}

public interface IInboxReader : IAsyncDisposable
{
    /// <summary>Adds up to <paramref name="max"/> records to <paramref name="into"/>, waiting at most <paramref name="maxWait"/> for the first.</summary>
    ValueTask<int> ReadAsync(List<LogRecord> into, int max, TimeSpan maxWait, CancellationToken cancellationToken);
}

public sealed record Page<T>(IReadOnlyList<T> Items, int Total);

/// <summary>A stored command and when it was handed to its device (epoch ms; null while it is pending).</summary>
public sealed record CommandRecord(DeviceCommand Command, long? DeliveredAtMs);

public sealed record AlertQuery(AlertState? State, string? RuleId, string? SensorId, long? FromMs, long? ToMs, int Limit);

/// <summary>
/// Deletes minute aggregates past the store's retention (<c>Postgres:AggregateRetention</c> durable,
/// <c>Embedded:AggregateRetention</c> embedded); <see cref="Hosting.AggregateRetentionService"/> calls it every hour.
/// </summary>
public interface IAggregateRetention
{
    /// <summary>
    /// Deletes the minute aggregates whose minute started more than the retention before now, with the outside values
    /// joined into them; returns how many metric statistics (one per metric of a minute) it deleted.
    /// </summary>
    Task<long> DeleteExpiredAggregatesAsync(CancellationToken cancellationToken);
}

/// <summary>Writes grain outputs into the read models: idempotent upserts by their deterministic ids, one transaction per call.</summary>
public interface IReadModelWriter
{
    Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken);
}

/// <summary>What the Api reads: the outputs the grains wrote.</summary>
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

    /// <summary>Pending commands of the device, oldest first, at most <paramref name="limit"/>; changes nothing (MQTT marks each once its device acknowledges it).</summary>
    Task<IReadOnlyList<DeviceCommand>> ListPendingCommandsAsync(string deviceId, int limit, CancellationToken cancellationToken);

    /// <summary>Records that the device received the command (now); false when it is not stored or was delivered before.</summary>
    Task<bool> MarkCommandDeliveredAsync(string deviceId, string commandId, CancellationToken cancellationToken);

    /// <summary>The device's commands, delivered or not, newest (last stored) first, at most <paramref name="limit"/>; changes nothing.</summary>
    Task<IReadOnlyList<CommandRecord>> ListCommandsAsync(string deviceId, int limit, CancellationToken cancellationToken);
}

/// <summary>The rule definitions as operators manage them. Versions come from one increasing sequence.</summary>
/// <summary>What <see cref="IRuleStore.CreateAsync"/> did.</summary>
public enum RuleCreation
{
    Created,
    Exists,
    Full,
}

public interface IRuleStore
{
    Task<IReadOnlyList<RuleDefinition>> ListAsync(CancellationToken cancellationToken);

    Task<RuleDefinition?> GetAsync(string ruleId, CancellationToken cancellationToken);

    Task<long> NextVersionAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Stores a new rule unless one with that id exists, or <paramref name="maxRules"/> rules exist already (checked and
    /// inserted atomically: concurrent creates never pass the bound together).
    /// </summary>
    Task<RuleCreation> CreateAsync(RuleDefinition rule, int maxRules, CancellationToken cancellationToken);

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
