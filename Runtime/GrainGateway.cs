using Grains.Abstractions;

namespace Runtime;

/// <summary>How the Api talks to grains: by appending to the inbox of the partition that owns the grain.</summary>
public sealed class GrainGateway(IInboxLog log)
{
    public int Partitions => log.Partitions;

    /// <summary>Appends readings, one entry per partition; completes when every entry is durable in the log.</summary>
    public Task AppendTelemetryAsync(IReadOnlyList<Reading> readings, CancellationToken cancellationToken) =>
        AppendTelemetryAsync(readings, null, cancellationToken);

    /// <summary>
    /// Appends readings, one entry per partition, each carrying the request's idempotency key (null: none);
    /// completes when every entry is durable in the log. Resending the same readings with the same key counts them once.
    /// </summary>
    public Task AppendTelemetryAsync(IReadOnlyList<Reading> readings, string? idempotencyKey, CancellationToken cancellationToken)
    {
        var partitions = log.Partitions;
        if (partitions == 1 || readings.Count == 1)
        {
            var only = readings.Count == 1 ? Partitioner.PartitionOf(readings[0].SensorId, partitions) : 0;
            return log.AppendAsync(only, [new TelemetryEntry(readings as Reading[] ?? readings.ToArray(), idempotencyKey)], cancellationToken).AsTask();
        }
        var byPartition = new List<Reading>?[partitions];
        foreach (var reading in readings)
        {
            var p = Partitioner.PartitionOf(reading.SensorId, partitions);
            (byPartition[p] ??= []).Add(reading);
        }
        var appends = new List<Task>(partitions);
        for (var p = 0; p < partitions; p++)
        {
            if (byPartition[p] is { } batch)
            {
                appends.Add(log.AppendAsync(p, [new TelemetryEntry(batch.ToArray(), idempotencyKey)], cancellationToken).AsTask());
            }
        }
        return Task.WhenAll(appends);
    }

    public Task SendAsync(GrainId target, GrainMessage message, CancellationToken cancellationToken) =>
        log.AppendAsync(Partitioner.PartitionOf(target.Key, log.Partitions), [new MessageEntry(target, message, null)], cancellationToken).AsTask();

    /// <summary>Appends a rule change to every partition, so each sees it in order with its telemetry.</summary>
    public Task BroadcastRuleChangeAsync(string ruleId, RuleDefinition? rule, CancellationToken cancellationToken) =>
        Task.WhenAll(Enumerable.Range(0, log.Partitions)
            .Select(p => log.AppendAsync(p, [new RuleChangeEntry(ruleId, rule)], cancellationToken).AsTask()));

    /// <summary>Appends a tick to every partition, advancing stream time to <paramref name="timeMs"/>.</summary>
    public Task TickAsync(long timeMs, CancellationToken cancellationToken) =>
        Task.WhenAll(Enumerable.Range(0, log.Partitions)
            .Select(p => log.AppendAsync(p, [new TickEntry(timeMs)], cancellationToken).AsTask()));
}
