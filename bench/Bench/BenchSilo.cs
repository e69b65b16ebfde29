using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Grains.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Runtime.Hosting;

namespace Bench;

/// <summary>
/// Orleans silos hosted in the benchmark process, and what the benchmarks ask of them. Logs go to standard error
/// (warnings and errors only): standard output carries the benchmark's JSON.
/// </summary>
public static class BenchSilo
{
    /// <summary>
    /// A silo of the system as the Api co-hosts it in embedded mode (<see cref="ClusterHosting.AddClusterServices"/> and
    /// <see cref="ClusterHosting.AddOrleansIotSilo"/>: loopback clustering, in-memory grain storage, log and read models,
    /// partition readers), with <paramref name="settings"/> over the defaults; <paramref name="configure"/> may replace
    /// services of the silo (registered last, so they win).
    /// </summary>
    public static async Task<IHost> StartSystemAsync(IReadOnlyDictionary<string, string?> settings, Action<ISiloBuilder>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddClusterDefaults();
        builder.Configuration.AddInMemoryCollection(settings);
        LogToStandardError(builder.Logging);
        builder.Services.AddClusterServices(builder.Configuration);
        builder.UseOrleans(silo =>
        {
            silo.AddOrleansIotSilo(builder.Configuration);
            configure?.Invoke(silo);
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    /// <summary>A plain Orleans silo: loopback clustering on a free port, Orleans' defaults, nothing of the system.</summary>
    public static async Task<IHost> StartPlainAsync(Action<ISiloBuilder>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        LogToStandardError(builder.Logging);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort: FreeLoopbackPort(), gatewayPort: 0, serviceId: "oiot-bench", clusterId: "oiot-bench");
            configure?.Invoke(silo);
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    /// <summary>The number of sensor grain activations in the cluster (Orleans' management grain).</summary>
    public static async Task<int> SensorActivationsAsync(IGrainFactory grains) =>
        (await grains.GetGrain<IManagementGrain>(0).GetSimpleGrainStatistics())
            .Where(s => s.GrainType == "sensor" || s.GrainType.Contains("SensorGrain", StringComparison.Ordinal))
            .Sum(s => s.ActivationCount);

    /// <summary>The status of every partition's reader.</summary>
    public static Task<PartitionStatus[]> PartitionStatusesAsync(IGrainFactory grains, int partitions) =>
        Task.WhenAll(Enumerable.Range(0, partitions).Select(p => grains.GetGrain<IPartitionGrain>(p).GetStatusAsync(withEnd: true)));

    /// <summary>Managed heap bytes still referenced, after full collections (finalizers run in between).</summary>
    public static long ManagedBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    /// <summary>
    /// Checks <paramref name="condition"/> every <paramref name="pollMs"/> until it holds; fails after
    /// <paramref name="timeout"/>. Returns the time it took.
    /// </summary>
    public static async Task<TimeSpan> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, int pollMs = 20)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            }

            await Task.Delay(pollMs);
        }

        return watch.Elapsed;
    }

    private static void LogToStandardError(ILoggingBuilder logging)
    {
        logging.ClearProviders();
        logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        logging.SetMinimumLevel(LogLevel.Warning);
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
