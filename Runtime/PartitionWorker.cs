using Grains.Abstractions;
using Microsoft.Extensions.Logging;

namespace Runtime;

/// <summary>Thrown when a checkpoint is refused because another silo took the partition (a higher epoch).</summary>
public sealed class PartitionFencedException(int partition, long epoch)
    : Exception($"Partition {partition}: checkpoint with epoch {epoch} refused; another silo owns the partition.");

/// <summary>
/// Runs one partition for the silo holding its lease: reads the inbox in log order, activates grains, delivers
/// messages, fires wake-ups on stream time, sends grain-to-grain messages through the target inboxes, publishes
/// outputs live, and checkpoints offset, grain states and outputs together, fenced by the lease epoch.
/// </summary>
public sealed partial class PartitionWorker
{
    private readonly int _partition;
    private readonly long _epoch;
    private readonly SiloOptions _options;
    private readonly IInboxLog _log;
    private readonly ICheckpointStore _store;
    private readonly ILiveEvents _live;
    private readonly GrainHosting _hosting;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    private readonly Lock _gate = new();
    private readonly Dictionary<GrainId, Activation> _activations = [];
    private readonly SortedSet<(long TimeMs, GrainId Id)> _wakeups = new(WakeupOrder.Instance);
    private readonly List<Activation> _dirty = [];
    private readonly List<GrainOutput> _checkpointOutputs = [];
    private readonly List<GrainOutput> _batchOutputs = [];
    private readonly List<MessageEntry> _outgoing = [];
    private readonly Context _context;

    private readonly Dictionary<string, long> _appliedKeys = new(StringComparer.Ordinal);
    private readonly List<AppliedKey> _newKeys = [];
    private RuleCatalog _rules = RuleCatalog.Empty;
    private bool _rulesChanged;
    private long _nextOffset;
    private long _committedOffset;
    private long _streamTimeMs;
    private int _recordsSinceCheckpoint;
    private long _lastCheckpointTicks;
    private Task? _commit;
    private int _activeSensors;
    private int _activeRules;
    private readonly CancellationTokenSource _commits = new();
    private bool _tickPending;
    private long _readingsApplied;
    private long _alertsOpened;

    public PartitionWorker(int partition, long epoch, SiloOptions options, IInboxLog log, ICheckpointStore store,
        ILiveEvents live, GrainHosting hosting, TimeProvider time, ILogger logger)
    {
        _partition = partition;
        _epoch = epoch;
        _options = options;
        _log = log;
        _store = store;
        _live = live;
        _hosting = hosting;
        _time = time;
        _logger = logger;
        _context = new Context(this);
    }

    public int Partition => _partition;

    public long Epoch => _epoch;

    /// <summary>The next log offset this worker will apply.</summary>
    public long NextOffset => Volatile.Read(ref _nextOffset);

    public long CommittedOffset => Volatile.Read(ref _committedOffset);

    public long StreamTimeMs => Volatile.Read(ref _streamTimeMs);

    /// <summary>Readings this worker applied (duplicates skipped by idempotency key not counted); only grows.</summary>
    public long ReadingsApplied => Volatile.Read(ref _readingsApplied);

    /// <summary>"Opened" alert events the grains of this worker emitted; only grows.</summary>
    public long AlertsOpened => Volatile.Read(ref _alertsOpened);

    /// <summary>Active grains of <paramref name="grainType"/>; read without waiting for the batch being applied.</summary>
    public int ActivationCount(string grainType) =>
        grainType == GrainTypes.Sensor ? Volatile.Read(ref _activeSensors) : grainType == GrainTypes.Rule ? Volatile.Read(ref _activeRules) : 0;

    private void CountActivation(GrainId id, int delta)
    {
        if (id.Type == GrainTypes.Sensor)
        {
            Interlocked.Add(ref _activeSensors, delta);
        }
        else if (id.Type == GrainTypes.Rule)
        {
            Interlocked.Add(ref _activeRules, delta);
        }
    }

