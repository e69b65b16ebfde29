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
        window[5] = new Answer().Task; // beyond the count: never answers, and is not waited for

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
        Assert.All(pending, answer => Assert.Equal(1, answer.Reads)); // the wait itself reads no answer: the reader does, once
    }

    [Fact]
    public async Task Answers_arriving_on_other_threads_while_the_wait_is_set_up_are_each_counted_once()
    {
        var answers = new WindowAnswers();
        for (var round = 0; round < 10_000; round++)
        {
            var pending = Enumerable.Range(0, 256).Select(_ => new Answer()).ToArray();
            var window = pending.Select(answer => answer.Task).ToArray();
            // Two threads answer, each every other call, while the wait is set up.
            var answering = Task.WhenAll(
                Task.Run(() => AnswerEveryOther(pending, first: 0)),
                Task.Run(() => AnswerEveryOther(pending, first: 1)));
            var all = answers.AllAsync(window, window.Length);
            await answering.WaitAsync(TimeSpan.FromSeconds(10));
            await all.WaitAsync(TimeSpan.FromSeconds(10)); // with a count lost between threads it never completes
            for (var i = 0; i < window.Length; i++)
            {
                Assert.Equal(i, (await window[i]).AppliedPosition);
            }
        }
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
    public async Task A_failed_call_counts_as_answered_and_the_window_throws_once_every_answer_is_read()
    {
        var answers = new[] { new Answer(), new Answer(), new Answer(), new Answer() };
        var window = answers.Select(answer => answer.Task).ToArray();
        var all = new WindowAnswers().AllAsync(window, 4);
        answers[0].Fail(new OperationCanceledException("stopping"));
        answers[1].Fail(new InvalidOperationException("sensor s refused the work"));
        answers[2].Fail(new InvalidOperationException("sensor t refused the work"));
        Assert.False(all.IsCompleted);
        answers[3].Complete(At(4));
        await all.WaitAsync(TimeSpan.FromSeconds(10));

        // As Task.WhenAll would: the first fault, before a cancellation; and only after every answer was read.
        var progress = new SensorProgress[4];
        var thrown = Assert.Throws<InvalidOperationException>(() => WindowAnswers.Read(window, 4, progress));
        Assert.Equal("sensor s refused the work", thrown.Message);
        Assert.All(answers, answer => Assert.Equal(1, answer.Reads));
        Assert.Equal(4, progress[3].AppliedPosition);
        Assert.All(window, slot => Assert.Equal(default, slot));
    }

    [Fact]
    public void A_window_of_cancelled_calls_throws_the_first_cancellation()
    {
        var answers = new[] { new Answer(), new Answer() };
        var window = answers.Select(answer => answer.Task).ToArray();
        answers[0].Fail(new OperationCanceledException("first"));
        answers[1].Fail(new OperationCanceledException("second"));

        Assert.Equal("first", Assert.Throws<OperationCanceledException>(() => WindowAnswers.Read(window, 2, new SensorProgress[2])).Message);
        Assert.All(answers, answer => Assert.Equal(1, answer.Reads));
    }

    private static void AnswerEveryOther(Answer[] pending, int first)
    {
        for (var i = first; i < pending.Length; i += 2)
        {
            pending[i].Complete(At(i));
        }
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
