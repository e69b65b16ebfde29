using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runtime.Postgres;
using Runtime.RabbitMq;

namespace Runtime.Outputs;

/// <summary>
/// Moves the outputs queued in PostgreSQL's outbox to the RabbitMQ output streams, each exactly once, in the durable
/// cluster. Every silo runs one; the one that holds the relay lock (a PostgreSQL session advisory lock) works, the others
/// try again every few seconds, so a dead silo's relay is replaced within that time.
/// <list type="number">
/// <item>On taking the lock, for each stream: read the sequence number of the stream's last message and mark the rows
/// numbered up to it appended (a predecessor appended them but died before recording it).</item>
/// <item>Then, in a loop: take the stream's numbered rows not yet appended, or number the next queued ones; append them
/// in sequence order with publisher confirms; mark them appended.</item>
/// </list>
/// A row is numbered before it is appended and marked after, so whatever the crash, the stream's last sequence number
/// says which numbered rows it holds: none is appended twice and none is skipped. Only the streams kept
/// (<see cref="OutputOptions.Streams"/>) are relayed; rows a stream left queued before it was left out wait for it to be
/// kept again.
/// </summary>
public sealed partial class OutputRelay(PostgresStore store, RabbitMqOutputStreams streams, IOptions<OutputOptions> options, TimeProvider time,
    ILogger<OutputRelay> logger)
    : BackgroundService
{
    private static readonly TimeSpan LockRetry = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var lease = await store.TryTakeOutputRelayLockAsync(stoppingToken).ConfigureAwait(false);
                if (lease is null)
                {
                    await Task.Delay(LockRetry, time, stoppingToken).ConfigureAwait(false);
                    continue;
                }
                await RelayAsync(lease, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogRelayFailed(logger, e.Message);
                await Task.Delay(LockRetry, time, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private async Task RelayAsync(OutputRelayLease lease, CancellationToken stoppingToken)
    {
        var settings = options.Value;
        var kept = settings.KeptStreams();
        foreach (var stream in kept)
        {
            var last = await streams.LastSequenceAsync(stream, stoppingToken).ConfigureAwait(false);
            await lease.MarkAppendedAsync(stream, last, stoppingToken).ConfigureAwait(false);
            LogResumed(logger, streams.StreamName(stream), last);
        }
        var nextPrune = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            var appended = 0;
            foreach (var stream in kept)
            {
                var batch = await lease.NextAsync(stream, settings.BatchSize, stoppingToken).ConfigureAwait(false);
                if (batch.Count == 0)
                {
                    continue;
                }
                await streams.AppendAsync(stream, batch, stoppingToken).ConfigureAwait(false);
                await lease.MarkAppendedAsync(stream, batch[^1].Seq, stoppingToken).ConfigureAwait(false);
                appended += batch.Count;
            }
            if (time.GetUtcNow() >= nextPrune)
            {
                nextPrune = time.GetUtcNow() + PruneInterval;
                while (await lease.PruneAsync(settings.DedupeWindow, stoppingToken).ConfigureAwait(false) > 0)
                {
                }
            }
            if (appended == 0)
            {
                await Task.Delay(settings.PollInterval, time, stoppingToken).ConfigureAwait(false);
                await lease.CheckAsync(stoppingToken).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Output relay: '{Stream}' resumes after sequence number {Sequence}")]
    private static partial void LogResumed(ILogger logger, string stream, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Output relay stopped; trying again: {Error}")]
    private static partial void LogRelayFailed(ILogger logger, string error);
}
