using Grains.Abstractions;
using Runtime.InMemory;

namespace Runtime.Tests;

/// <summary>The silo's group commit of outputs to the read models.</summary>
public sealed class OutputSinkTests
{
    [Fact]
    public async Task Outputs_handed_over_during_a_write_go_together_in_the_next_and_a_failed_write_fails_only_its_callers()
    {
        var writer = new GatedWriter();
        var sink = new OutputSink(new InMemoryLiveEvents(), writer);

        var first = sink.WriteAsync([Command("a")], CancellationToken.None);
        Assert.True(await writer.Started.WaitAsync(TimeSpan.FromSeconds(10))); // the write of "a" runs
        var second = sink.WriteAsync([Command("b")], CancellationToken.None); // both wait for the next write
        var third = sink.WriteAsync([Command("c")], CancellationToken.None);

        writer.Finish(); // "a" written; "b" and "c" start together
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(await writer.Started.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(second.IsCompleted);

        writer.Fail(new InvalidOperationException("PostgreSQL is down"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => second);
        await Assert.ThrowsAsync<InvalidOperationException>(() => third);
        Assert.Equal([["a"], ["b", "c"]], writer.Batches);

        // The next caller's write is a new one.
        var fourth = sink.WriteAsync([Command("d")], CancellationToken.None);
        Assert.True(await writer.Started.WaitAsync(TimeSpan.FromSeconds(10)));
        writer.Finish();
        await fourth.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([["a"], ["b", "c"], ["d"]], writer.Batches);
    }

    [Fact]
    public async Task A_write_takes_at_most_MaxOutputsPerWrite_outputs_and_never_splits_a_callers_outputs()
    {
        var writer = new GatedWriter();
        var sink = new OutputSink(new InMemoryLiveEvents(), writer);
        var first = sink.WriteAsync([Command("a")], CancellationToken.None);
        Assert.True(await writer.Started.WaitAsync(TimeSpan.FromSeconds(10)));

        // While "a" is written: three callers of 2,000 outputs and one of 6,000 (more than a write takes) queue up.
        Task Caller(string name, int count) =>
            sink.WriteAsync([.. Enumerable.Range(0, count).Select(i => Command($"{name}{i}"))], CancellationToken.None);
        Task[] callers = [Caller("b", 2_000), Caller("c", 2_000), Caller("d", 2_000), Caller("e", 6_000)];
        for (var write = 0; write < 3; write++)
        {
            writer.Finish(); // the write before ends, the next begins
            Assert.True(await writer.Started.WaitAsync(TimeSpan.FromSeconds(10)));
        }
        writer.Finish();
        await Task.WhenAll(callers.Append(first)).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(5_000, OutputSink.MaxOutputsPerWrite);
        Assert.Equal([1, 4_000, 2_000, 6_000], writer.Batches.Select(b => b.Length));
        Assert.Equal([.. Enumerable.Range(0, 2_000).Select(i => $"b{i}"), .. Enumerable.Range(0, 2_000).Select(i => $"c{i}")], writer.Batches[1]);
        Assert.Equal(Enumerable.Range(0, 2_000).Select(i => $"d{i}"), writer.Batches[2]);
    }

    [Fact]
    public async Task A_rules_alerts_and_commands_are_written_while_a_fleets_aggregates_wait_for_the_database()
    {
        var writer = new AggregatesWaitWriter();
        var sink = new OutputSink(new InMemoryLiveEvents(), writer);
        var aggregates = Enumerable.Range(0, 12_000)
            .Select(i => (GrainOutput)new MinuteAggregate { SensorId = $"s{i}", MinuteMs = 60_000, Metrics = [] }).ToArray();
        var closes = aggregates.Chunk(2).Select(c => sink.WriteAsync(c, CancellationToken.None)).ToArray(); // a fleet's minute close
        Assert.True(await writer.AggregatesStarted.Task.WaitAsync(TimeSpan.FromSeconds(10)));

        var alert = new Alert
        {
            Id = "a1", RuleId = "r", RuleName = "R", RuleVersion = 1, SensorId = "s1", Severity = Severity.Info, State = AlertState.Open,
            StartedAtMs = 0, OpenedAtMs = 0, Message = "m",
        };
        // The rule's commit completes while the first write of aggregates still waits; so does one with a command.
        await sink.WriteAsync([new AlertEvent { Kind = AlertEventKind.Opened, Alert = alert }], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await sink.WriteAsync([Command("c1")], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.All(closes, c => Assert.False(c.IsCompleted));

        writer.ReleaseAggregates.SetResult();
        await Task.WhenAll(closes).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(["a1/Opened", "c1"], writer.Written.Take(2));
        Assert.Equal(12_002, writer.Written.Count);
    }

    [Fact]
    public async Task Without_group_commit_each_callers_outputs_are_written_at_once_even_while_another_write_runs()
    {
        var writer = new GatedWriter();
        var sink = new OutputSink(new InMemoryLiveEvents(), writer, groupCommit: false);

        var first = sink.WriteAsync([Command("a")], CancellationToken.None);
        Assert.True(await writer.Started.WaitAsync(TimeSpan.FromSeconds(10)));
        var second = sink.WriteAsync([Command("b")], CancellationToken.None);
        Assert.True(await writer.Started.WaitAsync(TimeSpan.FromSeconds(10))); // not queued behind "a"
        Assert.Equal([["a"], ["b"]], writer.Batches);

        writer.Finish();
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static DeviceCommand Command(string id) => new() { CommandId = id, DeviceId = "dev", Command = "fan", RuleId = "r", AlertId = "x", CreatedAtMs = 1 };

    /// <summary>A read-model writer whose each write waits until the test finishes or fails it.</summary>
    private sealed class GatedWriter : IReadModelWriter
    {
        private readonly SemaphoreSlim _started = new(0);
        private TaskCompletionSource _current = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<string[]> Batches { get; } = [];

        /// <summary>Completes when the next write has started.</summary>
        public SemaphoreSlim Started => _started;

        public async Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken)
        {
            lock (Batches)
            {
                Batches.Add([.. outputs.Select(o => ((DeviceCommand)o).CommandId)]);
            }
            var current = _current;
            _started.Release();
            await current.Task;
        }

        public void Finish() => Next().TrySetResult();

        public void Fail(Exception e) => Next().TrySetException(e);

        private TaskCompletionSource Next()
        {
            var current = _current;
            _current = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return current;
        }
    }

    /// <summary>A read-model writer whose writes of aggregates wait until the test releases them; others are written at once.</summary>
    private sealed class AggregatesWaitWriter : IReadModelWriter
    {
        public TaskCompletionSource<bool> AggregatesStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource ReleaseAggregates { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<string> Written { get; } = [];

        public async Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken)
        {
            if (outputs.Any(o => o is MinuteAggregate))
            {
                AggregatesStarted.TrySetResult(true);
                await ReleaseAggregates.Task;
            }
            lock (Written)
            {
                Written.AddRange(outputs.Select(o => o.Id));
            }
        }
    }
}
