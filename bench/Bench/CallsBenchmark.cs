using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Concurrency;

namespace Bench;

/// <summary>
/// The ceiling of one grain per device: how many awaited grain calls per second one Orleans silo completes, to
/// <c>--grains</c> grains (default 10,000) with <c>--in-flight</c> calls (default 1,000) outstanding at all times, on a
/// plain silo in this process (loopback clustering, Orleans' defaults, none of the system's services). The callers are
/// outside any grain, as the Api's are; a call's grain does nothing but answer. A warm-up round calls every grain once
/// (activating it), <c>--warmup-seconds</c> (default 2) of the same load let the JIT reach its optimized code, then
/// <c>--runs</c> timed runs of <c>--seconds</c> each; the figure is their median. The same for one-way calls, with at
/// most <c>--one-way-window</c> (default 10,000) sent and not yet received. Run it with the GC of the Api and the silos (server GC:
/// <c>DOTNET_gcServer=1</c>, as bench/run.sh does); the JSON says which GC ran.
/// Beside it, the same awaited calls made from inside <c>--caller-grains</c> grains (default 8, as the log's 8 partition
/// readers call the sensor grains), the same number in flight in all: each caller grain keeps its share outstanding
/// and takes every answer on its own activation, as a partition does.
/// </summary>
public static class CallsBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = new Options(args);
        var grainCount = options.Int("grains", 10_000);
        var inFlight = options.Int("in-flight", 1_000);
        var seconds = options.Double("seconds", 3);
        var runs = options.Int("runs", 3);
        var warmup = options.Double("warmup-seconds", 2);
        var oneWayWindow = options.Int("one-way-window", 10_000);
        var callerGrains = options.Int("caller-grains", 8);
        if (grainCount < 1 || inFlight < 1 || seconds <= 0 || runs < 1 || warmup < 0 || oneWayWindow < 1 || callerGrains < 1 || callerGrains > inFlight)
        {
            Console.Error.WriteLine("--grains, --in-flight, --seconds, --runs, --one-way-window and --caller-grains must be positive, --caller-grains at most --in-flight, --warmup-seconds not negative");
            return 2;
        }

        var window = new OneWayWindow(oneWayWindow);
        using var host = await BenchSilo.StartPlainAsync(silo => silo.Services.AddSingleton(window));
        var factory = host.Services.GetRequiredService<IGrainFactory>();
        var grains = Enumerable.Range(0, grainCount).Select(i => factory.GetGrain<IPingGrain>(i)).ToArray();

        // Warm-up round: every grain once.
        await Task.WhenAll(Enumerable.Range(0, Math.Min(inFlight, grainCount)).Select(async w =>
        {
            for (var i = w; i < grainCount; i += inFlight)
            {
                await grains[i].PingAsync(i);
            }
        }));

        await AwaitedAsync(grains, inFlight, TimeSpan.FromSeconds(warmup));
        await OneWayAsync(grains, window, TimeSpan.FromSeconds(warmup));
        var awaited = new List<double>();
        for (var run = 0; run < runs; run++)
        {
            awaited.Add(await AwaitedAsync(grains, inFlight, TimeSpan.FromSeconds(seconds)));
        }

        var oneWay = new List<double>();
        for (var run = 0; run < runs; run++)
        {
            oneWay.Add(await OneWayAsync(grains, window, TimeSpan.FromSeconds(seconds)));
        }

        var callers = Enumerable.Range(0, callerGrains).Select(c => factory.GetGrain<ICallerGrain>(c)).ToArray();
        await FromGrainsAsync(callers, grainCount, inFlight, TimeSpan.FromSeconds(warmup));
        var fromGrains = new List<double>();
        for (var run = 0; run < runs; run++)
        {
            fromGrains.Add(await FromGrainsAsync(callers, grainCount, inFlight, TimeSpan.FromSeconds(seconds)));
        }

        await host.StopAsync();
        var result = new Dictionary<string, object>
        {
            ["benchmark"] = "calls",
            ["silo"] = "plain Orleans silo in process (loopback clustering, defaults)",
            ["serverGC"] = System.Runtime.GCSettings.IsServerGC,
            ["grains"] = grainCount,
            ["inFlight"] = inFlight,
            ["warmupSeconds"] = warmup,
            ["secondsPerRun"] = seconds,
            ["runs"] = runs,
            ["awaitedCallsPerSecond"] = Math.Round(ParseBenchmark.Median(awaited)),
            ["awaitedRuns"] = awaited.Select(r => Math.Round(r)).ToArray(),
            ["oneWayWindow"] = oneWayWindow,
            ["oneWayCallsPerSecond"] = Math.Round(ParseBenchmark.Median(oneWay)),
            ["oneWayRuns"] = oneWay.Select(r => Math.Round(r)).ToArray(),
            ["callerGrains"] = callerGrains,
            ["fromGrainsCallsPerSecond"] = Math.Round(ParseBenchmark.Median(fromGrains)),
            ["fromGrainsRuns"] = fromGrains.Select(r => Math.Round(r)).ToArray(),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>
    /// <paramref name="inFlight"/> callers each await one call after the other, caller w calling grains w, w + inFlight,
    /// … round the fleet, until <paramref name="duration"/> is over; calls per second until the last answer.
    /// </summary>
    private static async Task<double> AwaitedAsync(IPingGrain[] grains, int inFlight, TimeSpan duration)
    {
        var watch = Stopwatch.StartNew();
        var callers = Enumerable.Range(0, inFlight).Select(w => Task.Run(async () =>
        {
            long calls = 0;
            var i = w % grains.Length;
            while (watch.Elapsed < duration)
            {
                await grains[i].PingAsync(w);
                calls++;
                i = (i + inFlight) % grains.Length;
            }

            return calls;
        })).ToArray();
        var total = (await Task.WhenAll(callers)).Sum();
        return total / watch.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// The caller grains each keep their share of <paramref name="inFlight"/> calls outstanding until
    /// <paramref name="duration"/> is over; calls per second until the last caller has its last answer.
    /// </summary>
    private static async Task<double> FromGrainsAsync(ICallerGrain[] callers, int grainCount, int inFlight, TimeSpan duration)
    {
        var watch = Stopwatch.StartNew();
        var calls = await Task.WhenAll(callers.Select((caller, c) =>
            caller.CallAsync(grainCount, c, callers.Length, inFlight / callers.Length + (c < inFlight % callers.Length ? 1 : 0), duration)));
        return calls.Sum() / watch.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// One-way calls round the fleet from a few senders, each taking a slot of the window before sending (a grain frees
    /// one on receipt), until <paramref name="duration"/> is over; calls per second until the last one is received.
    /// </summary>
    private static async Task<double> OneWayAsync(IPingGrain[] grains, OneWayWindow window, TimeSpan duration)
    {
        var watch = Stopwatch.StartNew();
        var senders = Enumerable.Range(0, Environment.ProcessorCount * 2).Select(s => Task.Run(async () =>
        {
            long sent = 0;
            var i = s % grains.Length;
            while (watch.Elapsed < duration)
            {
                await window.Slots.WaitAsync();
                _ = grains[i].TouchAsync();
                sent++;
                i = (i + 7919) % grains.Length;
            }

            return sent;
        })).ToArray();
        var total = (await Task.WhenAll(senders)).Sum();
        await window.DrainAsync();
        return total / watch.Elapsed.TotalSeconds;
    }
}

[Alias("bench.IPingGrain")]
public interface IPingGrain : IGrainWithIntegerKey
{
    [Alias("ping")]
    Task<int> PingAsync(int value);

    [Alias("touch"), OneWay]
    Task TouchAsync();
}

/// <summary>Answers at once; frees a slot of the one-way window on each one-way call.</summary>
public sealed class PingGrain(OneWayWindow window) : Grain, IPingGrain
{
    public Task<int> PingAsync(int value) => Task.FromResult(value + 1);

    public Task TouchAsync()
    {
        window.Slots.Release();
        return Task.CompletedTask;
    }
}

[Alias("bench.ICallerGrain")]
public interface ICallerGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Keeps <paramref name="inFlight"/> awaited calls to the ping grains outstanding for <paramref name="duration"/>,
    /// caller <paramref name="caller"/> of <paramref name="callers"/> calling the grains <paramref name="caller"/>,
    /// <paramref name="caller"/> + <paramref name="callers"/>, … round the fleet; returns how many calls it completed.
    /// </summary>
    [Alias("call")]
    Task<long> CallAsync(int grainCount, int caller, int callers, int inFlight, TimeSpan duration);
}

/// <summary>A grain that calls the ping grains, its answers taken on its own activation (as a partition reader's are).</summary>
public sealed class CallerGrain : Grain, ICallerGrain
{
    private IPingGrain[] _grains = [];

    public async Task<long> CallAsync(int grainCount, int caller, int callers, int inFlight, TimeSpan duration)
    {
        if (_grains.Length != grainCount)
        {
            _grains = Enumerable.Range(0, grainCount).Select(i => GrainFactory.GetGrain<IPingGrain>(i)).ToArray();
        }

        var watch = Stopwatch.StartNew();
        var stride = callers * inFlight;
        var loops = Enumerable.Range(0, inFlight).Select(async w =>
        {
            long calls = 0;
            var i = (caller + w * callers) % grainCount;
            while (watch.Elapsed < duration)
            {
                await _grains[i].PingAsync(w);
                calls++;
                i = (i + stride) % grainCount;
            }

            return calls;
        }).ToArray();
        return (await Task.WhenAll(loops)).Sum();
    }
}

/// <summary>How many one-way calls may be sent and not yet received.</summary>
public sealed class OneWayWindow(int size)
{
    public SemaphoreSlim Slots { get; } = new(size, size);

    /// <summary>Completes when every call sent has been received (all slots free again).</summary>
    public async Task DrainAsync()
    {
        for (var i = 0; i < size; i++)
        {
            await Slots.WaitAsync();
        }

        Slots.Release(size);
    }
}
