using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Serialization;
using Orleans.Storage;

namespace Grains;

/// <summary>
/// The Orleans grain of one sensor: a thin shell around <see cref="SensorLogic"/>. It applies what its partition's reader
/// delivers, publishes outputs at once, tells rule grains of its signals before answering (they are durable then), and
/// on <see cref="FlushAsync"/> (or deactivation) writes its outputs to the read models and then its state. A flush takes
/// a copy of the state in its turn and writes outside it (<see cref="StoredAsync"/> waits for the write): while the read
/// models take a fleet's minute close, readings for the sensor, and the partition batch holding them, do not wait. When a
/// signal or a write fails, the activation's memory is no longer trusted: it deactivates without writing, and the next
/// call reloads the stored state (the reader then replays what the lost memory held).
/// The grain reads and writes its state through the storage provider itself, not through Orleans' <c>IPersistentState</c>:
/// that runs every write in a turn of its own on the activation (a queued operation and a continuation forced to yield),
/// and with a fleet writing thousands of states a second those turns lengthened every young collection of the silo
/// (BENCHMARKS.md, the section of 2026-12-02 04:10). The grain orders its writes itself (<see cref="_writing"/>).
/// </summary>
[GrainType("sensor"), PartitionPlacement, Immovable]
public sealed partial class SensorGrain(
    [FromKeyedServices(GrainStorage.Name)] IGrainStorage storage,
    IOptions<SensorGrainOptions> options,
    SensorNameTable names,
    IOutputSink outputs,
    GrainReferences references,
    DeepCopier<SensorState> copier,
    ILogger<SensorGrain> logger) : Grain, ISensorGrain, IGrainEffects
{
    /// <summary>Rounds of telling rule grains the time in one call (a rule that answers with a time already reached is told again).</summary>
    private const int MaxRuleRounds = 4;

    /// <summary>The name of the sensor's state in the grain storage.</summary>
    private const string StateName = "sensor";

    /// <summary>The stored state's ETag and whether it exists, as of the last read or write; its state is the one read or being written.</summary>
    private readonly GrainState<SensorState> _stored = new();

    private readonly List<GrainOutput> _unwritten = [];
    private readonly List<ConditionSignal> _signals = [];

    /// <summary>
    /// The writes of this activation, one after another: outputs of earlier calls (minutes closed, say), visible in the read
    /// models before the next flush, and the flushes (outputs, then state).
    /// </summary>
    private Task _writing = Task.CompletedTask;

    /// <summary>The last flush started; <see cref="_storedPosition"/> is what it stored once it has completed.</summary>
    private Task _flushing = Task.CompletedTask;
    private SensorLogic _logic = null!;
    private long _storedPosition = -1;
    private bool _dirty;
    private bool _broken;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await ReadAsync(cancellationToken);
        Load();
    }

    private void Load()
    {
        _logic = new SensorLogic(this.GetPrimaryKeyString(), _stored.RecordExists ? _stored.State : null, options.Value, names);
        _stored.State = _logic.State;
        _storedPosition = _logic.AppliedPosition;
    }

    /// <summary>Reads the stored state again (the activation holds nothing unstored).</summary>
    private async Task ReloadAsync()
    {
        var before = _logic.AppliedPosition;
        await ReadAsync(CancellationToken.None);
        Load();
        LogReloaded(logger, this.GetPrimaryKeyString(), before, _logic.AppliedPosition);
    }

    private async Task ReadAsync(CancellationToken cancellationToken)
    {
        try
        {
            await storage.ReadStateAsync(StateName, this.GetGrainId(), _stored, cancellationToken);
        }
        catch (Exception e) when (Unexpected(e, cancellationToken))
        {
            throw StorageFailed("reading", e);
        }
    }

    private async Task WriteAsync(CancellationToken cancellationToken)
    {
        try
        {
            await storage.WriteStateAsync(StateName, this.GetGrainId(), _stored, cancellationToken);
        }
        catch (Exception e) when (Unexpected(e, cancellationToken))
        {
            throw StorageFailed("writing", e);
        }
    }

    /// <summary>As Orleans' <c>IPersistentState</c>: Orleans' own failures and the cancellation asked for pass as they are.</summary>
    private static bool Unexpected(Exception e, CancellationToken cancellationToken) =>
        e is not OrleansException && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested);

    /// <summary>A storage provider's own failure, as an <see cref="OrleansException"/> as Orleans' <c>IPersistentState</c> wraps it (callers treat it as transient).</summary>
    private OrleansException StorageFailed(string operation, Exception e) =>
        new($"Sensor {this.GetPrimaryKeyString()}: {operation} its state in the grain storage failed: {e.Message}", e);

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (!_broken)
        {
            try
            {
                if (_dirty)
                {
                    StartFlush(cancellationToken);
                }

                await _flushing;
            }
            catch (Exception e)
            {
                // The partition's reader finds the offset not stored at its next checkpoint and replays it.
                LogDeactivationWriteFailed(logger, e, this.GetPrimaryKeyString());
            }
        }
    }

    public async ValueTask<SensorProgress> ApplyAsync(SensorWork work)
    {
        ThrowIfBroken();
        if (work.AppliedAtLeast > _logic.AppliedPosition && !_dirty)
        {
            // This activation may have read its state before an earlier activation's last write landed: Orleans stops
            // waiting for a deactivation after its timeout, and a write already sent goes through after the next activation
            // read. The stored state is read again; without it, this activation would refuse every replay for good. A flush
            // of this activation still writing lands first.
            await _flushing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
            ThrowIfBroken();
            await ReloadAsync();
        }

        if (work.AppliedAtLeast > _logic.AppliedPosition)
        {
            // An earlier activation applied more and stopped without storing it: applying this work would skip the
            // readings in between for good. Refused; the partition replays from its stored position.
            throw new InvalidOperationException($"Sensor {this.GetPrimaryKeyString()} has applied log position {_logic.AppliedPosition} "
                + $"(offset {LogPosition.OffsetOf(_logic.AppliedPosition)}) but reported {work.AppliedAtLeast} "
                + $"(offset {LogPosition.OffsetOf(work.AppliedAtLeast)}) to its partition: what it applied since was lost; replay needed.");
        }

        try
        {
            _logic.Outside = work.Outside ?? OutsideConditions.Empty;
            foreach (var item in work.Items)
            {
                _dirty |= _logic.Apply(item, work.Rules, this);
            }

            _logic.Advance(work.ReceivedUpToMs, work.Rules, this);
            await TellRulesAsync();
        }
        catch (Exception e)
        {
            Break(e);
            throw;
        }

        if (_unwritten.Count > 0)
        {
            // Written now, not awaited: the state that records them is written after them, at the flush.
            var outputsOfThisCall = _unwritten.ToArray();
            _unwritten.Clear();
            var previous = _writing;
            _writing = WriteAfterAsync(previous, outputsOfThisCall);
        }

        return new SensorProgress(_logic.AppliedPosition, _logic.WakeAtReceivedMs(), _logic.ClockMs, _logic.ClockReceivedAtMs,
            _logic.LastSeenMs, _logic.Metadata?.Location, _logic.Metadata?.Model);
    }

    public Task<long> FlushAsync()
    {
        ThrowIfBroken();
        if (_dirty)
        {
            StartFlush(CancellationToken.None);
        }

        return Task.FromResult(_logic.AppliedPosition);
    }

    public async Task<long> StoredAsync()
    {
        ThrowIfBroken();
        await _flushing;
        return _storedPosition;
    }

    public Task<NameAdmission> AdmitNamesAsync(string[] metrics, string[] attributes)
    {
        ThrowIfBroken();
        var admission = _logic.Admit(metrics, attributes);
        _dirty |= admission.Changed; // stored with the next flush, or when the grain deactivates
        return Task.FromResult(admission);
    }

    public Task<SensorView?> GetViewAsync() => Task.FromResult(_logic.Known ? _logic.View() : null);

    void IGrainEffects.Emit(GrainOutput output)
    {
        _dirty = true;
        _unwritten.Add(output);
        outputs.Publish(output);
    }

    void IGrainEffects.Send(ConditionSignal signal)
    {
        _dirty = true;
        _signals.Add(signal);
    }

    /// <summary>
    /// Delivers the signals of this call to their rule grains (each rule's in order, with this sensor's time for it), and
    /// tells the time to the rules that asked for it; records when each rule wants to hear from the sensor next.
    /// </summary>
    private async Task TellRulesAsync()
    {
        for (var round = 0; round < MaxRuleRounds; round++)
        {
            var due = _logic.RulesDue();
            if (_signals.Count == 0 && due.Count == 0)
            {
                return;
            }

            var ruleIds = new List<string>();
            foreach (var signal in _signals)
            {
                if (!ruleIds.Contains(signal.RuleId))
                {
                    ruleIds.Add(signal.RuleId);
                }
            }

            foreach (var (ruleId, _) in due)
            {
                if (!ruleIds.Contains(ruleId))
                {
                    ruleIds.Add(ruleId);
                }
            }

            var sensorId = this.GetPrimaryKeyString();
            var calls = new Task<long?>[ruleIds.Count];
            for (var i = 0; i < ruleIds.Count; i++)
            {
                var ruleId = ruleIds[i];
                var signals = _signals.Where(s => string.Equals(s.RuleId, ruleId, StringComparison.Ordinal)).ToArray();
                calls[i] = references.Get<IRuleGrain>(ruleId).ReceiveAsync(new SensorSignals(sensorId, signals, _logic.RuleTimeMs(ruleId)));
            }

            _signals.Clear();
            await Task.WhenAll(calls);
            for (var i = 0; i < ruleIds.Count; i++)
            {
                _logic.SetRuleDue(ruleIds[i], calls[i].Result);
            }

            _dirty = true;
        }
    }

    private async Task WriteAfterAsync(Task previous, GrainOutput[] written)
    {
        await previous;
        await outputs.WriteAsync(written, CancellationToken.None);
    }

    /// <summary>
    /// Takes the outputs not yet written, the sensor's summary and a copy of the state as they are now, and writes them
    /// after the writes before: the outputs, then the state that records them. Calls after this one change the activation's
    /// state, not the copy being written.
    /// </summary>
    private void StartFlush(CancellationToken cancellationToken)
    {
        var written = new List<GrainOutput>(_unwritten.Count + 1);
        written.AddRange(_unwritten);
        if (_logic.Known)
        {
            // Not for a sensor that only had names admitted; for one registered by an operator before its first reading.
            written.Add(_logic.Snapshot());
        }

        _unwritten.Clear();
        _dirty = false;
        _flushing = _writing = FlushAfterAsync(_writing, written, copier.Copy(_logic.State), _logic.AppliedPosition, cancellationToken);
    }

    private async Task FlushAfterAsync(Task previous, List<GrainOutput> written, SensorState state, long position,
        CancellationToken cancellationToken)
    {
        try
        {
            await previous;
            await outputs.WriteAsync(written, cancellationToken);
            // On deactivation: not once Orleans has stopped waiting (the next activation may have read the state already).
            cancellationToken.ThrowIfCancellationRequested();
            _stored.State = state;
            await WriteAsync(cancellationToken);
        }
        catch (Exception e)
        {
            Break(e);
            throw;
        }
        finally
        {
            _stored.State = _logic.State; // the copy is not kept
        }

        _storedPosition = position;
    }

    private void Break(Exception reason)
    {
        LogBroken(logger, reason, this.GetPrimaryKeyString(), _storedPosition);
        _broken = true;
        DeactivateOnIdle();
    }

    private void ThrowIfBroken()
    {
        if (_broken)
        {
            throw new InvalidOperationException($"Sensor grain {this.GetPrimaryKeyString()} lost its state after a failure and is reloading; try again.");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {SensorId}: a call failed; the activation drops what it did not store (stored position {StoredPosition}) and reloads")]
    private static partial void LogBroken(ILogger logger, Exception exception, string sensorId, long storedPosition);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {SensorId}: its partition reported more applied than this activation read; the stored state read again went from log position {Before} to {After}")]
    private static partial void LogReloaded(ILogger logger, string sensorId, long before, long after);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sensor {SensorId}: writing its state on deactivation failed; its partition replays it")]
    private static partial void LogDeactivationWriteFailed(ILogger logger, Exception exception, string sensorId);
}
