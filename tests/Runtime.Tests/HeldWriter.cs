using Grains.Abstractions;

namespace Runtime.Tests;

/// <summary>
/// A read-model writer that holds every write from <see cref="Hold"/> until <see cref="Release"/> (slow read models: a
/// fleet's minute close being written, say), counting the writes it held.
/// </summary>
internal sealed class HeldWriter(IReadModelWriter inner) : IReadModelWriter
{
    private volatile TaskCompletionSource? _gate;
    private int _held;

    /// <summary>Writes that waited for a release so far.</summary>
    public int Held => Volatile.Read(ref _held);

    public void Hold() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Lets the held writes through; later ones pass until the next <see cref="Hold"/>.</summary>
    public void Release() => Interlocked.Exchange(ref _gate, null)?.TrySetResult();

    public async Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken)
    {
        if (_gate is { } gate)
        {
            Interlocked.Increment(ref _held);
            await gate.Task.WaitAsync(cancellationToken);
        }

        await inner.WriteAsync(outputs, cancellationToken);
    }
}
