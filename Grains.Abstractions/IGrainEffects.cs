namespace Grains.Abstractions;

/// <summary>
/// What the pure grain logic (<c>SensorLogic</c>, <c>RuleLogic</c>) can do besides changing its own state: emit outputs
/// for the outside world and send condition signals to rule grains. The Orleans grain classes implement it: they publish
/// outputs live at once, write them to the read models before the state that records them, and deliver signals by grain
/// calls. The logic never does I/O, never reads a clock and holds no static state.
/// </summary>
public interface IGrainEffects
{
    /// <summary>Emits an output (aggregate, alert, command) with a deterministic id.</summary>
    void Emit(GrainOutput output);

    /// <summary>Sends a condition signal to the rule grain of <see cref="ConditionSignal.RuleId"/>.</summary>
    void Send(ConditionSignal signal);
}
