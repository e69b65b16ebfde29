namespace Grains.Tests;

/// <summary>The commits of a reentrant grain: callers share commits, and nothing is stored after a commit failed.</summary>
public sealed class GroupCommitTests
{
    [Fact]
    public async Task Callers_arriving_while_a_commit_runs_share_the_next_one()
    {
        var commits = new List<TaskCompletionSource>();
        var commit = new GroupCommit(() =>
        {
            var c = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            commits.Add(c);
            return c.Task;
        });

        var first = commit.RunAsync();
        var second = commit.RunAsync();
        var third = commit.RunAsync();
        Assert.Single(commits);
        commits[0].SetResult();
        await first;
        await UntilAsync(() => commits.Count == 2);
        Assert.False(second.IsCompleted);
        commits[1].SetResult();
        await Task.WhenAll(second, third);
        Assert.Equal(2, commits.Count);
    }

    [Fact]
    public async Task After_a_failed_commit_its_callers_those_waiting_for_the_next_and_every_later_caller_fail_and_nothing_more_is_committed()
    {
        var commits = new List<TaskCompletionSource>();
        var commit = new GroupCommit(() =>
        {
            var c = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            commits.Add(c);
            return c.Task;
        });

        var failing = commit.RunAsync();
        var waitingForNext = commit.RunAsync();
        commits[0].SetException(new InvalidOperationException("write failed"));

        // The commit loop goes on on the thread pool: wait until it either failed the waiting caller or started a commit.
        await UntilAsync(() => waitingForNext.IsCompleted || commits.Count > 1);

        Assert.Single(commits);
        Assert.Equal("write failed", (await Assert.ThrowsAsync<InvalidOperationException>(() => failing)).Message);
        Assert.Equal("write failed", (await Assert.ThrowsAsync<InvalidOperationException>(() => waitingForNext)).Message);
        Assert.Equal("write failed", (await Assert.ThrowsAsync<InvalidOperationException>(() => commit.RunAsync())).Message);
        Assert.Single(commits);
    }

    /// <summary>The commit loop runs on the thread pool: waits (10 s at most) for what it must reach.</summary>
    private static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the commit loop did not get there within 10 s");
            await Task.Yield();
        }
    }
}
