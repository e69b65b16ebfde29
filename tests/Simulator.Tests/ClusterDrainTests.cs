using System.Diagnostics;
using Microsoft.AspNetCore.Http;

namespace Simulator.Tests;

/// <summary>
/// --wait-applied: <see cref="ClusterDrain"/> polls GET /api/v1/cluster with the operator key until every partition's reader
/// has applied its log to the end (applied offset = end offset; committing follows at the next checkpoint).
/// </summary>
public sealed class ClusterDrainTests
{
    private const string OperatorKey = "test-operator-key-0123";

    /// <summary>A guard against a drain that never returns: far longer than any of these tests needs, even on a busy machine.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

    private static IResult NoTelemetry(int number, int readings) => Results.StatusCode(500);

    [Fact]
    public async Task Returns_the_time_of_the_first_poll_that_saw_everything_applied_and_polls_with_the_operator_key()
    {
        // Records to apply on both partitions, then the second's reader does not answer (not done either), then none.
        await using var stub = await StubApi.StartAsync(NoTelemetry, poll => poll switch
        {
            1 => StubApi.Cluster(3, 2),
            2 => StubApi.Cluster(0, -1),
            _ => StubApi.Cluster(0, 0),
        });
        // The run started 2 s ago.
        var runStart = Stopwatch.GetTimestamp() - 2 * Stopwatch.Frequency;

        var applied = await ClusterDrain.WaitAsync(stub.Url, OperatorKey, runStart, TimeSpan.FromSeconds(30), CancellationToken.None).WaitAsync(Guard);
        var returnedAfter = Stopwatch.GetElapsedTime(runStart).TotalSeconds;

        Assert.NotNull(applied);
        // It stopped at the poll that saw everything applied: exactly three polls, each with the operator key.
        Assert.Equal(3, stub.ClusterPollCount);
        var polls = stub.ClusterPolls.OrderBy(p => p.Number).ToList();
        Assert.Equal([1, 2, 3], polls.Select(p => p.Number));
        Assert.All(polls, p => Assert.Equal(OperatorKey, p.Key));
        // The time is measured from the run's start to the sending of the third poll: after the second was answered,
        // no later than the third's arrival, and never past the return.
        Assert.InRange(applied.Value, Stopwatch.GetElapsedTime(runStart, polls[1].Timestamp).TotalSeconds,
            Stopwatch.GetElapsedTime(runStart, polls[2].Timestamp).TotalSeconds);
        Assert.True(applied.Value >= 2, $"applied after {applied.Value} s, but the run started 2 s before the first poll");
        Assert.True(applied.Value <= returnedAfter, $"applied after {applied.Value} s, returned after {returnedAfter} s");
    }

    [Fact]
    public async Task Returns_after_one_poll_when_everything_is_applied()
    {
        await using var stub = await StubApi.StartAsync(NoTelemetry, _ => StubApi.Cluster(0, 0, 0));
        var runStart = Stopwatch.GetTimestamp();

        var applied = await ClusterDrain.WaitAsync(stub.Url, OperatorKey, runStart, TimeSpan.FromSeconds(30), CancellationToken.None).WaitAsync(Guard);

        Assert.NotNull(applied);
        Assert.Equal(1, stub.ClusterPollCount);
        Assert.True(stub.ClusterPolls.TryPeek(out var poll));
        Assert.Equal(OperatorKey, poll.Key);
        Assert.InRange(applied.Value, 0, Stopwatch.GetElapsedTime(runStart, poll.Timestamp).TotalSeconds);
    }

    [Fact]
    public async Task Asks_again_when_the_cluster_answers_503_under_load()
    {
        // The Api's answer while the silos are too busy to report in time (a saturating load): not done, not a failure.
        await using var stub = await StubApi.StartAsync(NoTelemetry, poll => poll == 1 ? Results.StatusCode(503) : StubApi.Cluster(0, 0));
        var runStart = Stopwatch.GetTimestamp();

        var applied = await ClusterDrain.WaitAsync(stub.Url, OperatorKey, runStart, TimeSpan.FromSeconds(30), CancellationToken.None).WaitAsync(Guard);

        Assert.NotNull(applied);
        Assert.Equal(2, stub.ClusterPollCount);
        var second = stub.ClusterPolls.OrderBy(p => p.Number).Last();
        Assert.InRange(applied.Value, 0, Stopwatch.GetElapsedTime(runStart, second.Timestamp).TotalSeconds);
    }

    [Fact]
    public async Task Returns_null_at_the_timeout_when_a_partition_never_applies_its_end()
    {
        await using var stub = await StubApi.StartAsync(NoTelemetry, _ => StubApi.Cluster(0, 7));
        var timeout = TimeSpan.FromMilliseconds(500);
        var started = Stopwatch.GetTimestamp();

        var applied = await ClusterDrain.WaitAsync(stub.Url, OperatorKey, started, timeout, CancellationToken.None).WaitAsync(Guard);

        Assert.Null(applied);
        // It kept polling until the deadline, with the operator key, and gave up no earlier.
        Assert.True(Stopwatch.GetElapsedTime(started) >= timeout, $"gave up after {Stopwatch.GetElapsedTime(started)}");
        Assert.True(stub.ClusterPollCount >= 1);
        Assert.All(stub.ClusterPolls, p => Assert.Equal(OperatorKey, p.Key));
        var count = stub.ClusterPollCount;
        await Task.Delay(300);
        Assert.Equal(count, stub.ClusterPollCount); // and stopped polling
    }

    [Fact]
    public async Task A_refused_poll_is_an_error_not_a_drained_cluster()
    {
        await using var stub = await StubApi.StartAsync(NoTelemetry, _ => Results.StatusCode(401));

        await Assert.ThrowsAsync<HttpRequestException>(() =>
            ClusterDrain.WaitAsync(stub.Url, "wrong-key", Stopwatch.GetTimestamp(), TimeSpan.FromSeconds(30), CancellationToken.None).WaitAsync(Guard));
        Assert.Equal(1, stub.ClusterPollCount);
    }
}
