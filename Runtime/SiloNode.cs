using Grains.Abstractions;
using Microsoft.Extensions.Logging;

namespace Runtime;

/// <summary>
/// A silo: joins the membership with a heartbeat, holds a fair share of partition leases (ceil(P / live silos)),
/// renews them, runs a <see cref="PartitionWorker"/> per lease, and hands leases over after a final checkpoint
/// on a graceful stop. <see cref="KillAsync"/> stops like a crashed process: no checkpoint, no hand-over.
/// </summary>
public sealed partial class SiloNode : IAsyncDisposable
{
    private readonly SiloOptions _options;
    private readonly IInboxLog _log;
    private readonly ILeaseStore _leases;
    private readonly ICheckpointStore _checkpoints;
    private readonly ILiveEvents _live;
    private readonly GrainHosting _hosting;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly Dictionary<int, RunningPartition> _running = [];
    private readonly Lock _gate = new();
    private readonly DateTimeOffset _startedAt;
    private long _retiredReadings;
    private long _retiredAlerts;
    private CancellationTokenSource? _stopping;
    private Task? _loop;

    public SiloNode(SiloOptions options, IInboxLog log, ILeaseStore leases, ICheckpointStore checkpoints, ILiveEvents live,
        GrainHosting hosting, TimeProvider time, ILoggerFactory loggers)
    {
        if (log.Partitions != options.Partitions)
        {
            throw new InvalidOperationException($"The log has {log.Partitions} partitions but the silo is configured with {options.Partitions}.");
        }
        _options = options;
        _log = log;
        _leases = leases;
        _checkpoints = checkpoints;
        _live = live;
        _hosting = hosting;
        _time = time;
        _loggers = loggers;
        _logger = loggers.CreateLogger<SiloNode>();
        _startedAt = time.GetUtcNow();
    }

    public string SiloId => _options.SiloId;

    public IReadOnlyCollection<int> OwnedPartitions
    {
        get { lock (_gate) return _running.Where(r => !r.Value.Task.IsCompleted).Select(r => r.Key).Order().ToArray(); }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _leases.EnsureClusterAsync(_options.Partitions, cancellationToken).ConfigureAwait(false);
        _stopping = new CancellationTokenSource();
        await HeartbeatAsync(cancellationToken).ConfigureAwait(false);
        _loop = Task.Run(() => LoopAsync(_stopping.Token), CancellationToken.None);
        LogJoined(_logger, SiloId, _options.Partitions);
    }

    /// <summary>Graceful stop: final checkpoint of every partition, leases released, membership left.</summary>
    public async Task StopAsync()
    {
        if (_stopping is null)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        await IgnoreCancellation(_loop).ConfigureAwait(false);
        RunningPartition[] running;
        lock (_gate) running = _running.Values.ToArray();
        await Task.WhenAll(running.Select(r => StopPartitionAsync(r, graceful: true))).ConfigureAwait(false);
        await _leases.LeaveAsync(SiloId, CancellationToken.None).ConfigureAwait(false);
        _stopping = null;
        LogLeft(_logger, SiloId);
    }

