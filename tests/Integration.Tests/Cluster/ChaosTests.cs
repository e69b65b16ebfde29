using System.Diagnostics;
using Xunit.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>
/// Three Orleans silo processes and one Api on private PostgreSQL, RabbitMQ and Redis servers. A known load runs while
/// one silo is killed with SIGKILL and another is stopped with SIGTERM and started again; every minute aggregate in
/// PostgreSQL must equal the value computed from the input, no alert may be opened twice, the output streams must hold
/// every aggregate and alert event exactly once, and the killed silo's partitions must be read again by the others within 5 s.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ChaosTests(ClusterServers servers, ITestOutputHelper output)
{
    [Fact]
    public async Task Readings_are_counted_once_and_alerts_opened_once_across_a_SIGKILL_and_a_SIGTERM_restart()
    {
        await using var cluster = await DurableCluster.CreateAsync(servers, output);
        string[] silos = ["silo-1", "silo-2", "silo-3"];
        await Scenario.StartAsync(cluster, silos);
        await Scenario.CreateRuleAsync(cluster);

        var input = new KnownInput(sensors: 150, seconds: 240, cluster.Partitions, cluster.AllowedLateness);
        var loader = new TelemetryLoader(cluster.Device, cluster.Log);
        // About 40 s of posting: long enough that both the kill and the SIGTERM land during the load on a loaded machine.
        var load = loader.RunAsync(input, eventSecondsPerSecond: 6);

        // At a third of the load: SIGKILL a silo; its partitions must be read by the others within 5 s.
        await Wait.UntilAsync(() => loader.Progress >= 1.0 / 3 || load.IsCompleted, TimeSpan.FromSeconds(120), "a third of the load acknowledged");
        var before = await cluster.ViewAsync();
        var victim = silos.First(s => before.OwnedBy(s).Count > 0);
        var orphaned = before.OwnedBy(victim);
        var progressAtKill = loader.Progress;
        var survivorsAtKill = silos.Where(s => s != victim).Select(s => (Silo: cluster.Silo(s), Mark: cluster.Silo(s).LineCount)).ToArray();
        var killedAt = Stopwatch.GetTimestamp();
        cluster.KillSilo(victim);
        var after = await cluster.WaitForViewAsync(v => orphaned.All(p => v.OwnerName(p) is { } owner && owner != victim),
            TimeSpan.FromSeconds(30), $"partitions {string.Join(",", orphaned)} of {victim} read by live silos", pollInterval: TimeSpan.FromMilliseconds(50));
        var seenInView = Stopwatch.GetElapsedTime(killedAt);
        // The takeover is when a live silo's new activation of each orphaned partition starts reading (its log line), not
        // when the Api's cluster view shows it: a view poll in flight can wait out a call to the dead silo.
        var takeover = orphaned.Select(p => survivorsAtKill
                .Select(s => s.Silo.ArrivalOf(l => l.Contains($"Partition {p} reads from offset", StringComparison.Ordinal), s.Mark))
                .Where(t => t is not null).Min() is { } resumed ? Stopwatch.GetElapsedTime(killedAt, resumed) : TimeSpan.MaxValue)
            .Max();
        Assert.True(takeover != TimeSpan.MaxValue, $"every orphaned partition logged its new reader on a live silo:\n{after.Describe()}");
        cluster.Log($"partitions {string.Join(",", orphaned)} read again after SIGKILL of {victim}: {Wait.Seconds(takeover)} "
            + $"(in the cluster view after {Wait.Seconds(seenInView)}); {after.Describe()}");
        output.WriteLine($"TAKEOVER TIME: {Wait.Seconds(takeover)}");
        Assert.True(progressAtKill < 1, "the kill happened during the load");

        // At two thirds: SIGTERM another silo (grains write their state, readers take a last checkpoint, exit 0), then
        // start it again.
        await Wait.UntilAsync(() => loader.Progress >= 2.0 / 3 || load.IsCompleted, TimeSpan.FromSeconds(120), "two thirds of the load acknowledged");
        var view = await cluster.ViewAsync();
        var restarted = silos.First(s => s != victim && view.OwnedBy(s).Count > 0);
        var held = view.OwnedBy(restarted);
        var progressAtTerm = loader.Progress;
        var exitCode = await cluster.TerminateSiloAsync(restarted, TimeSpan.FromSeconds(60));
        Assert.Equal(0, exitCode);
        var stopped = cluster.Silo(restarted);
        foreach (var partition in held)
        {
            Assert.True(stopped.HasLine(l => l.Contains($"Partition {partition} stopped with everything before offset", StringComparison.Ordinal)),
                $"{restarted} logged the last checkpoint of partition {partition}:\n{stopped.Tail(30)}");
        }
        cluster.StartSilo(restarted);
        var survivors = silos.Where(s => s != victim).ToArray();
        view = await cluster.WaitBalancedAsync(survivors, TimeSpan.FromSeconds(60));
        cluster.Log($"{restarted} restarted: {view.Describe()}");

        await load;
        Assert.True(progressAtTerm < 1, "the SIGTERM happened during the load");
        await Scenario.FinishAndCheckAsync(cluster, input, loader);
        // Any consumer reading the output streams from the start finds every aggregate and alert event once, across the
        // SIGKILL (replays of the killed silo's last batches) and the restart.
        await OutputStreamCheck.AssertEveryAggregateAndAlertOnceAsync(cluster, servers.RabbitMq.Uri, TimeSpan.FromSeconds(60));

        Assert.True(takeover <= TimeSpan.FromSeconds(5), $"the killed silo's partitions were read again after {Wait.Seconds(takeover)}, more than 5 s");
    }
}
