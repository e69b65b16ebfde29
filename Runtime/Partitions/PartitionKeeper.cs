using Grains.Abstractions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Runtime.Partitions;

/// <summary>
/// Runs on every silo: calls every partition grain every <see cref="SiloOptions.PartitionCheckInterval"/>, and at once when
/// the cluster's membership changes. A call to a partition whose silo died activates it again on a live silo, so a dead
/// silo's partitions resume without an operator. A call waits briefly: one in flight to a dead silo is not awaited.
/// </summary>
public sealed partial class PartitionKeeper(
    IGrainFactory grains,
    IClusterMembershipService membership,
    IOptions<SiloOptions> options,
    TimeProvider time,
    ILogger<PartitionKeeper> logger) : BackgroundService
{
    private static readonly TimeSpan CallWait = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var changed = new SemaphoreSlim(0);
        _ = WatchMembershipAsync(changed, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            await EnsureAllAsync();
            try
            {
                await changed.WaitAsync(options.Value.PartitionCheckInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task EnsureAllAsync()
    {
        var partitions = options.Value.Partitions;
        var calls = new Task[partitions];
        for (var p = 0; p < partitions; p++)
        {
            calls[p] = EnsureAsync(p);
        }

        await Task.WhenAll(calls);
    }

    private async Task EnsureAsync(int partition)
    {
        try
        {
            await grains.GetGrain<IPartitionGrain>(partition).EnsureRunningAsync().WaitAsync(CallWait, time);
        }
        catch (Exception e)
        {
            LogEnsureFailed(logger, partition, e.GetType().Name, e.Message);
        }
    }

    private async Task WatchMembershipAsync(SemaphoreSlim changed, CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var _ in membership.MembershipUpdates.WithCancellation(stoppingToken))
            {
                changed.Release();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Partition {Partition} did not answer ({Error}: {Message}); calling again")]
    private static partial void LogEnsureFailed(ILogger logger, int partition, string error, string message);
}
