using System.Collections.Concurrent;
using Grains.Abstractions;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace Runtime.Partitions;

/// <summary>
/// Stops this silo's partition readers, each with its last checkpoint, as the first step of the silo's shutdown: while
/// the silo is still active and its sensor grains are where they were. Left to the silo's own deactivation of every
/// grain, the last checkpoint would run after the silo announced that it is shutting down; the other silos then no longer
/// find this silo's grains in the grain directory and may start a partition's next reader, and its sensors, while this
/// one still flushes. Both write the same stored states; Orleans' ETag check refuses one side, so nothing is lost, but the
/// last checkpoint fails and the next reader replays. A stop that is not graceful (its token already cancelled) skips it.
/// </summary>
public sealed partial class PartitionDrain(IGrainFactory grains, ILocalSiloDetails silo, ILogger<PartitionDrain> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    /// <summary>How long the drain waits for the readers' last checkpoints before the shutdown goes on without them.</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<long, bool> _local = new();

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(PartitionDrain), ServiceLifecycleStage.Active, _ => Task.CompletedTask, StopAsync);

    /// <summary>A partition's reader started on this silo.</summary>
    public void Started(long partition) => _local[partition] = true;

    /// <summary>A partition's activation on this silo ended.</summary>
    public void Ended(long partition) => _local.TryRemove(partition, out _);

    private async Task StopAsync(CancellationToken cancellationToken)
    {
        var partitions = _local.Keys.Order().ToArray();
        if (partitions.Length == 0 || cancellationToken.IsCancellationRequested)
        {
            return;
        }

        try
        {
            await Task.WhenAll(partitions.Select(p => grains.GetGrain<IPartitionGrain>(p).StopReadingAsync(silo.SiloAddress)))
                .WaitAsync(Timeout, cancellationToken);
            LogDrained(logger, string.Join(",", partitions));
        }
        catch (Exception e)
        {
            // The readers that did not stop take their last checkpoint when the silo deactivates them, as without the drain.
            LogDrainFailed(logger, e, string.Join(",", partitions));
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Partitions {Partitions} stopped reading before the silo shuts down")]
    private static partial void LogDrained(ILogger logger, string partitions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partitions {Partitions}: stopping the readers before the silo shuts down failed")]
    private static partial void LogDrainFailed(ILogger logger, Exception exception, string partitions);
}