    /// <summary>Abrupt stop, as a killed process: no checkpoint, leases left to expire.</summary>
    public async Task KillAsync()
    {
        if (_stopping is null)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        await IgnoreCancellation(_loop).ConfigureAwait(false);
        RunningPartition[] running;
        lock (_gate) running = _running.Values.ToArray();
        await Task.WhenAll(running.Select(r => StopPartitionAsync(r, graceful: false))).ConfigureAwait(false);
        _stopping = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    /// <summary>The workers of partitions held now, for queries and the cluster view.</summary>
    public PartitionWorker? Worker(int partition)
    {
        lock (_gate) return _running.TryGetValue(partition, out var r) && !r.Task.IsCompleted ? r.Worker : null;
    }

    public IReadOnlyDictionary<string, int> ActivationCounts()
    {
        RunningPartition[] running;
        lock (_gate) running = _running.Values.ToArray();
        return new Dictionary<string, int>
        {
            [GrainTypes.Sensor] = running.Sum(r => r.Worker.ActivationCount(GrainTypes.Sensor)),
            [GrainTypes.Rule] = running.Sum(r => r.Worker.ActivationCount(GrainTypes.Rule)),
        };
    }

    /// <summary>
    /// Readings applied and alerts opened by this silo's partitions since it started: the running workers' counts plus
    /// those of the workers it stopped. Read under the lock that moves a worker from one to the other, so it only grows.
    /// </summary>
    public (long ReadingsApplied, long AlertsOpened) Counters()
    {
        lock (_gate)
        {
            long readings = _retiredReadings, alerts = _retiredAlerts;
            foreach (var r in _running.Values)
            {
                readings += r.Worker.ReadingsApplied;
                alerts += r.Worker.AlertsOpened;
            }
            return (readings, alerts);
        }
    }

    /// <summary>True when this silo runs the partition of <paramref name="id"/> now.</summary>
    public bool Owns(GrainId id) => Worker(Partitioner.PartitionOf(id.Key, _options.Partitions)) is not null;

    /// <summary>Reads a grain's live state when this silo owns its partition; Found is false otherwise.</summary>
    public Task<(bool Found, T? Value)> QueryAsync<T>(GrainId id, Func<IGrain, T> read, CancellationToken cancellationToken) =>
        Worker(Partitioner.PartitionOf(id.Key, _options.Partitions)) is { } worker
            ? worker.QueryAsync(id, read, cancellationToken)
            : Task.FromResult<(bool, T?)>((false, default));

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                // Leases first: a slow heartbeat must not let them lapse.
                await RenewAsync(cancellationToken).ConfigureAwait(false);
                await HeartbeatAsync(cancellationToken).ConfigureAwait(false);
                await BalanceAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogLoopFailed(_logger, e, SiloId);
            }
            try
            {
                await Task.Delay(_options.RenewInterval, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        var (readings, alerts) = Counters();
        return _leases.HeartbeatAsync(new SiloInfo(SiloId, _options.Address, _startedAt, _time.GetUtcNow(), ActivationCounts(), readings, alerts),
            cancellationToken);
    }

    /// <summary>Forgets a stopped partition, keeping its worker's counts in the silo's totals.</summary>
    private void Retire(RunningPartition running)
    {
        lock (_gate)
        {
            if (_running.TryGetValue(running.Worker.Partition, out var current) && ReferenceEquals(current, running))
            {
                _running.Remove(running.Worker.Partition);
                _retiredReadings += running.Worker.ReadingsApplied;
                _retiredAlerts += running.Worker.AlertsOpened;
            }
        }
    }

    private async Task RenewAsync(CancellationToken cancellationToken)
    {
        RunningPartition[] running;
        lock (_gate) running = _running.Values.ToArray();
        foreach (var r in running)
        {
            if (r.Task.IsCompleted)
            {
                // Fenced or failed: the lease is someone else's (or will expire); forget the partition.
                Retire(r);
                if (r.Task.Exception is { } e && e.InnerException is not PartitionFencedException)
                {
                    LogPartitionFailed(_logger, e.InnerException ?? e, r.Worker.Partition);
                }
                continue;
            }
            if (!await _leases.RenewAsync(r.Worker.Partition, SiloId, r.Worker.Epoch, _options.LeaseDuration, cancellationToken).ConfigureAwait(false))
            {
                LogLeaseLost(_logger, r.Worker.Partition, r.Worker.Epoch);
                await StopPartitionAsync(r, graceful: false).ConfigureAwait(false);
            }
        }
    }

    private async Task BalanceAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var live = (await _leases.SilosAsync(cancellationToken).ConfigureAwait(false))
            .Where(s => s.LastHeartbeat > now - _options.LeaseDuration)
            .Select(s => s.SiloId)
            .Order(StringComparer.Ordinal)
            .ToList();
        if (!live.Contains(SiloId))
        {
            live.Add(SiloId);
        }
        var fairShare = (_options.Partitions + live.Count - 1) / live.Count;
        var owned = OwnedPartitions;
        if (owned.Count > fairShare)
        {
            foreach (var partition in owned.OrderDescending().Take(owned.Count - fairShare))
            {
                RunningPartition? r;
                lock (_gate) _running.TryGetValue(partition, out r);
                if (r is not null)
                {
                    await StopPartitionAsync(r, graceful: true).ConfigureAwait(false);
                }
            }
            return;
        }
        if (owned.Count == fairShare)
        {
            return;
        }
        var leases = await _leases.LeasesAsync(cancellationToken).ConfigureAwait(false);
        // Start looking at a different place on each silo so that silos rarely race for the same lease.
        var start = live.IndexOf(SiloId) * _options.Partitions / live.Count;
        var candidates = leases
            .Where(l => l.Owner is null || l.ExpiresAt <= now)
            .OrderBy(l => (l.Partition - start + _options.Partitions) % _options.Partitions);
        var missing = fairShare - owned.Count;
        foreach (var candidate in candidates)
        {
            if (missing == 0)
            {
                break;
            }
            var lease = await _leases.TryAcquireAsync(candidate.Partition, SiloId, _options.LeaseDuration, cancellationToken).ConfigureAwait(false);
            if (lease is null)
            {
                continue;
            }
            StartPartition(lease);
            missing--;
        }
    }

