using System.Threading.Tasks.Sources;
using Grains.Abstractions;
using Runtime.Partitions;

namespace Runtime.Tests;

/// <summary>
/// The partition reader waits for a window of sensor calls as <see cref="Task.WhenAll(Task[])"/> would, but on the calls'
/// pooled answers (<see cref="ValueTask{TResult}"/>): it goes on only when every call has answered, whether an answer
/// was there at once, arrives later or is a failure, and each answer is then read once.
/// </summary>
public sealed class WindowAnswersTests
{
    private static SensorProgress At(long position) => new(position, null, 0, 0, null, null, null);

    [Fact]
    public async Task Completes_only_when_the_last_answer_arrives_and_every_answer_is_read_once()
    {
        var pending = new Answer[] { new(), new(), new() };
        var window = new ValueTask<SensorProgress>[8];
        window[0] = new ValueTask<SensorProgress>(At(1)); // answered at once
        window[1] = pending[0].Task;
        window[2] = new ValueTask<SensorProgress>(Task.FromResult(At(3)));
        window[3] = pending[1].Task;
        window[4] = pending[2].Task;
        window[5] = new ValueTask<SensorProgress>(At(99)); // beyond the count: not waited for

        var all = new WindowAnswers().AllAsync(window, 5);
        pending[1].Complete(At(4));
        pending[0].Complete(At(2));
        Assert.False(all.IsCompleted);

        pending[2].Complete(At(5));
        await all.WaitAsync(TimeSpan.FromSeconds(10));
        var positions = new List<long>();
        foreach (var answer in window[..5])
        {
            positions.Add((await answer).AppliedPosition);
        }

        Assert.Equal([1L, 2, 3, 4, 5], positions);
        Assert.All(pending, answer => Assert.Equal(1, answer.Reads));
    }

    [Fact]
    public async Task Completes_at_once_when_every_answer_is_there_and_again_for_the_next_window()
    {
        var answers = new WindowAnswers();
        var window = new[] { new ValueTask<SensorProgress>(At(1)), new ValueTask<SensorProgress>(At(2)) };
        Assert.True(answers.AllAsync(window, 2).IsCompleted);

        var late = new Answer();
        window[0] = late.Task;
        var next = answers.AllAsync(window, 1);
        Assert.False(next.IsCompleted);
        late.Complete(At(7));
        await next.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(7, (await window[0]).AppliedPosition);
    }

    [Fact]
    public async Task A_failed_call_counts_as_answered_and_its_failure_is_thrown_where_its_answer_is_read()
    {
        var failing = new Answer();
        var waiting = new Answer();
        var window = new[] { failing.Task, waiting.Task };

        var all = new WindowAnswers().AllAsync(window, 2);
        failing.Fail(new InvalidOperationException("sensor s refused the work"));
        Assert.False(all.IsCompleted);
        waiting.Complete(At(2));
        await all.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal("sensor s refused the work", (await Assert.ThrowsAsync<InvalidOperationException>(async () => await window[0])).Message);
        Assert.Equal(2, (await window[1]).AppliedPosition);
    }

    /// <summary>An answer as Orleans gives one: a value task source that completes later, read once.</summary>
    private sealed class Answer : IValueTaskSource<SensorProgress>
    {
        private ManualResetValueTaskSourceCore<SensorProgress> _core;

        public int Reads { get; private set; }

        public ValueTask<SensorProgress> Task => new(this, _core.Version);

        public void Complete(SensorProgress progress) => _core.SetResult(progress);

        public void Fail(Exception e) => _core.SetException(e);

        public SensorProgress GetResult(short token)
        {
            Reads++;
            return _core.GetResult(token);
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
