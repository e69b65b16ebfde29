using Grains.Abstractions;

namespace Grains.Tests;

/// <summary>Records what the grain logic does besides changing its state: outputs emitted and condition signals sent.</summary>
internal sealed class TestEffects : IGrainEffects
{
    public List<GrainOutput> Emitted { get; } = [];

    public List<ConditionSignal> Sent { get; } = [];

    public void Emit(GrainOutput output) => Emitted.Add(output);

    public void Send(ConditionSignal signal) => Sent.Add(signal);

    public void Clear()
    {
        Emitted.Clear();
        Sent.Clear();
    }
}
