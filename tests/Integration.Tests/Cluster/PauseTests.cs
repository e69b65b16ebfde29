using System.Diagnostics;
using Npgsql;
using Xunit.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>
/// Fencing, with real processes: the owner of partitions is paused (SIGSTOP) past its lease, the other silo takes
/// them (higher epochs), readings keep coming, and the old owner resumes (SIGCONT) still believing it owns them. Its
/// checkpoint is refused (or it finds its leases lost first) and it drops those activations; the partitions are
/// balanced again and every reading, posted before, during and after the pause, is counted once.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PauseTests(ClusterServers servers, ITestOutputHelper output)
{
    [Fact]
    public async Task A_paused_owner_resumed_after_a_takeover_is_fenced_off_and_nothing_is_counted_twice()
    {
        await using var cluster = await DurableCluster.CreateAsync(servers, output);
        const string paused = "silo-1", other = "silo-2";
        await Scenario.StartAsync(cluster, paused, other);
        await Scenario.CreateRuleAsync(cluster);

        var input = new KnownInput(sensors: 80, seconds: 120, cluster.Partitions);
        var loader = new TelemetryLoader(cluster.Device, cluster.Log);
        var load = loader.RunAsync(input, eventSecondsPerSecond: 8);

        await Wait.UntilAsync(() => loader.Progress >= 0.25, TimeSpan.FromSeconds(120), "a quarter of the load acknowledged (before)");
        var before = await cluster.ViewAsync();
        var moved = before.OwnedBy(paused);
        Assert.NotEmpty(moved);
        var node = cluster.Silo(paused);
        await node.SignalAsync("STOP");
        var pausedFor = Stopwatch.StartNew();
        cluster.Log($"SIGSTOP {node.Name}, owner of {string.Join(",", moved)}");

        // The other silo takes every partition of the paused one, with a higher epoch, and commits checkpoints with it.
        var takenOver = await cluster.WaitForViewAsync(v => moved.All(p => v.Partition(p).Owner == other && v.Partition(p).Epoch > before.Partition(p).Epoch),
            TimeSpan.FromSeconds(20), $"{other} owns {string.Join(",", moved)} with higher epochs");
        cluster.Log($"taken over after {Wait.Seconds(pausedFor.Elapsed)}: {takenOver.Describe()}");
        var epochs = moved.ToDictionary(p => p, p => takenOver.Partition(p).Epoch);
        var during = loader.AcknowledgedCount;
        await Wait.UntilAsync(() => loader.AcknowledgedCount >= during + 1_000 || load.IsCompleted, TimeSpan.FromSeconds(30), "readings acknowledged during the pause");
        await WaitAsync(async () => (await CheckpointEpochsAsync(cluster)).Where(c => epochs.ContainsKey(c.Key)).All(c => c.Value >= epochs[c.Key]),
            TimeSpan.FromSeconds(20), "checkpoints of the new owner's epochs");
        Assert.True(pausedFor.Elapsed > cluster.LeaseDuration);
        Assert.True(loader.Progress < 1, "readings still to come after the pause");

        // Resume: the old owner's checkpoint must be refused (or its renewal fail) and it must stop those partitions.
        using var watching = new CancellationTokenSource();
        var lowest = new Dictionary<int, long>();
        var watcher = Task.Run(async () =>
        {
            while (!watching.IsCancellationRequested)
            {
                foreach (var (partition, epoch) in await CheckpointEpochsAsync(cluster))
                {
                    lowest[partition] = Math.Min(lowest.GetValueOrDefault(partition, long.MaxValue), epoch);
                }
                await Task.Delay(20);
            }
        });
        var mark = node.LineCount;
        await node.SignalAsync("CONT");
        cluster.Log($"SIGCONT {node.Name} after {Wait.Seconds(pausedFor.Elapsed)}");
        var line = await node.WaitForLineAsync(l => l.Contains("fenced off; dropping activations", StringComparison.Ordinal) || l.Contains("lost; stopping it", StringComparison.Ordinal),
            TimeSpan.FromSeconds(10), "its checkpoint fenced off or its lease lost", mark);
        cluster.Log($"{node.Name}: {line}");
        var balanced = await cluster.WaitBalancedAsync([paused, other], TimeSpan.FromSeconds(30));
        cluster.Log($"balanced again: {balanced.Describe()}");
        // Every partition it held was dropped: its checkpoint refused, or its lease found lost first (a race on resume).
        var resumedLines = node.Lines(mark);
        foreach (var l in resumedLines.Where(l => l.Contains("fenced off", StringComparison.Ordinal) || l.Contains("lost; stopping it", StringComparison.Ordinal)))
        {
            output.WriteLine($"  {l}");
        }
        foreach (var partition in moved)
        {
            var epoch = before.Partition(partition).Epoch;
            Assert.True(resumedLines.Any(l => l.Contains($"Partition {partition}: checkpoint with epoch {epoch} fenced off; dropping activations", StringComparison.Ordinal)
                    || l.Contains($"Lease of partition {partition} (epoch {epoch}) lost; stopping it", StringComparison.Ordinal)),
                $"{paused} dropped partition {partition} (epoch {epoch}) on resuming");
        }
        await watching.CancelAsync();
        await watcher;
        foreach (var (partition, epoch) in epochs)
        {
            Assert.True(lowest[partition] >= epoch,
                $"partition {partition}: a checkpoint with epoch {lowest[partition]} was committed after the takeover with epoch {epoch}");
        }
        Assert.All(balanced.PartitionMap, p => Assert.Equal(1, balanced.Silos.Count(s => s.Partitions.Contains(p.Partition))));
        Assert.All(balanced.OwnedBy(paused), p => Assert.True(balanced.Partition(p).Epoch > epochs.GetValueOrDefault(p, before.Partition(p).Epoch)));

        await load;
        await Scenario.FinishAndCheckAsync(cluster, input, loader);
    }

    private static async Task<Dictionary<int, long>> CheckpointEpochsAsync(DurableCluster cluster)
    {
        await using var connection = new NpgsqlConnection(cluster.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT partition, epoch FROM checkpoints", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var epochs = new Dictionary<int, long>();
        while (await reader.ReadAsync())
        {
            epochs[reader.GetInt32(0)] = reader.GetInt64(1);
        }
        return epochs;
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            }
            await Task.Delay(50);
        }
    }
}
