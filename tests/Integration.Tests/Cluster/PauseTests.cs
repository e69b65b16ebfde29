using System.Diagnostics;
using Xunit.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>
/// A silo paused past failure detection, with real processes: it is stopped (SIGSTOP) while it reads partitions, Orleans
/// declares it dead and the other silo reads its partitions and activates its grains from Redis, readings keep coming,
/// and then it resumes (SIGCONT) still holding activations and unwritten state. Its writes carry ETags the others have
/// since replaced, so Redis refuses them; it learns it was declared dead and stops. Every reading, posted before, during
/// and after the pause, is counted once, and no alert is opened twice.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PauseTests(ClusterServers servers, ITestOutputHelper output)
{
    [Fact]
    public async Task A_silo_paused_past_failure_detection_neither_overwrites_newer_state_nor_counts_twice()
    {
        await using var cluster = await DurableCluster.CreateAsync(servers, output);
        const string paused = "silo-1", other = "silo-2";
        await Scenario.StartAsync(cluster, paused, other);
        await Scenario.CreateRuleAsync(cluster);

        // About 45 s of posting: the pause, Orleans declaring the silo dead and the takeover all happen during the load.
        var input = new KnownInput(sensors: 80, seconds: 180, cluster.Partitions, cluster.AllowedLateness);
        var loader = new TelemetryLoader(cluster.Device, cluster.Log);
        var load = loader.RunAsync(input, eventSecondsPerSecond: 4);

        await Wait.UntilAsync(() => loader.Progress >= 0.25, TimeSpan.FromSeconds(120), "a quarter of the load acknowledged (before)");
        var before = await cluster.ViewAsync();
        var moved = before.OwnedBy(paused);
        Assert.NotEmpty(moved);
        var node = cluster.Silo(paused);
        await node.SignalAsync("STOP");
        var pausedFor = Stopwatch.StartNew();
        cluster.Log($"SIGSTOP {node.Name} at {DateTime.UtcNow:HH:mm:ss.fff}, reader of partitions {string.Join(",", moved)}");

        // Orleans declares it dead; the other silo reads its partitions (from their stored positions) and goes on.
        var takenOver = await cluster.WaitForViewAsync(
            v => moved.All(p => v.OwnerName(p) == other) && v.Silos.Any(s => s.Name == paused && s.Status == "dead"),
            TimeSpan.FromSeconds(30), $"{paused} declared dead and {other} reading {string.Join(",", moved)}");
        cluster.Log($"taken over after {Wait.Seconds(pausedFor.Elapsed)}: {takenOver.Describe()}");
        var committed = moved.ToDictionary(p => p, p => takenOver.Partition(p).CommittedOffset ?? 0);
        var during = loader.AcknowledgedCount;
        await Wait.UntilAsync(() => loader.AcknowledgedCount >= during + 1_000 || load.IsCompleted, TimeSpan.FromSeconds(30), "readings acknowledged during the pause");
        await cluster.WaitForViewAsync(v => moved.All(p => v.Partition(p).CommittedOffset > committed[p]), TimeSpan.FromSeconds(30),
            $"{other} committing the moved partitions past where it took them");
        Assert.True(loader.Progress < 1, "readings still to come after the pause");

        // Resume: the old activations write with stale ETags and are refused; the silo finds itself dead and stops.
        var mark = node.LineCount;
        await node.SignalAsync("CONT");
        cluster.Log($"SIGCONT {node.Name} after {Wait.Seconds(pausedFor.Elapsed)}");
        await Wait.UntilAsync(() => node.HasExited, TimeSpan.FromSeconds(60), $"{paused} stopping once it learnt it was declared dead");
        cluster.ExpectExit(paused);
        cluster.Log($"{node.Name} exited with code {node.ExitCode}; its last lines:\n{string.Join('\n', node.Lines(mark).TakeLast(15))}");
        var view = await cluster.WaitBalancedAsync([other], TimeSpan.FromSeconds(30));
        cluster.Log($"all read by {other}: {view.Describe()}");

        await load;
        await Scenario.FinishAndCheckAsync(cluster, input, loader);
    }
}
