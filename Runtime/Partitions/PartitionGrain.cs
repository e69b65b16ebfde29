using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Metadata;
using Orleans.Placement;
using Orleans.Runtime;

namespace Runtime.Partitions;

/// <summary>
/// The reader of one partition of the log: Orleans keeps one activation of it in the cluster (placed with the partition's
/// sensors) and activates it on another silo when its silo dies (<see cref="PartitionKeeper"/> calls every partition
/// grain from every silo). From its stored position it reads the log in order, hands each sensor its readings
/// (<see cref="ISensorGrain.ApplyAsync"/>), wakes sensors whose clock must run, and tells a rule's grain when the rule
/// changes. At each checkpoint it takes a snapshot of its state and flushes (outputs, then state) the sensors whose work
/// has waited <see cref="SiloOptions.SensorWriteInterval"/> unstored, or all of them in a small fleet; it stores the
/// newest snapshot that every sensor has stored the work before (<see cref="UnstoredWork"/>). A sensor receiving readings
/// all the time so writes its state once per interval, not once per checkpoint. When a sensor's stored state turns out
/// behind what it was given (its activation died with unwritten state), the reader replays from the stored position, and
/// sensors skip the offsets they have. When its silo shuts down, <see cref="PartitionDrain"/> stops the reader with a last
/// checkpoint before the silo leaves.
/// </summary>
[GrainType(PartitionPlacementDirector.PartitionGrainType), PartitionPlacement, KeepAlive, Reentrant, Immovable]
public sealed partial class PartitionGrain(
    [PersistentState("partition", GrainStorage.Name)] IPersistentState<PartitionState> storage,
    IInboxLog log,
    IOptions<SiloOptions> options,
    TimeProvider time,
    ILocalSiloDetails silo,
    IClusterMembershipService membership,
    IClusterManifestProvider manifests,
    GrainReferences references,
    PartitionDrain drain,
    ILogger<PartitionGrain> logger) : Grain, IPartitionGrain
{
    /// <summary>How long a graceful deactivation waits for the final checkpoint before leaving the replay to the next activation.</summary>
    private static readonly TimeSpan FinalCheckpointTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Sensor calls in flight at once per partition (work, wake-ups, flushes).</summary>
    private const int CallsInFlight = 256;

    private static readonly GrainType PartitionType = GrainType.Create(PartitionPlacementDirector.PartitionGrainType);

    private readonly CancellationTokenSource _stop = new();

    /// <summary>Sensors holding work they have not stored, and the snapshots waiting for them.</summary>
    private UnstoredWork _unstored = new();

    private PartitionLogic _logic = null!;
    private Task _loop = Task.CompletedTask;

    /// <summary>The checkpoint in flight (at most one): it flushes and commits while the reader goes on.</summary>
    private Task? _checkpoint;
    private int _partition;

    private DateTimeOffset _activatedAt;
    private DateTimeOffset? _lastCommitAt;
    private long _committedOffset;
    private long _readingsApplied;
    private long? _tickPendingMs;

    /// <summary>The last round of wakes was full and more sensors are due: the next round follows without waiting for records.</summary>
    private bool _wakingBacklog;
    private MembershipVersion _checkedMembership = MembershipVersion.MinValue;
    private MajorMinorVersion _checkedManifest = MajorMinorVersion.MinValue;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var partitions = options.Value.Partitions;
        var key = this.GetPrimaryKeyLong();
        if (key < 0 || key >= partitions)
        {
            throw new ArgumentOutOfRangeException(nameof(key), key, $"The log has {partitions} partitions (0 to {partitions - 1}).");
        }

        _partition = (int)key;
        _activatedAt = time.GetUtcNow();
        Load();
        LogStarted(logger, _partition, _logic.NextOffset, silo.SiloAddress);
        drain.Started(_partition);
        _loop = RunAsync(_stop.Token);
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await StopAsync();
        drain.Ended(_partition);
    }

    public Task EnsureRunningAsync() => Task.CompletedTask;

    public Task StopReadingAsync(SiloAddress siloAddress) => siloAddress.Equals(silo.SiloAddress) ? StopAsync() : Task.CompletedTask;

    private async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
    }

    /// <summary>
    /// How long <see cref="GetStatusAsync"/>, asked for the log's end, waits for it before it answers without it: well within what its
    /// callers wait for the answer, so that a broker too busy to tell its end leaves the rest of the status visible.
    /// </summary>
    public static readonly TimeSpan EndOffsetWait = TimeSpan.FromSeconds(1);

    public async Task<PartitionStatus> GetStatusAsync(bool withEnd)
    {
        long? end = null;
        if (withEnd)
        {
            try
            {
                end = await log.EndOffsetAsync(_partition, CancellationToken.None).AsTask().WaitAsync(EndOffsetWait);
            }
            catch (Exception e) when (e is TimeoutException or LogUnavailableException)
            {
                // The log cannot answer now: the status says so with a null end.
            }
        }

        // The counters as they are after any wait for the log's end, with the time they are read at: a rate from two
        // answers spans the times of those reads.
        return new PartitionStatus(_partition, silo.SiloAddress.ToParsableString(), _activatedAt, _committedOffset, _logic.NextOffset, end,
            _readingsApplied, _logic.SensorCount, _lastCommitAt, time.GetUtcNow());
    }

    private void Load()
    {
        var o = options.Value;
        // Not the state object when nothing is stored: before its first write that object is the logic's own memory, which
        // a replay must not start from.
        _logic = new PartitionLogic(_partition, o.Partitions, storage.RecordExists ? storage.State : new PartitionState(), o.IdempotencyWindow);
        _wakingBacklog = false;
        _committedOffset = _logic.NextOffset;
        _unstored = new UnstoredWork();
        _tickPendingMs = null;
        _checkpoint = null;
    }

    /// <summary>Reads until deactivated; after a failure, waits and replays from the stored position. On a stop, a last checkpoint.</summary>
    private async Task RunAsync(CancellationToken cancellationToken)
    {
        for (var failures = 0; !cancellationToken.IsCancellationRequested;)
        {
            try
            {
                await ReadAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                failures++;
                LogReplaying(logger, e, _partition, failures);
                if (_checkpoint is { } inFlight)
                {
                    // It must not store its older snapshot over what the replay commits later.
                    await inFlight.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
                }

                // The reader goes on only from the stored state: what it holds in memory is past what was applied. A stop
                // before the reload leaves the replay to the next activation (no last checkpoint of that memory).
                if (!await ReloadAsync(failures, cancellationToken))
                {
                    return;
                }
            }
        }

        try
        {
            if (_logic.NextOffset > _committedOffset || _unstored.Count > 0 || _checkpoint is not null)
            {
                await FinalCheckpointAsync().WaitAsync(FinalCheckpointTimeout);
            }

            LogHandedOver(logger, _partition, _committedOffset);
        }
        catch (Exception e)
        {
            LogFinalCheckpointFailed(logger, e, _partition);
        }
    }

    /// <summary>Reads the stored state again (trying until it can, waiting longer after each failure); false when stopped first.</summary>
    private async Task<bool> ReloadAsync(int failures, CancellationToken cancellationToken)
    {
        for (var attempt = failures; ; attempt++)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2_000, 100 * attempt)), time, cancellationToken);
                await storage.ReadStateAsync();
                Load();
                LogReplayFrom(logger, _partition, _logic.NextOffset);
                return true;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return false;
            }
            catch (Exception e)
            {
                LogReloadFailed(logger, e, _partition);
            }
        }
    }

    private async Task ReadAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var records = new List<LogRecord>(o.ReadBatchSize);
        var batch = new PartitionBatch();
        // An idle reader wakes at least every PartitionCheckInterval: to tick, to checkpoint, and to move to a silo that joined.
        var wait = o.TicksEnabled && o.TickInterval < o.CheckpointInterval ? o.TickInterval : o.CheckpointInterval;
        wait = wait < o.PartitionCheckInterval ? wait : o.PartitionCheckInterval;
        var recordsSinceCheckpoint = 0;
        var lastCheckpoint = time.GetTimestamp();
        await using var reader = log.OpenReader(_partition, _logic.NextOffset);
        while (true)
        {
            // After a full round of wakes, the sensors still due are woken after the records that arrived meanwhile, without
            // waiting for more.
            var n = await reader.ReadAsync(records, o.ReadBatchSize, _wakingBacklog ? TimeSpan.Zero : wait, cancellationToken);
            for (var start = 0; start < n;)
            {
                batch.Clear();
                start += _logic.Take(records, start, batch);
                await DeliverAsync(batch);
            }

            // Not held while the reader waits for the next records (an idle partition after a burst).
            records.Clear();
            batch.Clear();

            if (_tickPendingMs <= _logic.ReceivedUpToMs)
            {
                _tickPendingMs = null;
            }

            await WakeDueAsync();
            recordsSinceCheckpoint += n;
            if (_checkpoint is { IsCompleted: true })
            {
                await CompleteCheckpointAsync(); // a failed one throws here: the reader replays from the stored position
            }

            var full = recordsSinceCheckpoint >= o.CheckpointMaxRecords;
            var due = (_logic.NextOffset > _committedOffset || _unstored.Count > 0) && time.GetElapsedTime(lastCheckpoint) >= o.CheckpointInterval;
            if (full || (due && _checkpoint is null))
            {
                // One checkpoint in flight at most. One that is due waits until the previous has finished while the reader
                // reads on (a checkpoint that flushes thousands of sensors takes seconds, and readings must not wait for it);
                // past CheckpointMaxRecords the reader waits for it (backpressure while storage is slow).
                await CompleteCheckpointAsync();
                _checkpoint = CheckpointAsync(all: false);
                recordsSinceCheckpoint = 0;
                lastCheckpoint = time.GetTimestamp();
            }

            if (n == 0)
            {
                await AppendTickIfDueAsync(cancellationToken);
            }

            if (!OnPlacedSilo())
            {
                // The membership changed (a silo joined, say): the partition moves to the silo placement now picks. This
                // activation stops with a last checkpoint; the keeper activates the partition there.
                LogMoving(logger, _partition, silo.SiloAddress);
                DeactivateOnIdle();
                await _stop.CancelAsync();
            }

            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Hands every sensor of the batch its readings, then tells rule grains of a rule change.</summary>
    private async Task DeliverAsync(PartitionBatch batch)
    {
        if (batch.Sensors.Count > 0)
        {
            var work = new (string, SensorWorkItem[])[batch.Sensors.Count];
            var i = 0;
            foreach (var (sensorId, items) in batch.Sensors)
            {
                work[i++] = (sensorId, [.. items]);
            }

            await ApplyAllAsync(work, batch.ReceivedUpToMs, batch.Rules, batch.Outside);
            _readingsApplied += batch.Readings;
        }

        foreach (var change in batch.RuleChanges)
        {
            await references.Get<IRuleGrain>(change.RuleId).DefineAsync(change);
        }
    }

    /// <summary>
    /// Lets the clock of sensors due by the receipt time reached run to it (minutes close, offline rules fire): one window of
    /// <see cref="CallsInFlight"/> calls a round, between the reader's batches. When a fleet's minute closes, every sensor of
    /// the partition falls due at once; woken all together they would hold the records read after them (an alert among
    /// them) for thousands of calls, while sensors with steady readings are closed by their next reading anyway.
    /// </summary>
    private async Task WakeDueAsync()
    {
        var due = _logic.TakeDue(CallsInFlight);
        _wakingBacklog = due.Count == CallsInFlight && _logic.HasDue;
        if (due.Count > 0)
        {
            await ApplyAllAsync(due.Select(sensorId => (sensorId, Array.Empty<SensorWorkItem>())).ToArray(), _logic.ReceivedUpToMs, _logic.Rules,
                _logic.Outside);
        }
    }

    /// <summary>
    /// Gives each sensor its work, <see cref="CallsInFlight"/> calls at a time, and records where each stands. A sensor
    /// counts as touched before its call (a call that fails still has the next checkpoint check the sensor), and the
    /// checkpoint expects it to have stored what it reports applied. The results of a window are taken together when all
    /// its calls have answered: one turn of this grain per window, not one per call. A failed call fails the delivery
    /// (the reader replays from the stored position).
    /// </summary>
    private async Task ApplyAllAsync((string SensorId, SensorWorkItem[] Items)[] work, long receivedUpToMs, RuleCatalog rules,
        OutsideConditions outside)
    {
        var window = new ValueTask<SensorProgress>[Math.Min(CallsInFlight, work.Length)];
        var progress = new SensorProgress[window.Length];
        var answers = new WindowAnswers();
        for (var start = 0; start < work.Length; start += window.Length)
        {
            var count = Math.Min(window.Length, work.Length - start);
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            for (var i = 0; i < count; i++)
            {
                var (sensorId, items) = work[start + i];
                var appliedAtLeast = _logic.AppliedPositionOf(sensorId);
                _unstored.Touch(sensorId, items.Length > 0 ? Math.Max(appliedAtLeast, items[^1].Position) : appliedAtLeast, now);
                window[i] = Sensor(sensorId).ApplyAsync(new SensorWork(items, receivedUpToMs, rules, appliedAtLeast, outside));
            }

            await answers.AllAsync(window, count);
            WindowAnswers.Read(window, count, progress);
            for (var i = 0; i < count; i++)
            {
                var sensorId = work[start + i].SensorId;
                _logic.Progress(sensorId, progress[i]);
                _unstored.Touch(sensorId, progress[i].AppliedPosition, now);
            }
        }
    }

    /// <summary>
    /// Calls every item, <see cref="CallsInFlight"/> at a time: the calls of one batch or checkpoint (tens of thousands in a
    /// large fleet) must not flood the silo's thread pool, where HTTP requests and other partitions wait behind them, nor
    /// keep that many messages alive at once (they outlive young-generation collections and make them slow).
    /// </summary>
    private static async Task CallAllAsync<T>(IReadOnlyList<T> items, Func<T, Task> call)
    {
        var window = new Task[Math.Min(CallsInFlight, items.Count)];
        for (var start = 0; start < items.Count; start += window.Length)
        {
            var count = Math.Min(window.Length, items.Count - start);
            for (var i = 0; i < count; i++)
            {
                window[i] = call(items[start + i]);
            }

            await Task.WhenAll(new ReadOnlySpan<Task>(window, 0, count));
        }
    }

    private ISensorGrain Sensor(string sensorId) => references.Get<ISensorGrain>(sensorId);

    /// <summary>Waits for the checkpoint in flight, if any; throws what it threw.</summary>
    private async Task CompleteCheckpointAsync()
    {
        if (_checkpoint is { } checkpoint)
        {
            _checkpoint = null;
            await checkpoint;
        }
    }

    /// <summary>The last checkpoint before stopping: the one in flight, then one that flushes every sensor and stores everything applied.</summary>
    private async Task FinalCheckpointAsync()
    {
        await CompleteCheckpointAsync();
        await CheckpointAsync(all: true);
    }

    /// <summary>
    /// Takes a snapshot of the partition's state and flushes the sensors due to store their work (all of them when
    /// <paramref name="all"/>), checking that each stored what it was given; then stores the newest snapshot that every
    /// sensor has stored the work before, if any. The reader goes on meanwhile: a sensor flushed later than the
    /// selection stored at least what it was given before. The store refuses the write when another activation of this
    /// partition wrote since this one read (Orleans' ETag): the reader then reloads and replays.
    /// </summary>
    private async Task CheckpointAsync(bool all)
    {
        var o = options.Value;
        _unstored.AddSnapshot(_logic.Snapshot());
        var flush = _unstored.Select(time.GetUtcNow().ToUnixTimeMilliseconds(), (long)o.SensorWriteInterval.TotalMilliseconds,
            o.SensorWriteAllUpTo, all, _unstored.FlushBound(o.CheckpointInterval, o.SensorWriteInterval, o.SensorWriteAllUpTo));
        await CallAllAsync(flush.Sensors, async sensor =>
        {
            // The flush comes after the work given before it, in the sensor's turn; the wait for its writes does not hold
            // that turn, so the reader's next readings for the sensor are applied meanwhile.
            var grain = Sensor(sensor.SensorId);
            await grain.FlushAsync();
            var stored = await grain.StoredAsync();
            if (stored < sensor.Given)
            {
                throw new PartitionReplayException(_partition, sensor.SensorId, sensor.Given, stored);
            }
        });

        _unstored.Flushed(flush);
        if (_unstored.TakeCommittable() is not { } snapshot)
        {
            return;
        }

        storage.State = snapshot;
        await storage.WriteStateAsync();
        _committedOffset = snapshot.NextOffset;
        _lastCommitAt = time.GetUtcNow();
        log.Committed(_partition, _committedOffset);
    }

    /// <summary>
    /// True when <see cref="PartitionPlacementDirector"/> would place the partition on this silo now, from the silos Orleans
    /// offers it (active, and known to host partition grains: a silo that just joined counts once its manifest is known
    /// here, as for placement, or the partition would move away and be placed here again until it is). Checked again only
    /// when the membership or the manifest changed. A silo that is not active (shutting down) keeps what it has.
    /// </summary>
    private bool OnPlacedSilo()
    {
        var snapshot = membership.CurrentSnapshot;
        var manifest = manifests.Current;
        if (snapshot.Version == _checkedMembership && manifest.Version == _checkedManifest)
        {
            return true;
        }

        _checkedMembership = snapshot.Version;
        _checkedManifest = manifest.Version;
        var active = snapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active
                && manifest.Silos.TryGetValue(m.SiloAddress, out var hosted) && hosted.Grains.ContainsKey(PartitionType))
            .Select(m => m.SiloAddress).Order().ToArray();
        return active.Length == 0 || !active.Contains(silo.SiloAddress) || active[_partition % active.Length].Equals(silo.SiloAddress);
    }

    /// <summary>
    /// When the partition is idle and a sensor is due by the wall clock, appends a tick: read back in log order, it moves
    /// the partition's receipt time, so the decision is the log's and a replay makes the same one.
    /// </summary>
    private async Task AppendTickIfDueAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.TicksEnabled || _tickPendingMs is not null || _wakingBacklog || _logic.NextWakeMs is not { } due)
        {
            return; // while sensors already due are being woken, the receipt time need not move for them
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (due > now || now <= _logic.ReceivedUpToMs)
        {
            return;
        }

        try
        {
            await log.AppendAsync(_partition, [new TickEntry(now)], cancellationToken);
            _tickPendingMs = now;
        }
        catch (LogUnavailableException e)
        {
            LogTickFailed(logger, e, _partition); // tried again when next idle
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Partition {Partition} reads from offset {Offset} on silo {Silo}")]
    private static partial void LogStarted(ILogger logger, int partition, long offset, SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Information, Message = "Partition {Partition} moves away from silo {Silo}: the membership changed")]
    private static partial void LogMoving(ILogger logger, int partition, SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Information, Message = "Partition {Partition} stopped with everything before offset {Offset} committed")]
    private static partial void LogHandedOver(ILogger logger, int partition, long offset);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partition {Partition} failed (attempt {Attempt}); replaying from its stored position")]
    private static partial void LogReplaying(ILogger logger, Exception exception, int partition, int attempt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Partition {Partition} replays from its stored offset {Offset}")]
    private static partial void LogReplayFrom(ILogger logger, int partition, long offset);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partition {Partition}: reading its stored position failed; trying again")]
    private static partial void LogReloadFailed(ILogger logger, Exception exception, int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partition {Partition}: the last checkpoint before stopping failed; the next activation replays")]
    private static partial void LogFinalCheckpointFailed(ILogger logger, Exception exception, int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partition {Partition}: appending a tick failed; trying again when idle")]
    private static partial void LogTickFailed(ILogger logger, Exception exception, int partition);
}

/// <summary>A sensor's stored state is behind what its partition gave it: the partition replays from its stored position.</summary>
public sealed class PartitionReplayException(int partition, string sensorId, long given, long stored)
    : Exception($"Partition {partition}: sensor '{sensorId}' stored position {stored} (offset {LogPosition.OffsetOf(stored)}) "
        + $"but was given position {given} (offset {LogPosition.OffsetOf(given)}); replaying.");
