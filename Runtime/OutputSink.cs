using Grains.Abstractions;

namespace Runtime;

/// <summary>
/// The silo's <see cref="IOutputSink"/>: publishes outputs live at once, and writes the outputs of every grain that
/// flushes at about the same time in one read-model transaction (a group commit): while one write runs, the next
/// collects, and each caller's task completes when the write holding its outputs is durable (or fails with it).
/// </summary>
public sealed class OutputSink(ILiveEvents live, IReadModelWriter writer) : IOutputSink
{
    private readonly Lock _gate = new();
    private List<GrainOutput> _pending = [];
    private TaskCompletionSource? _waiters;
    private Task _current = Task.CompletedTask;
    private bool _writing;

    public void Publish(GrainOutput output) => live.Publish(output);

    public Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        if (outputs.Count == 0)
        {
            return Task.CompletedTask;
        }

        lock (_gate)
        {
            _pending.AddRange(outputs);
            _waiters ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var written = _waiters.Task;
            if (!_writing)
            {
                _writing = true;
                _ = Task.Run(WriteLoopAsync, CancellationToken.None);
            }

            return written.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Completes when every output handed to <see cref="WriteAsync"/> before this call is written or its write failed
    /// (never throws). A partition's checkpoint waits for it before it flushes sensors: a sensor's flush waits for its own
    /// outputs to be written, and while it waits the sensor takes no readings, so flushing in the middle of a large write
    /// (a fleet closing its minutes at once) would hold up the partition's reader behind it.
    /// </summary>
    public Task WrittenAsync()
    {
        lock (_gate)
        {
            var last = _waiters?.Task ?? _current;
            return last.IsCompleted ? Task.CompletedTask : last.ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    private async Task WriteLoopAsync()
    {
        while (true)
        {
            List<GrainOutput> batch;
            TaskCompletionSource waiters;
            lock (_gate)
            {
                if (_waiters is null)
                {
                    _writing = false;
                    return;
                }

                batch = _pending;
                waiters = _waiters;
                _current = waiters.Task;
                _pending = [];
                _waiters = null;
            }

            try
            {
                await writer.WriteAsync(batch, CancellationToken.None).ConfigureAwait(false);
                waiters.TrySetResult();
            }
            catch (Exception e)
            {
                waiters.TrySetException(e);
            }
        }
    }
}
