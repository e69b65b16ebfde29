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