    /// <summary>Runs until cancelled. With <paramref name="finalCheckpoint"/> set at that point, checkpoints before returning.</summary>
    public async Task RunAsync(Func<bool> finalCheckpoint, CancellationToken cancellationToken)
    {
        var checkpoint = await _store.LoadPartitionAsync(_partition, cancellationToken).ConfigureAwait(false);
        if (checkpoint is not null)
        {
            _nextOffset = _committedOffset = checkpoint.NextOffset;
            _streamTimeMs = checkpoint.StreamTimeMs;
            _rules = RuleCatalog.From(checkpoint.Rules);
            foreach (var key in checkpoint.AppliedKeys ?? [])
            {
                _appliedKeys[key.Key] = key.AtMs;
            }
        }
        foreach (var (id, wakeAtMs) in await _store.LoadWakeupsAsync(_partition, cancellationToken).ConfigureAwait(false))
        {
            _wakeups.Add((wakeAtMs, id));
        }
        LogStarted(_logger, _partition, _epoch, _nextOffset);
        _lastCheckpointTicks = _time.GetTimestamp();

        var records = new List<LogRecord>(_options.ReadBatchSize);
        await using var reader = _log.OpenReader(_partition, _nextOffset);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                records.Clear();
                var wait = _commit is not null ? CommitPoll
                    : _options.TicksEnabled ? Min(_options.TickInterval, _options.CheckpointInterval) : _options.CheckpointInterval;
                var n = await reader.ReadAsync(records, _options.ReadBatchSize, wait, cancellationToken).ConfigureAwait(false);
                if (n > 0)
                {
                    await ActivateForAsync(records, cancellationToken).ConfigureAwait(false);
                    lock (_gate)
                    {
                        foreach (var record in records)
                        {
                            Apply(record);
                        }
                    }
                    await FlushOutgoingAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await AppendTickIfDueAsync(cancellationToken).ConfigureAwait(false);
                }
                if (_commit is { IsCompleted: true })
                {
                    await CompleteCommitAsync().ConfigureAwait(false); // a fenced commit stops the worker here
                    DeactivateIdle();
                }
                if (_recordsSinceCheckpoint >= _options.CheckpointMaxRecords
                    || (_recordsSinceCheckpoint > 0 && _time.GetElapsedTime(_lastCheckpointTicks) >= _options.CheckpointInterval))
                {
                    // One commit in flight at most: the next capture waits for the previous commit (backpressure while
                    // the store is slow or down). With none in flight every clean grain is stored, so idle ones can go.
                    await CompleteCommitAsync().ConfigureAwait(false);
                    DeactivateIdle();
                    _commit = CommitAsync(Capture());
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        if (!finalCheckpoint())
        {
            // Stopped without a hand-over (the silo is going away): the next owner replays from the last commit.
            await _commits.CancelAsync().ConfigureAwait(false);
            if (_commit is { } abandoned)
            {
                await abandoned.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            return;
        }
        // A stop can interrupt the hand-off of an applied batch; its messages must reach the log before the offset moves past it.
        // Both retry while a server is down, but not for ever: after a lease time the stop goes on without the final
        // checkpoint (OperationCanceledException), and the next owner replays from the last one.
        using var limit = new CancellationTokenSource(_options.LeaseDuration, _time);
        using var stopCommits = limit.Token.Register(_commits.Cancel);
        await FlushOutgoingAsync(limit.Token).ConfigureAwait(false);
        await CompleteCommitAsync().ConfigureAwait(false);
        _commit = CommitAsync(Capture());
        await CompleteCommitAsync().ConfigureAwait(false);
        LogHandedOver(_logger, _partition, _epoch, _nextOffset);
    }

    /// <summary>How long an idle worker waits for the log while a commit is in flight, so that it completes the commit promptly.</summary>
    private static readonly TimeSpan CommitPoll = TimeSpan.FromMilliseconds(10);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>Loads, before applying a batch, every grain the batch or the wake-ups it makes due will touch.</summary>
    private async Task ActivateForAsync(List<LogRecord> records, CancellationToken cancellationToken)
    {
        var needed = new HashSet<GrainId>();
        var horizon = _streamTimeMs;
        var allSensors = false;
        lock (_gate)
        {
            var rules = _rules;
            foreach (var record in records)
            {
                switch (record.Entry)
                {
                    case TelemetryEntry telemetry:
                        foreach (var reading in telemetry.Readings)
                        {
                            horizon = Math.Max(horizon, reading.TimestampMs);
                            var id = GrainId.Sensor(reading.SensorId);
                            if (!_activations.ContainsKey(id))
                            {
                                needed.Add(id);
                            }
                        }
                        break;
                    case MessageEntry message when !_activations.ContainsKey(message.Target):
                        needed.Add(message.Target);
                        break;
                    case TickEntry tick:
                        horizon = Math.Max(horizon, tick.TimeMs);
                        break;
                    case RuleChangeEntry change:
                        allSensors |= InvolvesOfflineRule(rules, change);
                        rules = Applied(rules, change);
                        var ruleGrain = GrainId.Rule(change.RuleId);
                        if (Partitioner.PartitionOf(change.RuleId, _log.Partitions) == _partition && !_activations.ContainsKey(ruleGrain))
                        {
                            needed.Add(ruleGrain);
                        }
                        break;
                }
            }
            foreach (var (_, id) in _wakeups.GetViewBetween((long.MinValue, default), (horizon, new GrainId("\uffff", "\uffff"))))
            {
                if (!_activations.ContainsKey(id))
                {
                    needed.Add(id);
                }
            }
        }
        if (allSensors)
        {
            foreach (var id in await _store.LoadGrainIdsAsync(_partition, GrainTypes.Sensor, cancellationToken).ConfigureAwait(false))
            {
                lock (_gate)
                {
                    if (!_activations.ContainsKey(id))
                    {
                        needed.Add(id);
                    }
                }
            }
        }
        if (needed.Count == 0)
        {
            return;
        }
        var stored = await _store.LoadGrainsAsync(_partition, needed, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            foreach (var id in needed)
            {
                stored.TryGetValue(id, out var record);
                var grain = _hosting.Activate(id, record?.State);
                _activations[id] = new Activation(id, grain)
                {
                    WakeAtMs = record?.WakeAtMs,
                    Received = record?.Received is { } received ? new Dictionary<int, MessageId>(received) : null,
                };
                CountActivation(id, 1);
            }
        }
    }

    private void Apply(LogRecord record)
    {
        _context.BeginRecord(record.Offset);
        switch (record.Entry)
        {
            case TelemetryEntry telemetry:
                if (telemetry.IdempotencyKey is { } key && AppliedBefore(key))
                {
                    LogDuplicateSkipped(_logger, _partition, record.Offset, key);
                    break;
                }
                foreach (var reading in telemetry.Readings)
                {
                    if (reading.TimestampMs > _streamTimeMs)
                    {
                        _streamTimeMs = reading.TimestampMs;
                    }
                    Deliver(_activations[GrainId.Sensor(reading.SensorId)], reading);
                    FireDueWakeups();
                }
                // One writer (this loop); the silo reads it at its heartbeat.
                Volatile.Write(ref _readingsApplied, _readingsApplied + telemetry.Readings.Length);
                if (telemetry.IdempotencyKey is { } applied)
                {
                    _appliedKeys[applied] = _streamTimeMs;
                    _newKeys.Add(new AppliedKey(applied, _streamTimeMs));
                }
                break;
            case MessageEntry message:
                var target = _activations[message.Target];
                if (message.Id is { } id)
                {
                    target.Received ??= [];
                    if (target.Received.TryGetValue(id.Partition, out var last) && id.CompareTo(last) <= 0)
                    {
                        break; // a replayed duplicate of a message already applied
                    }
                    target.Received[id.Partition] = id;
                    MarkDirty(target);
                }
                Deliver(target, message.Message);
                FireDueWakeups();
                break;
            case TickEntry tick:
                _tickPending = false;
                if (tick.TimeMs > _streamTimeMs)
                {
                    _streamTimeMs = tick.TimeMs;
                }
                FireDueWakeups();
                break;
            case RuleChangeEntry change:
                var offline = InvolvesOfflineRule(_rules, change);
                _rules = Applied(_rules, change);
                _rulesChanged = true;
                var changed = new RuleDefinitionChanged { RuleId = change.RuleId, Rule = change.Rule };
                if (Partitioner.PartitionOf(change.RuleId, _log.Partitions) == _partition)
                {
                    Deliver(_activations[GrainId.Rule(change.RuleId)], changed);
                }
                if (offline)
                {
                    // Silent sensors must learn of an offline rule now, not at their next reading (which may never come).
                    // Every sensor of the partition is active here (loaded before the batch), so the set is the same on replay.
                    foreach (var sensor in _activations.Values.Where(a => a.Id.Type == GrainTypes.Sensor).OrderBy(a => a.Id.Key, StringComparer.Ordinal).ToList())
                    {
                        Deliver(sensor, changed);
                    }
                }
                FireDueWakeups();
                break;
        }
        _nextOffset = record.Offset + 1;
        _recordsSinceCheckpoint++;
    }

    /// <summary>
    /// True when telemetry with this key was applied within the idempotency window (keys are recorded with the stream
    /// time after their entry). The decision depends only on the log and the checkpoint, so a replay and a new owner
    /// decide the same.
    /// </summary>
    private bool AppliedBefore(string key) =>
        _appliedKeys.TryGetValue(key, out var at) && _streamTimeMs - at <= (long)_options.IdempotencyWindow.TotalMilliseconds;

    private static bool InvolvesOfflineRule(RuleCatalog rules, RuleChangeEntry change) =>
        change.Rule?.Condition.Kind == ConditionKind.Offline || rules.Find(change.RuleId)?.Condition.Kind == ConditionKind.Offline;

    private static RuleCatalog Applied(RuleCatalog rules, RuleChangeEntry change) =>
        change.Rule is null ? rules.Without(change.RuleId) : rules.With(change.Rule);

    private void Deliver(Activation activation, GrainMessage message)
    {
        _context.Current = activation;
        activation.LastUsedTicks = _time.GetTimestamp();
        MarkDirty(activation);
        try
        {
            activation.Grain.Receive(message, _context);
        }
        catch (Exception e)
        {
            // A grain defect must not stop the partition; the same record fails the same way on replay.
            LogGrainFailed(_logger, e, activation.Id.ToString(), _partition, _context.Offset);
        }
    }

    private void FireDueWakeups()
    {
        while (_wakeups.Count > 0 && _wakeups.Min.TimeMs <= _streamTimeMs)
        {
            var (timeMs, id) = _wakeups.Min;
            _wakeups.Remove((timeMs, id));
            var activation = _activations[id];
            activation.WakeAtMs = null;
            _context.Current = activation;
            activation.LastUsedTicks = _time.GetTimestamp();
            MarkDirty(activation);
            try
            {
                activation.Grain.Wake(_context);
            }
            catch (Exception e)
            {
                LogGrainFailed(_logger, e, id.ToString(), _partition, _context.Offset);
            }
        }
    }

    private void MarkDirty(Activation activation)
    {
        if (!activation.Dirty)
        {
            activation.Dirty = true;
            _dirty.Add(activation);
        }
    }

    private void SetWakeup(Activation activation, long? timeMs)
    {
        if (activation.WakeAtMs == timeMs)
        {
            return;
        }
        if (activation.WakeAtMs is { } previous)
        {
            _wakeups.Remove((previous, activation.Id));
        }
        if (timeMs <= _streamTimeMs)
        {
            // A time already reached fires when stream time next advances, so a wake-up can never loop.
            timeMs = _streamTimeMs + 1;
        }
        activation.WakeAtMs = timeMs;
        if (timeMs is { } next)
        {
            _wakeups.Add((next, activation.Id));
        }
    }

    /// <summary>
    /// Appends the batch's grain-to-grain messages to their targets' inboxes, then publishes its outputs live. While the
    /// log refuses writes it retries (nothing more is applied meanwhile), like a checkpoint while the store is down.
    /// </summary>
    private async Task FlushOutgoingAsync(CancellationToken cancellationToken)
    {
        while (_outgoing.Count > 0)
        {
            var target = Partitioner.PartitionOf(_outgoing[0].Target.Key, _log.Partitions);
            var group = _outgoing.Where(m => Partitioner.PartitionOf(m.Target.Key, _log.Partitions) == target).ToArray();
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await _log.AppendAsync(target, group, cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (LogUnavailableException e)
                {
                    // Appending a group again after an unconfirmed append is safe: a target skips a message id it already applied.
                    LogAppendFailed(_logger, e, _partition, target, attempt);
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2_000, 100 * attempt)), _time, cancellationToken).ConfigureAwait(false);
                }
            }
            _outgoing.RemoveAll(m => Partitioner.PartitionOf(m.Target.Key, _log.Partitions) == target);
        }
        foreach (var output in _batchOutputs)
        {
            _live.Publish(output);
        }
        _batchOutputs.Clear();
    }

    private async Task AppendTickIfDueAsync(CancellationToken cancellationToken)
    {
        if (!_options.TicksEnabled || _tickPending)
        {
            return;
        }
        long due;
        lock (_gate)
        {
            if (_wakeups.Count == 0)
            {
                return;
            }
            due = _wakeups.Min.TimeMs;
        }
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        if (due <= now && now > _streamTimeMs)
        {
            try
            {
                await _log.AppendAsync(_partition, [new TickEntry(now)], cancellationToken).ConfigureAwait(false);
                _tickPending = true;
            }
            catch (LogUnavailableException e)
            {
                // Tried again when the partition is next idle.
                LogTickFailed(_logger, e, _partition);
            }
        }
    }

    /// <summary>
    /// Takes what the next checkpoint writes: offset, stream time, the dirty grains' serialized states and the outputs
    /// since the last capture. The grains count as clean from here on: the checkpoint holds their state as of now.
    /// </summary>
    private Checkpoint Capture()
    {
        lock (_gate)
        {
            var grains = new GrainRecord[_dirty.Count];
            var outputs = new List<GrainOutput>(_checkpointOutputs.Count + _dirty.Count);
            outputs.AddRange(_checkpointOutputs);
            for (var i = 0; i < grains.Length; i++)
            {
                var a = _dirty[i];
                grains[i] = new GrainRecord(a.Id, _hosting.Serialize(a.Grain), a.WakeAtMs,
                    a.Received is null ? null : new Dictionary<int, MessageId>(a.Received));
                if (a.Grain.Snapshot() is { } snapshot)
                {
                    outputs.Add(snapshot);
                }
                a.Dirty = false;
            }
            // Keys older than the window can no longer match (stream time only grows): forget them here and in the store.
            var forgetBefore = _streamTimeMs - (long)_options.IdempotencyWindow.TotalMilliseconds;
            foreach (var old in _appliedKeys.Where(k => k.Value < forgetBefore).Select(k => k.Key).ToList())
            {
                _appliedKeys.Remove(old);
            }
            var checkpoint = new Checkpoint(_partition, _epoch, _nextOffset, _streamTimeMs,
                _rulesChanged ? _rules.All.ToArray() : null, grains, outputs, _newKeys.ToArray(), forgetBefore);
            _dirty.Clear();
            _checkpointOutputs.Clear();
            _newKeys.Clear();
            _rulesChanged = false;
            _recordsSinceCheckpoint = 0;
            _lastCheckpointTicks = _time.GetTimestamp();
            return checkpoint;
        }
    }

    /// <summary>
    /// Commits a captured checkpoint in one fenced transaction, retrying while the store is down, while the worker goes
    /// on applying the log. Cancelled only by <see cref="_commits"/>: a stop lets the commit in flight finish, since the
    /// final checkpoint's offset counts on it.
    /// </summary>
    private async Task CommitAsync(Checkpoint checkpoint)
    {
        var cancellationToken = _commits.Token;
        for (var attempt = 1; ; attempt++)
        {
            bool committed;
            try
            {
                committed = await _store.CommitAsync(checkpoint, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogCheckpointFailed(_logger, e, _partition, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2_000, 100 * attempt)), _time, cancellationToken).ConfigureAwait(false);
                continue;
            }
            if (!committed)
            {
                LogFenced(_logger, _partition, _epoch);
                throw new PartitionFencedException(_partition, _epoch);
            }
            break;
        }
        Volatile.Write(ref _committedOffset, checkpoint.NextOffset);
    }

    /// <summary>Waits for the commit in flight, if any; throws what it threw (a fenced checkpoint stops the worker).</summary>
    private async Task CompleteCommitAsync()
    {
        if (_commit is { } commit)
        {
            _commit = null;
            await commit.ConfigureAwait(false);
        }
    }

    private void DeactivateIdle()
    {
        lock (_gate)
        {
            List<GrainId>? idle = null;
            foreach (var (id, activation) in _activations)
            {
                if (!activation.Dirty && _time.GetElapsedTime(activation.LastUsedTicks) >= _options.IdleDeactivation)
                {
                    (idle ??= []).Add(id);
                }
            }
            if (idle is not null)
            {
                foreach (var id in idle)
                {
                    _activations.Remove(id);
                    CountActivation(id, -1);
                }
                LogDeactivated(_logger, _partition, idle.Count);
            }
        }
    }

    /// <summary>Reads a grain's live state under the partition's lock; loads it from the checkpoint when not active.</summary>
    public async Task<(bool Found, T? Value)> QueryAsync<T>(GrainId id, Func<IGrain, T> read, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_activations.TryGetValue(id, out var activation))
            {
                return (true, read(activation.Grain));
            }
        }
        var stored = await _store.LoadGrainsAsync(_partition, [id], cancellationToken).ConfigureAwait(false);
        return stored.TryGetValue(id, out var record) ? (true, read(_hosting.Activate(id, record.State))) : (false, default);
    }

    private sealed class Activation(GrainId id, IGrain grain)
    {
        public GrainId Id { get; } = id;
        public IGrain Grain { get; } = grain;
        public bool Dirty { get; set; }
        public long? WakeAtMs { get; set; }
        public Dictionary<int, MessageId>? Received { get; set; }
        public long LastUsedTicks { get; set; }
    }

    /// <summary>Total order of wake-ups: time, then grain type and key (ordinal), identical after every restart.</summary>
    private sealed class WakeupOrder : IComparer<(long TimeMs, GrainId Id)>
    {
        public static readonly WakeupOrder Instance = new();

        public int Compare((long TimeMs, GrainId Id) x, (long TimeMs, GrainId Id) y)
        {
            var c = x.TimeMs.CompareTo(y.TimeMs);
            if (c != 0) return c;
            c = string.CompareOrdinal(x.Id.Type, y.Id.Type);
            return c != 0 ? c : string.CompareOrdinal(x.Id.Key, y.Id.Key);
        }
    }

    /// <summary>The context handed to grains; one per worker, pointed at the activation being run.</summary>
    private sealed class Context(PartitionWorker worker) : IGrainContext
    {
        private int _sequence;

        public long Offset { get; private set; }

        public Activation Current { get; set; } = null!;

        public GrainId Id => Current.Id;

        public long StreamTimeMs => worker._streamTimeMs;

        public RuleCatalog Rules => worker._rules;

        public void BeginRecord(long offset)
        {
            Offset = offset;
            _sequence = 0;
        }

        public void Send(GrainId target, GrainMessage message) =>
            worker._outgoing.Add(new MessageEntry(target, message, new MessageId(worker._partition, Offset, _sequence++)));

        public void Emit(GrainOutput output)
        {
            if (output is AlertEvent { Kind: AlertEventKind.Opened })
            {
                Volatile.Write(ref worker._alertsOpened, worker._alertsOpened + 1);
            }
            worker._checkpointOutputs.Add(output);
            worker._batchOutputs.Add(output);
        }

        public void WakeAt(long? timeMs) => worker.SetWakeup(Current, timeMs);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Partition {Partition} started with epoch {Epoch} at offset {Offset}")]
    private static partial void LogStarted(ILogger logger, int partition, long epoch, long offset);

    [LoggerMessage(Level = LogLevel.Information, Message = "Partition {Partition} (epoch {Epoch}) checkpointed at offset {Offset} and handed over")]
    private static partial void LogHandedOver(ILogger logger, int partition, long epoch, long offset);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partition {Partition}: checkpoint failed (attempt {Attempt}); retrying")]
    private static partial void LogCheckpointFailed(ILogger logger, Exception exception, int partition, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partition {Partition}: appending messages to partition {Target} failed (attempt {Attempt}); retrying")]
    private static partial void LogAppendFailed(ILogger logger, Exception exception, int partition, int target, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partition {Partition}: appending a tick failed; trying again when idle")]
    private static partial void LogTickFailed(ILogger logger, Exception exception, int partition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Partition {Partition}: checkpoint with epoch {Epoch} fenced off; dropping activations")]
    private static partial void LogFenced(ILogger logger, int partition, long epoch);

    [LoggerMessage(Level = LogLevel.Information, Message = "Partition {Partition}: telemetry at offset {Offset} repeats idempotency key {Key}; skipped")]
    private static partial void LogDuplicateSkipped(ILogger logger, int partition, long offset, string key);

    [LoggerMessage(Level = LogLevel.Error, Message = "Grain {Grain} failed on partition {Partition} at offset {Offset}")]
    private static partial void LogGrainFailed(ILogger logger, Exception exception, string grain, int partition, long offset);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Partition {Partition}: deactivated {Count} idle grains")]
    private static partial void LogDeactivated(ILogger logger, int partition, int count);
}