    private void StartPartition(Lease lease)
    {
        var worker = new PartitionWorker(lease.Partition, lease.Epoch, _options, _log, _checkpoints, _live, _hosting, _time,
            _loggers.CreateLogger<PartitionWorker>());
        var stop = new CancellationTokenSource();
        var running = new RunningPartition(worker, stop);
        running.Task = Task.Run(() => worker.RunAsync(() => running.Graceful, stop.Token), CancellationToken.None);
        lock (_gate) _running[lease.Partition] = running;
        LogAcquired(_logger, SiloId, lease.Partition, lease.Epoch);
    }

    private async Task StopPartitionAsync(RunningPartition running, bool graceful)
    {
        running.Graceful = graceful;
        await running.Stop.CancelAsync().ConfigureAwait(false);
        var handedOver = false;
        try
        {
            await running.Task.ConfigureAwait(false);
            handedOver = graceful;
        }
        catch (Exception e) when (e is PartitionFencedException or OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            LogPartitionFailed(_logger, e, running.Worker.Partition);
        }
        Retire(running);
        if (handedOver)
        {
            await _leases.ReleaseAsync(running.Worker.Partition, SiloId, running.Worker.Epoch, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task IgnoreCancellation(Task? task)
    {
        if (task is null)
        {
            return;
        }
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private sealed class RunningPartition(PartitionWorker worker, CancellationTokenSource stop)
    {
        public PartitionWorker Worker { get; } = worker;
        public CancellationTokenSource Stop { get; } = stop;
        public Task Task { get; set; } = Task.CompletedTask;
        public volatile bool Graceful;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Silo {SiloId} joined a cluster of {Partitions} partitions")]
    private static partial void LogJoined(ILogger logger, string siloId, int partitions);

    [LoggerMessage(Level = LogLevel.Information, Message = "Silo {SiloId} left the cluster")]
    private static partial void LogLeft(ILogger logger, string siloId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Silo {SiloId} took partition {Partition} with epoch {Epoch}")]
    private static partial void LogAcquired(ILogger logger, string siloId, int partition, long epoch);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lease of partition {Partition} (epoch {Epoch}) lost; stopping it")]
    private static partial void LogLeaseLost(ILogger logger, int partition, long epoch);

    [LoggerMessage(Level = LogLevel.Error, Message = "Partition {Partition} failed")]
    private static partial void LogPartitionFailed(ILogger logger, Exception exception, int partition);

    [LoggerMessage(Level = LogLevel.Error, Message = "Silo {SiloId}: membership loop failed; retrying")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception, string siloId);
}
