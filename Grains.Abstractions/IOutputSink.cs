namespace Grains.Abstractions;

/// <summary>
/// Where grains put their outputs: live to every Api node at once, and durably into the read models (minute aggregates,
/// sensors, alerts, commands) by idempotent upserts keyed by the outputs' deterministic ids. A grain writes its outputs
/// before the state that records them as emitted, so a crash in between repeats them, never loses them.
/// </summary>
public interface IOutputSink
{
    /// <summary>Publishes an output to live subscribers (SignalR clients). At least once: a replay publishes the same ids again.</summary>
    void Publish(GrainOutput output);

    /// <summary>Writes outputs to the read models; completes when they are durable.</summary>
    Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken);
}
