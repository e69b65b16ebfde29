namespace Grains.Abstractions;

/// <summary>
/// A grain is pure logic over its state: it reacts to messages and wake-ups by changing its state,
/// sending messages to other grains and emitting outputs through the context. It never does I/O,
/// never reads a clock (time is <see cref="IGrainContext.StreamTimeMs"/>) and holds no static state,
/// so replaying the same log from the same checkpoint makes the same decisions.
/// </summary>
public interface IGrain
{
    /// <summary>Handles one message addressed to this grain.</summary>
    void Receive(GrainMessage message, IGrainContext context);

    /// <summary>Called when stream time reaches the time last requested with <see cref="IGrainContext.WakeAt"/>.</summary>
    void Wake(IGrainContext context);

    /// <summary>The state to persist in the next checkpoint.</summary>
    object State { get; }

    /// <summary>A read-model record describing the grain, written with its state at each checkpoint (null: none).</summary>
    GrainOutput? Snapshot();
}

/// <summary>What the runtime offers a grain while it handles a message or a wake-up.</summary>
public interface IGrainContext
{
    GrainId Id { get; }

    /// <summary>Stream time of the partition in epoch milliseconds: the greatest event time seen, advanced by ticks.</summary>
    long StreamTimeMs { get; }

    /// <summary>The rule definitions, as of this point of the partition's log.</summary>
    RuleCatalog Rules { get; }

    /// <summary>Sends a message to another grain through that grain's inbox, with a deterministic message id.</summary>
    void Send(GrainId target, GrainMessage message);

    /// <summary>Emits an output (aggregate, alert, command): published live and written with the next checkpoint.</summary>
    void Emit(GrainOutput output);

    /// <summary>Asks to be woken when stream time reaches <paramref name="timeMs"/>; replaces any earlier request. Null cancels.</summary>
    void WakeAt(long? timeMs);
}
