namespace Grains;

/// <summary>
/// Coalesces the commits of a reentrant grain: a caller that changed the state awaits <see cref="RunAsync"/>, which
/// completes after a commit that started after the call. While one commit runs, every caller that arrives waits for the
/// next one, which then covers all of them. A failed commit fails every caller that waited for it and every later one:
/// the memory it could not store holds effects whose outputs went with the failed write, so no later commit may store
/// it (the grain drops its activation and the callers send again to the next).
/// </summary>
internal sealed class GroupCommit(Func<Task> commit)
{
    private bool _running;
    private TaskCompletionSource? _next;
    private Exception? _failed;

    public Task RunAsync()
    {
        if (_failed is not null)
        {
            return Task.FromException(_failed);
        }

        _next ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var waiters = _next.Task;
        if (!_running)
        {
            _running = true;
            _ = RunLoopAsync();
        }

        return waiters;
    }

    private async Task RunLoopAsync()
    {
        while (_next is { } waiters)
        {
            _next = null;
            if (_failed is not null)
            {
                waiters.TrySetException(_failed);
                continue;
            }

            try
            {
                await commit();
                waiters.TrySetResult();
            }
            catch (Exception e)
            {
                _failed = e;
                waiters.TrySetException(e);
            }
        }

        _running = false;
    }
}
