using Grains.Abstractions;

namespace Runtime;

/// <summary>How the runtime creates grains from stored state and serializes their state for checkpoints.</summary>
public sealed class GrainHosting(Func<GrainId, byte[]?, IGrain> activate, Func<IGrain, byte[]> serialize)
{
    public IGrain Activate(GrainId id, byte[]? state) => activate(id, state);

    public byte[] Serialize(IGrain grain) => serialize(grain);
}
