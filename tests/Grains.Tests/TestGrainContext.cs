using Grains.Abstractions;

namespace Grains.Tests;

/// <summary>Records what a grain does: messages sent, outputs emitted and the last wake-up requested.</summary>
internal sealed class TestGrainContext(GrainId id) : IGrainContext
{
    public GrainId Id { get; } = id;

    public long StreamTimeMs { get; set; }

    public RuleCatalog Rules { get; set; } = RuleCatalog.Empty;

    public List<(GrainId Target, GrainMessage Message)> Sent { get; } = [];

    public List<GrainOutput> Emitted { get; } = [];

    /// <summary>The last time passed to WakeAt (null: cancelled or never asked).</summary>
    public long? WakeAtMs { get; private set; }

    public int WakeAtCalls { get; private set; }

    public void Send(GrainId target, GrainMessage message) => Sent.Add((target, message));

    public void Emit(GrainOutput output) => Emitted.Add(output);

    public void WakeAt(long? timeMs)
    {
        WakeAtMs = timeMs;
        WakeAtCalls++;
    }

    public void ClearRecorded()
    {
        Sent.Clear();
        Emitted.Clear();
    }
}
