using System.Runtime.ExceptionServices;
using Grains.Abstractions;

namespace Runtime.Partitions;

/// <summary>
/// What <see cref="Task.WhenAll(Task[])"/> does for a window of sensor calls, without a task per call: each call's
/// answer is Orleans' pooled response (a <see cref="ValueTask{TResult}"/>), which counts itself off as it arrives, and the
/// last one completes the one task the reader awaits. With a large fleet nearly every reading is one call.
/// </summary>
internal sealed class WindowAnswers
{
    private readonly Action _answered;
    private TaskCompletionSource _all = null!;
    private int _pending;

    public WindowAnswers() => _answered = Answered;

    /// <summary>Completes when the first <paramref name="count"/> calls have answered; their results are then read once each.</summary>
    public Task AllAsync(ValueTask<SensorProgress>[] window, int count)
    {
        _all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending = count + 1; // one more, counted off below, so that answers arriving meanwhile cannot complete it early
        for (var i = 0; i < count; i++)
        {
            var answer = window[i].ConfigureAwait(false).GetAwaiter();
            if (answer.IsCompleted)
            {
                Interlocked.Decrement(ref _pending);
            }
            else
            {
                answer.UnsafeOnCompleted(_answered);
            }
        }

        Answered();
        return _all.Task;
    }

    /// <summary>
    /// Reads the first <paramref name="count"/> answers of a window that <see cref="AllAsync"/> saw complete, each once (the
    /// pooled answer then goes back to Orleans), into <paramref name="progress"/>, and clears their slots. When calls failed,
    /// throws after reading them all the failure <see cref="Task.WhenAll(Task[])"/> would: the first fault, else the first
    /// cancellation.
    /// </summary>
    public static void Read(ValueTask<SensorProgress>[] window, int count, SensorProgress[] progress)
    {
        ExceptionDispatchInfo? failed = null;
        for (var i = 0; i < count; i++)
        {
            try
            {
                progress[i] = window[i].Result;
            }
            catch (Exception e) when (failed is null || (failed.SourceException is OperationCanceledException && e is not OperationCanceledException))
            {
                failed = ExceptionDispatchInfo.Capture(e);
            }
            catch (Exception)
            {
                // a later failure of the same window: the one chosen above is thrown
            }

            window[i] = default;
        }

        failed?.Throw();
    }

    private void Answered()
    {
        if (Interlocked.Decrement(ref _pending) == 0)
        {
            _all.TrySetResult();
        }
    }
}
