using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Runtime.Hosting;

/// <summary>
/// Every hour, deletes the minute aggregates past the read store's retention (<see cref="IAggregateRetention"/>: PostgreSQL
/// in durable mode, process memory in embedded mode). In durable mode every node runs it; the deletes are idempotent.
/// </summary>
public sealed partial class AggregateRetentionService(IAggregateRetention store, TimeProvider time, ILogger<AggregateRetentionService> logger)
    : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    private PeriodicTimer? _timer;

    /// <summary>The hours count from here (<see cref="ExecuteAsync"/> starts later, on the thread pool).</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _timer = new PeriodicTimer(Interval, time);
        return base.StartAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _timer?.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var timer = _timer ?? throw new InvalidOperationException("StartAsync creates the timer");
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var deleted = await store.DeleteExpiredAggregatesAsync(stoppingToken);
                if (deleted > 0)
                {
                    LogDeleted(logger, deleted);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted {Count} metric statistics of expired minute aggregates")]
    private static partial void LogDeleted(ILogger logger, long count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deleting expired minute aggregates failed; trying again in an hour")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
