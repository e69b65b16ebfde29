using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime;
using Runtime;

namespace Bench;

/// <summary>
/// Creating an offline rule over a large idle fleet, on a silo of the system in this process as the Api co-hosts it in
/// embedded mode (in-memory log, grain storage and read models; <c>--partitions</c> partitions, default 8). Receipt time
/// is driven by the benchmark through the log (wall-clock ticks off), so nothing falls due while it measures:
/// <list type="number">
/// <item><c>--sensors</c> sensors (default 200,000) post one reading each: telemetry entries of <c>--batch</c> readings
/// (default 500) appended to their partitions at receipt time T; once every partition has applied and committed them, a
/// tick at T + 2 min that closes their minutes, applied and committed in turn.</item>
/// <item>No more traffic: Orleans deactivates the sensors idle past <c>--idle-seconds</c> (default 5). Waits until no
/// sensor is active.</item>
/// <item>An offline rule (<c>--minutes</c> without data, default 5; target: every sensor) is appended to every
/// partition at T + 2 min + 1 s, as the Api appends a created rule. Measures the time until every partition has applied
/// it (the partitions plan its deadline for each sensor they know, from what they keep of it), then until every
/// partition has committed it (its next checkpoint), the sensor activations right after (expected: none; a sensor is
/// activated only at its deadline, its last reading + minutes, which receipt time does not reach here), and the managed memory before
/// and after.</item>
/// </list>
/// Managed memory is also taken before the readings, with the sensors active, and once idle: <c>idleBytesPerSensor</c> is
/// what the embedded system keeps of an idle sensor (its stored state, its partition's entry, its read models).
/// </summary>
public static class OfflineBenchmark
{
    private const long Minute = 60_000;

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new Options(args);
        var sensors = options.Int("sensors", 200_000);
        var partitions = options.Int("partitions", 8);
        var batch = options.Int("batch", 500);
        var idleSeconds = options.Int("idle-seconds", 5);
        var minutes = options.Int("minutes", 5);
        if (sensors < 1 || partitions < 1 || batch < 1 || idleSeconds < 1 || minutes < 3)
        {
            Console.Error.WriteLine("--sensors, --partitions, --batch and --idle-seconds must be positive, --minutes at least 3");
            return 2;
        }

        var settings = new Dictionary<string, string?>
        {
            ["Cluster:Mode"] = "Embedded",
            ["Silo:Partitions"] = partitions.ToString(CultureInfo.InvariantCulture),
            ["Silo:IdleDeactivation"] = TimeSpan.FromSeconds(idleSeconds).ToString(),
            ["Silo:TicksEnabled"] = "false",
        };
        using var host = await BenchSilo.StartSystemAsync(settings);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var log = host.Services.GetRequiredService<IInboxLog>();
        await BenchSilo.UntilAsync(async () => await TryStatusesAsync(grains, partitions) is not null, TimeSpan.FromSeconds(60),
            "every partition's reader answers");
        var startBytes = BenchSilo.ManagedBytes();

        // 1. One reading per sensor through the log, then a tick that closes their minutes.
        var receivedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / Minute * Minute;
        var ingest = Stopwatch.StartNew();
        var byPartition = new List<Reading>[partitions];
        for (var p = 0; p < partitions; p++)
        {
            byPartition[p] = [];
        }

        for (var i = 0; i < sensors; i++)
        {
            var id = BenchFleet.Id(i);
            byPartition[Partitioner.PartitionOf(id, partitions)].Add(BenchFleet.NewReading(id, i, receivedAt - 1_000, 0));
        }

        for (var p = 0; p < partitions; p++)
        {
            await log.AppendAsync(p, byPartition[p].Chunk(batch).Select(readings => new TelemetryEntry(readings, null, receivedAt)).ToList(), CancellationToken.None);
        }

        byPartition = null;
        await WaitCommittedAsync(grains, partitions, TimeSpan.FromSeconds(600), "every partition applied and committed the readings");

        // Appended on its own, not read with the readings: a reader holds its last run of records until the next one.
        for (var p = 0; p < partitions; p++)
        {
            await log.AppendAsync(p, [new TickEntry(receivedAt + 2 * Minute)], CancellationToken.None);
        }

