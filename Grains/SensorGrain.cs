using Grains.Abstractions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;

namespace Grains;

/// <summary>
/// The Orleans grain of one sensor: a thin shell around <see cref="SensorLogic"/>. It applies what its partition's reader
/// delivers, publishes outputs at once, tells rule grains of its signals before answering (they are durable then), and
/// on <see cref="FlushAsync"/> (or deactivation) writes its outputs to the read models and then its state. When a signal
/// or a write fails, the activation's memory is no longer trusted: it deactivates without writing, and the next call
/// reloads the stored state (the reader then replays what the lost memory held).
/// </summary>
[GrainType("sensor"), PartitionPlacement, Immovable]
public sealed partial class SensorGrain(
    [PersistentState("sensor", GrainStorage.Name)] IPersistentState<SensorState> storage,
    IOptions<SensorGrainOptions> options,
    SensorNameTable names,
    IOutputSink outputs,
    GrainReferences references,
    ILogger<SensorGrain> logger) : Grain, ISensorGrain, IGrainEffects
{
    /// <summary>Rounds of telling rule grains the time in one call (a rule that answers with a time already reached is told again).</summary>
    private const int MaxRuleRounds = 4;

    private readonly List<GrainOutput> _unwritten = [];
    private readonly List<ConditionSignal> _signals = [];

    /// <summary>Outputs of earlier calls being written (minutes closed, say): visible in the read models before the next flush.</summary>
    private Task _writing = Task.CompletedTask;
    private SensorLogic _logic = null!;
    private long _storedPosition = -1;
    private bool _dirty;
    private bool _broken;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Load();
        return Task.CompletedTask;
    }

    private void Load()
    {
        _logic = new SensorLogic(this.GetPrimaryKeyString(), storage.RecordExists ? storage.State : null, options.Value, names);
        _storedPosition = _logic.AppliedPosition;
    }

    /// <summary>Reads the stored state again (the activation holds nothing unstored).</summary>
    private async Task ReloadAsync()
    {
        var before = _logic.AppliedPosition;
        await storage.ReadStateAsync();
        Load();
        LogReloaded(logger, this.GetPrimaryKeyString(), before, _logic.AppliedPosition);
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_dirty && !_broken)
        {
            try
            {
                await PersistAsync(cancellationToken);
            }
            catch (Exception e)
            {
                // The partition's reader finds the offset not stored at its next checkpoint and replays it.
                LogDeactivationWriteFailed(logger, e, this.GetPrimaryKeyString());
            }
        }
    }

    public async Task<SensorProgress> ApplyAsync(SensorWork work)
    {
        ThrowIfBroken();
        if (work.AppliedAtLeast > _logic.AppliedPosition && !_dirty)
        {
            // This activation may have read its state before an earlier activation's last write landed: Orleans stops
            // waiting for a deactivation after its timeout, and a write already sent goes through after the next activation
            // read. The stored state is read again; without it, this activation would refuse every replay for good.
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

    public async Task<long> FlushAsync()
    {
        ThrowIfBroken();
        if (_dirty)
        {
            await PersistAsync(CancellationToken.None);
        }

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

    /// <summary>Writes the outputs not yet written and the sensor's summary, then the state that records them.</summary>
    private async Task PersistAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _writing;
            if (_logic.Known)
            {
                // Not for a sensor that only had names admitted; for one registered by an operator before its first reading.
                _unwritten.Add(_logic.Snapshot());
            }
            await outputs.WriteAsync(_unwritten, cancellationToken);
            // On deactivation: not once Orleans has stopped waiting (the next activation may have read the state already).
            cancellationToken.ThrowIfCancellationRequested();
            storage.State = _logic.State;
            await storage.WriteStateAsync(cancellationToken);
        }
        catch (Exception e)
        {
            Break(e);
            throw;
        }

        _unwritten.Clear();
        _storedPosition = _logic.AppliedPosition;
        _dirty = false;
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
