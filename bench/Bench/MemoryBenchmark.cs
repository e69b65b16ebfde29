using System.Diagnostics;
using System.Text.Json;
using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Serialization;
using Orleans.Storage;
using Runtime;
using Runtime.InMemory;

namespace Bench;

/// <summary>
/// Memory of an active sensor, in two parts measured apart, and what Orleans' idle collection gives back.
/// <para>
/// Grain state (<c>--sensors</c>, default 200,000; 0 skips it): one <see cref="SensorLogic"/> per sensor, as a sensor
/// grain holds it, with the silo's shared <see cref="SensorNameTable"/>, fed <c>--readings</c> readings each (default
/// 10, every <c>--interval-ms</c> = 6,000 ms of event time from 20 s into a minute, round by round over the fleet, so
/// the first minute closes and the state is that of a live sensor: one open minute, the last readings). Reports the
/// managed bytes per sensor (full-collection heap deltas; the logic object, its state and every array and string it
/// holds), the bytes allocated per applied reading (apply and clock advance, as the grain calls them; building the
/// reading is not counted), and the stored size of the state in Orleans' binary form (and base64, as the durable storage keeps it).
/// </para>
/// <para>
/// Orleans activations (<c>--activations</c>, default 100,000; 0 skips it): a silo of the system in this process, as
/// the Api co-hosts it in embedded mode, except that read-model writes are dropped (their memory is not the grains').
/// The same readings reach sensor grains by <see cref="ISensorGrain.ApplyAsync"/> calls (<c>--in-flight</c> 1,000 at
/// a time, round by round), activating them. Managed bytes per activation minus the grain state above is the Orleans
/// activation overhead (activation, grain object and its stored-state record, directory and catalog entries).
/// Then, with <c>--idle-seconds</c> (default 5) as <see cref="SiloOptions.IdleDeactivation"/> and no more calls,
/// Orleans deactivates them (each writes its state to the in-memory grain storage first): the time until none is
/// active, the memory released, and what stays in the process (the stored states). Last, as many activations of a grain
/// with no state and no fields (<see cref="IEmptyGrain"/>): Orleans' own share of the overhead; the rest is the sensor
/// grain's shell (its object, stored-state record and empty default state).
/// </para>
/// </summary>
public static class MemoryBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = new Options(args);
        var sensors = options.Int("sensors", 200_000);
        var activations = options.Int("activations", 100_000);
        var readings = options.Int("readings", 10);
        var intervalMs = options.Int("interval-ms", 6_000);
        var ruleCount = options.Int("rules", 0);
        var idleSeconds = options.Int("idle-seconds", 5);
        var inFlight = options.Int("in-flight", 1_000);
        if (sensors < 0 || activations < 0 || readings < 1 || intervalMs < 1 || ruleCount < 0 || idleSeconds < 1 || inFlight < 1)
        {
            Console.Error.WriteLine("--readings, --interval-ms, --idle-seconds and --in-flight must be positive; --sensors, --activations and --rules not negative");
            return 2;
        }

        var shape = new Shape(readings, intervalMs, BenchFleet.ThresholdRules(ruleCount), new SensorGrainOptions());
        var result = new Dictionary<string, object?>
        {
            ["benchmark"] = "memory",
            ["readingsPerSensor"] = readings,
            ["intervalMs"] = intervalMs,
            ["metricsPerReading"] = BenchFleet.MetricNames.Length,
            ["attributesPerReading"] = 1,
            ["rules"] = ruleCount,
            ["lastReadingsCount"] = shape.Options.LastReadingsCount,
        };

        double? stateBytes = null;
        if (sensors > 0)
        {
            var state = MeasureState(sensors, shape);
            stateBytes = (double)state["bytesPerSensor"]!;
            result["state"] = state;
        }

        if (activations > 0)
        {
            result["activations"] = await MeasureActivationsAsync(activations, shape, idleSeconds, inFlight, stateBytes);
        }

        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>What every sensor receives: how many readings, how far apart, with which rules, under which grain settings.</summary>
    private sealed record Shape(int Readings, int IntervalMs, RuleCatalog Rules, SensorGrainOptions Options)
    {
        public long TimeOf(int round) => BenchFleet.M0 + 20_000 + round * (long)IntervalMs;
    }

    private static Dictionary<string, object?> MeasureState(int sensors, Shape shape)
    {
        var names = new SensorNameTable();
        var effects = new CountingEffects();
        var logic = new SensorLogic[sensors];
        var before = BenchSilo.ManagedBytes();

        long allocated = 0;
        long allocatedAfterFirst = 0;
        long applyTicks = 0;
        for (var round = 0; round < shape.Readings; round++)
        {
            var time = shape.TimeOf(round);
            var position = LogPosition.Of(round, 0);
            for (var i = 0; i < sensors; i++)
            {
                // The id the logic keeps is its own instance, as a grain's key is.
                logic[i] ??= new SensorLogic(BenchFleet.Id(i), null, shape.Options, names);
                var reading = BenchFleet.NewReading(BenchFleet.Id(i), i, time, round);
                var a0 = GC.GetAllocatedBytesForCurrentThread();
                var t0 = Stopwatch.GetTimestamp();
                logic[i].Apply(position, reading, time, shape.Rules, effects);
                logic[i].Advance(time, shape.Rules, effects);
                applyTicks += Stopwatch.GetTimestamp() - t0;
                var bytes = GC.GetAllocatedBytesForCurrentThread() - a0;
                allocated += bytes;
                allocatedAfterFirst += round > 0 ? bytes : 0;
            }
        }

        var after = BenchSilo.ManagedBytes();

        // The stored form of a sample of the states, as the grain storage serializes them.
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        var step = Math.Max(1, sensors / 1_000);
        long storedBytes = 0;
        long storedBase64 = 0;
        var samples = 0;
        for (var i = 0; i < sensors; i += step)
        {
            var length = serializer.SerializeToArray(logic[i].State).Length;
            storedBytes += length;
            storedBase64 += (length + 2) / 3 * 4;
            samples++;
        }

        var total = (long)sensors * shape.Readings;
        GC.KeepAlive(logic);
        return new Dictionary<string, object?>
        {
            ["sensors"] = sensors,
            ["bytesPerSensor"] = Math.Round((after - before) / (double)sensors, 1),
            ["allocatedBytesPerReading"] = Math.Round(allocated / (double)total, 1),
            ["allocatedBytesPerReadingAfterFirst"] = shape.Readings > 1 ? Math.Round(allocatedAfterFirst / (double)(total - sensors), 1) : null,
            ["storedBytesPerSensor"] = Math.Round(storedBytes / (double)samples, 1),
            ["storedBase64BytesPerSensor"] = Math.Round(storedBase64 / (double)samples, 1),
            ["storedSamples"] = samples,
            ["readingsPerSecond"] = Math.Round(total / Stopwatch.GetElapsedTime(0, applyTicks).TotalSeconds),
            ["outputsEmitted"] = effects.Outputs,
            ["signalsSent"] = effects.Signals,
        };
    }

    private static async Task<Dictionary<string, object?>> MeasureActivationsAsync(int sensors, Shape shape, int idleSeconds, int inFlight, double? stateBytes)
    {
        var store = new InMemoryGrainStorage.Store();
        var settings = new Dictionary<string, string?>
        {
            ["Cluster:Mode"] = "Embedded",
            ["Silo:IdleDeactivation"] = TimeSpan.FromSeconds(idleSeconds).ToString(),
            ["Grains:AllowedLatenessMs"] = shape.Options.AllowedLatenessMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Grains:LastReadingsCount"] = shape.Options.LastReadingsCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        using var host = await BenchSilo.StartSystemAsync(settings, silo =>
        {
            silo.Services.AddSingleton<IReadModelWriter>(new DiscardingWriter());
            silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Name, (sp, _) => new InMemoryGrainStorage(store, sp.GetRequiredService<Serializer>()));
        });
        var grains = host.Services.GetRequiredService<IGrainFactory>();

        // Warm-up: every code path once (activation, apply, minute closing, deactivation with its state write).
        await DeliverAsync(grains, 1_000, shape, inFlight, i => "warm-up-" + BenchFleet.Id(i));
        await grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        await BenchSilo.UntilAsync(async () => await BenchSilo.SensorActivationsAsync(grains) == 0, TimeSpan.FromSeconds(60),
            "the warm-up sensors deactivated", pollMs: 100);
        var (storedCount0, storedBytes0, storedBase640) = Stored(store);
        var baseline = BenchSilo.ManagedBytes();

        var delivery = Stopwatch.StartNew();
        await DeliverAsync(grains, sensors, shape, inFlight, BenchFleet.Id);
        delivery.Stop();
        var idleSince = Stopwatch.StartNew();
        var active = await BenchSilo.SensorActivationsAsync(grains);
        var activeBytes = BenchSilo.ManagedBytes();

        // No more calls: Orleans' activation collector deactivates them once idle past IdleDeactivation.
        await BenchSilo.UntilAsync(async () => await BenchSilo.SensorActivationsAsync(grains) == 0,
            TimeSpan.FromSeconds(idleSeconds * 2 + 120), "every sensor grain deactivated by idle collection", pollMs: 100);
        var collectedAfter = idleSince.Elapsed;
        var collectedBytes = BenchSilo.ManagedBytes();
        var (storedCount, storedBytes, storedBase64) = Stored(store);

        // Orleans' own share: activations of a grain with nothing in it.
        await Task.WhenAll(Enumerable.Range(0, Math.Min(inFlight, sensors)).Select(c => Task.Run(async () =>
        {
            for (var i = c; i < sensors; i += inFlight)
            {
                await grains.GetGrain<IEmptyGrain>(i).TouchAsync();
            }
        })));
        var emptyBytes = BenchSilo.ManagedBytes();
        await host.StopAsync();

        var perActivation = (activeBytes - baseline) / (double)sensors;
        var perEmptyActivation = (emptyBytes - collectedBytes) / (double)sensors;
        return new Dictionary<string, object?>
        {
            ["sensors"] = sensors,
            ["activeAfterDelivery"] = active,
            ["inFlight"] = inFlight,
            ["callsPerSecond"] = Math.Round((long)sensors * shape.Readings / delivery.Elapsed.TotalSeconds),
            ["bytesPerActivation"] = Math.Round(perActivation, 1),
            ["grainStateBytesPerSensor"] = stateBytes,
            ["orleansOverheadBytesPerActivation"] = stateBytes is { } state ? Math.Round(perActivation - state, 1) : null,
            ["emptyGrainBytesPerActivation"] = Math.Round(perEmptyActivation, 1),
            ["sensorGrainShellBytesPerActivation"] = stateBytes is { } s ? Math.Round(perActivation - s - perEmptyActivation, 1) : null,
            ["idleDeactivationSeconds"] = idleSeconds,
            ["allDeactivatedAfterSeconds"] = Math.Round(collectedAfter.TotalSeconds, 2),
            ["releasedBytesPerActivation"] = Math.Round((activeBytes - collectedBytes) / (double)sensors, 1),
            ["heldAfterCollectionBytesPerSensor"] = Math.Round((collectedBytes - baseline) / (double)sensors, 1),
            ["statesStored"] = storedCount - storedCount0,
            ["storedBytesPerSensor"] = Math.Round((storedBytes - storedBytes0) / (double)sensors, 1),
            ["storedBase64BytesPerSensor"] = Math.Round((storedBase64 - storedBase640) / (double)sensors, 1),
        };
    }

    /// <summary>
    /// Gives <paramref name="sensors"/> sensor grains the benchmark's readings, round by round (one call per sensor and
    /// reading, <paramref name="inFlight"/> calls at a time), each call telling the position the sensor reported last.
    /// </summary>
    private static async Task DeliverAsync(IGrainFactory grains, int sensors, Shape shape, int inFlight, Func<int, string> idOf)
    {
        var applied = new long[sensors];
        Array.Fill(applied, -1);
        for (var round = 0; round < shape.Readings; round++)
        {
            var time = shape.TimeOf(round);
            var position = LogPosition.Of(round, 0);
            var next = -1;
            var callers = new Task[Math.Min(inFlight, sensors)];
            for (var c = 0; c < callers.Length; c++)
            {
                callers[c] = Task.Run(async () =>
                {
                    for (var i = Interlocked.Increment(ref next); i < sensors; i = Interlocked.Increment(ref next))
                    {
                        var id = idOf(i);
                        var work = new SensorWork([new SensorWorkItem(position, time, BenchFleet.NewReading(id, i, time, round))], time, shape.Rules, applied[i]);
                        var progress = await grains.GetGrain<ISensorGrain>(id).ApplyAsync(work);
                        applied[i] = progress.AppliedPosition;
                    }
                });
            }

            await Task.WhenAll(callers);
        }
    }

    /// <summary>Entries of the in-memory grain storage, with their size in binary form and base64-encoded (as the durable storage keeps them).</summary>
    private static (int Count, long Bytes, long Base64Bytes) Stored(InMemoryGrainStorage.Store store)
    {
        long bytes = 0;
        long base64 = 0;
        var count = 0;
        foreach (var (_, (_, data)) in store.Entries)
        {
            bytes += data.Length;
            base64 += (data.Length + 2) / 3 * 4;
            count++;
        }

        return (count, bytes, base64);
    }

    /// <summary>A grain with no state and no fields: what an activation costs in Orleans itself.</summary>
    [Alias("bench.IEmptyGrain")]
    public interface IEmptyGrain : IGrainWithIntegerKey
    {
        [Alias("touch")]
        Task TouchAsync();
    }

    public sealed class EmptyGrain : Grain, IEmptyGrain
    {
        public Task TouchAsync() => Task.CompletedTask;
    }

    /// <summary>The grain's effects, counted and dropped.</summary>
    private sealed class CountingEffects : IGrainEffects
    {
        public long Outputs { get; private set; }
        public long Signals { get; private set; }

        public void Emit(GrainOutput output) => Outputs++;

        public void Send(ConditionSignal signal) => Signals++;
    }

    /// <summary>Read-model writes, dropped: the memory measured is the grains'.</summary>
    private sealed class DiscardingWriter : IReadModelWriter
    {
        public Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
