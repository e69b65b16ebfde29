namespace Grains;

/// <summary>
/// Coalesces the commits of a reentrant grain: a caller that changed the state awaits <see cref="RunAsync"/>, which
/// completes after a commit that started after the call. While one commit runs, every caller that arrives waits for the
/// next one, which then covers all of them. A failed commit fails every caller that waited for it.
/// </summary>
internal sealed class GroupCommit(Func<Task> commit)
{
    private bool _running;
    private TaskCompletionSource? _next;

    public Task RunAsync()
    {
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
            try
            {
                await commit();
                waiters.TrySetResult();
            }
            catch (Exception e)
            {
                waiters.TrySetException(e);
            }
        }

        _running = false;
    }
}
