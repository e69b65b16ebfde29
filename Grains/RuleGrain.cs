using Grains.Abstractions;
using Orleans.Concurrency;
using Orleans.Placement;

namespace Grains;

/// <summary>
/// The Orleans grain of one alert rule: a thin shell around <see cref="RuleLogic"/>. Every call applies its change at
/// once (alert events are published live), then waits for a commit that writes the outputs to the read models and then the
/// state; calls that arrive while a commit runs share the next one, so a storm of signals from many sensors costs a few
/// writes. Device commands are published live only once written: a device told of a command finds it among its pending
/// ones (MQTT marks it delivered by its id when the device acknowledges it). When a commit fails, the activation deactivates without writing again and every caller fails from then on:
/// sensors resend what they sent, the next activation reloads the stored state.
/// </summary>
[GrainType("rule"), Reentrant, Immovable]
public sealed class RuleGrain : Grain, IRuleGrain, IGrainEffects
{
    private readonly IPersistentState<RuleState> _storage;
    private readonly IOutputSink _outputs;
    private readonly List<GrainOutput> _unwritten = [];
    private readonly GroupCommit _commit;
    private RuleLogic _logic = null!;
    private bool _broken;

    public RuleGrain([PersistentState("rule", GrainStorage.Name)] IPersistentState<RuleState> storage, IOutputSink outputs)
    {
        _storage = storage;
        _outputs = outputs;
        _commit = new GroupCommit(PersistAsync);
    }

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _logic = new RuleLogic(this.GetPrimaryKeyString(), _storage.RecordExists ? _storage.State : null);
        return Task.CompletedTask;
    }

    public async Task<long?> ReceiveAsync(SensorSignals signals)
    {
        ThrowIfBroken();
        var due = _logic.Receive(signals, this);
        await _commit.RunAsync();
        return due;
    }

    public async Task DefineAsync(RuleDefinitionChange change)
    {
        ThrowIfBroken();
        _logic.Define(change, this);
        await _commit.RunAsync();
    }

    public async Task<AcknowledgeResult> AcknowledgeAsync(AcknowledgeAlert ack)
    {
        ThrowIfBroken();
        var result = _logic.Acknowledge(ack, this);
        if (result.Outcome == AcknowledgeOutcome.Acknowledged)
        {
            await _commit.RunAsync();
        }

        return result;
    }

    void IGrainEffects.Emit(GrainOutput output)
    {
        _unwritten.Add(output);
        if (output is not DeviceCommand)
        {
            _outputs.Publish(output);
        }
    }

    void IGrainEffects.Send(ConditionSignal signal) =>
        throw new InvalidOperationException("A rule grain sends no signals.");

    /// <summary>
    /// Writes the outputs not yet written (again while calls interleaved during the write added more), then a copy of the
    /// state taken in the same turn: the state never records an output that is not written. Not the live state: calls
    /// interleave while it is written (a storage may serialize it after an await), and what they change is stored only
    /// with their own outputs, by the next commit.
    /// </summary>
    private async Task PersistAsync()
    {
        try
        {
            while (_unwritten.Count > 0)
            {
                var outputs = _unwritten.ToArray();
                _unwritten.Clear();
                await _outputs.WriteAsync(outputs, CancellationToken.None);
                foreach (var command in outputs.OfType<DeviceCommand>())
                {
                    _outputs.Publish(command);
                }
            }

            _storage.State = _logic.Current.Copy();
            await _storage.WriteStateAsync();
        }
        catch
        {
            _broken = true;
            DeactivateOnIdle();
            throw;
        }
    }

    private void ThrowIfBroken()
    {
        if (_broken)
        {
            throw new InvalidOperationException($"Rule grain {this.GetPrimaryKeyString()} lost its state after a failure and is reloading; try again.");
        }
    }
}