        await WaitCommittedAsync(grains, partitions, TimeSpan.FromSeconds(600), "every partition applied and committed the tick");
        ingest.Stop();
        var known = (await TryStatusesAsync(grains, partitions))!.Sum(s => s.Sensors);
        var activeAfterIngest = await BenchSilo.SensorActivationsAsync(grains);
        var activeBytes = BenchSilo.ManagedBytes();

        // 2. Orleans deactivates the idle sensors.
        var collection = await BenchSilo.UntilAsync(async () => await BenchSilo.SensorActivationsAsync(grains) == 0,
            TimeSpan.FromSeconds(idleSeconds * 2 + 300), "every sensor grain deactivated by idle collection", pollMs: 100);
        var idleBytes = BenchSilo.ManagedBytes();

        // 3. One offline rule for every sensor, appended to every partition.
        var rule = new RuleDefinition
        {
            Id = "bench-offline",
            Name = "no data",
            Enabled = true,
            Severity = Severity.Critical,
            Target = new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition { Kind = ConditionKind.Offline, Minutes = minutes },
            Version = 1,
        };
        var atMs = receivedAt + 2 * Minute + 1_000;
        var ends = new long[partitions];
        var watch = Stopwatch.StartNew();
        for (var p = 0; p < partitions; p++)
        {
            await log.AppendAsync(p, [new RuleChangeEntry(rule.Id, rule, atMs)], CancellationToken.None);
            ends[p] = await log.EndOffsetAsync(p, CancellationToken.None);
        }

        await BenchSilo.UntilAsync(async () => (await TryStatusesAsync(grains, partitions))?.All(s => s.AppliedOffset >= ends[s.Partition]) == true,
            TimeSpan.FromSeconds(300), "every partition applied the rule", pollMs: 5);
        var applied = watch.Elapsed;
        var activeAfterRule = await BenchSilo.SensorActivationsAsync(grains);
        await WaitCommittedAsync(grains, partitions, TimeSpan.FromSeconds(300), "every partition committed the rule");
        var committed = watch.Elapsed;
        var activeAfterCommit = await BenchSilo.SensorActivationsAsync(grains);
        var ruleBytes = BenchSilo.ManagedBytes();
        await host.StopAsync();

        var result = new Dictionary<string, object>
        {
            ["benchmark"] = "offline",
            ["sensors"] = sensors,
            ["sensorsKnownToPartitions"] = known,
            ["partitions"] = partitions,
            ["batch"] = batch,
            ["offlineMinutes"] = minutes,
            ["idleDeactivationSeconds"] = idleSeconds,
            ["ingestSeconds"] = Math.Round(ingest.Elapsed.TotalSeconds, 2),
            ["activeAfterIngest"] = activeAfterIngest,
            ["allDeactivatedAfterSeconds"] = Math.Round(collection.TotalSeconds, 2),
            ["ruleAppliedMs"] = Math.Round(applied.TotalMilliseconds, 1),
            ["ruleCommittedMs"] = Math.Round(committed.TotalMilliseconds, 1),
            ["sensorActivationsAfterRule"] = activeAfterRule,
            ["sensorActivationsAfterCommit"] = activeAfterCommit,
            ["managedBytes"] = new Dictionary<string, long>
            {
                ["start"] = startBytes,
                ["active"] = activeBytes,
                ["idle"] = idleBytes,
                ["afterRule"] = ruleBytes,
            },
            ["releasedBytesPerSensor"] = Math.Round((activeBytes - idleBytes) / (double)sensors, 1),
            ["idleBytesPerSensor"] = Math.Round((idleBytes - startBytes) / (double)sensors, 1),
            ["ruleBytesPerSensor"] = Math.Round((ruleBytes - idleBytes) / (double)sensors, 1),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>Every partition's status; null while one does not answer.</summary>
    private static async Task<PartitionStatus[]?> TryStatusesAsync(IGrainFactory grains, int partitions)
    {
        try
        {
            return await BenchSilo.PartitionStatusesAsync(grains, partitions).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return null;
        }
    }

    /// <summary>Waits until every partition has applied and committed everything in its log.</summary>
    private static Task<TimeSpan> WaitCommittedAsync(IGrainFactory grains, int partitions, TimeSpan timeout, string what) =>
        BenchSilo.UntilAsync(async () => (await TryStatusesAsync(grains, partitions))?.All(s => s.CommittedOffset == s.EndOffset) == true,
            timeout, what, pollMs: 50);
}
