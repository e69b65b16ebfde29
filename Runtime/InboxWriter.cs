using Grains.Abstractions;

namespace Runtime;

/// <summary>
/// How an Api node writes to the log: telemetry and operators' metadata changes to the partitions their sensors hash to,
/// rule changes to every partition, each stamped with the node's clock as the receipt time. The tasks complete when the entries are durable in the log.
/// </summary>
public sealed class InboxWriter(IInboxLog log, TimeProvider time)
{
    public int Partitions => log.Partitions;

    /// <summary>
    /// Appends readings, one entry per partition, each carrying the request's idempotency key (null: none); completes when
    /// every entry is durable in the log. Resending the same readings with the same key counts them once.
    /// </summary>
    public Task AppendTelemetryAsync(IReadOnlyList<Reading> readings, string? idempotencyKey, CancellationToken cancellationToken)
    {
        var partitions = log.Partitions;
        var receivedAtMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (partitions == 1 || readings.Count == 1)
        {
            var only = readings.Count == 1 ? Partitioner.PartitionOf(readings[0].SensorId, partitions) : 0;
            return log.AppendAsync(only, [new TelemetryEntry(readings as Reading[] ?? readings.ToArray(), idempotencyKey, receivedAtMs)], cancellationToken).AsTask();
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
                appends.Add(log.AppendAsync(p, [new TelemetryEntry(batch.ToArray(), idempotencyKey, receivedAtMs)], cancellationToken).AsTask());
            }
        }

        return Task.WhenAll(appends);
    }

    /// <summary>
    /// Appends an operator's metadata change to the sensor's partition; completes when it is durable in the log. The
    /// sensor applies it after the readings appended before it and before those appended after it.
    /// </summary>
    public Task AppendSensorMetadataAsync(string sensorId, OperatorMetadata metadata, CancellationToken cancellationToken)
    {
        var atMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        return log.AppendAsync(Partitioner.PartitionOf(sensorId, log.Partitions), [new SensorMetadataEntry(sensorId, metadata, atMs)],
            cancellationToken).AsTask();
    }

    /// <summary>Appends a rule change to every partition, so each applies it in order with its telemetry.</summary>
    public Task AppendRuleChangeAsync(string ruleId, RuleDefinition? rule, CancellationToken cancellationToken)
    {
        var atMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        return Task.WhenAll(Enumerable.Range(0, log.Partitions)
            .Select(p => log.AppendAsync(p, [new RuleChangeEntry(ruleId, rule, atMs)], cancellationToken).AsTask()));
    }

    /// <summary>
    /// Appends observations of a location's outside conditions to every partition (its sensors may be in any); completes
    /// when they are durable in every partition.
    /// </summary>
    public Task AppendOutsideConditionsAsync(string location, OutsideObservation[] observations, CancellationToken cancellationToken)
    {
        var atMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        return Task.WhenAll(Enumerable.Range(0, log.Partitions)
            .Select(p => log.AppendAsync(p, [new OutsideConditionsEntry(location, observations, atMs)], cancellationToken).AsTask()));
    }
}
