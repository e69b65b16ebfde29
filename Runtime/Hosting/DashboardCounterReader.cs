using System.Diagnostics.Metrics;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Orleans.Runtime;

namespace Runtime.Hosting;

/// <summary>
/// The Orleans Dashboard's silo start-up, without the two gauges that walk the whole silo every second. The Dashboard's
/// own host (Microsoft.Orleans.Dashboard 10.4.2, internal) reads every instrument of the silo's Orleans meter once a
/// second, and two of them are observed by visiting every activation (<c>orleans-messaging-processing-activation-data</c>, the
/// requests queued across all activations) and every entry of the grain directory's cache
/// (<c>orleans-directory-cache-size</c>): with 100,000 sensor grains in a silo the Dashboard's reader took 13 % of the
/// silo's CPU under load, 10 % in these two (BENCHMARKS.md). This host does what the Dashboard's does (activates the
/// Dashboard grain, tells the silo's Dashboard service the versions, reads the meter into the Dashboard's exporter every
/// second) and leaves those two instruments out. <see cref="Replace"/> swaps it in for the Dashboard's host; when the
/// Dashboard's internals are not as expected (another package version), the Dashboard's host stays.
/// </summary>
internal sealed partial class DashboardCounterReader(
    IServiceProvider services, IGrainFactory grains, ILocalSiloDetails silo, ILogger<DashboardCounterReader> logger) : IHostedService, IDisposable
{
    /// <summary>The instruments left out of the Dashboard's counters.</summary>
    public static readonly string[] Dropped = ["orleans-messaging-processing-activation-data", "orleans-directory-cache-size"];

    private const string Dashboard = "Orleans.Dashboard";
    private static readonly Type? HostType = Type.GetType($"{Dashboard}.DashboardHost, {Dashboard}");
    private static readonly Type? ExporterType = Type.GetType($"{Dashboard}.Implementation.DashboardTelemetryExporter, {Dashboard}");
    private static readonly Type? DashboardGrainType = Type.GetType($"{Dashboard}.Core.IDashboardGrain, {Dashboard}");
    private static readonly Type? SiloClientType = Type.GetType($"{Dashboard}.Core.ISiloGrainClient, {Dashboard}");
    private static readonly MethodInfo? Initialize = DashboardGrainType?.GetMethod("InitializeAsync", [typeof(CancellationToken)]);
    private static readonly MethodInfo? SiloService = SiloClientType?.GetMethod("GrainService", [typeof(SiloAddress)]);
    private static readonly MethodInfo? SetVersion = SiloService?.ReturnType.GetMethod("SetVersion", [typeof(string), typeof(string), typeof(CancellationToken)]);

    private MeterProvider? _provider;

    /// <summary>
    /// Registers this host in place of the Dashboard's (call after <c>AddDashboard</c>); false, leaving the Dashboard's,
    /// when its types are not as this version expects.
    /// </summary>
    public static bool Replace(IServiceCollection services)
    {
        // The Dashboard registers its host as itself, as a hosted service that resolves it, and (Orleans' AddFromExisting)
        // as a participant in the silo's lifecycle that resolves it: all of them go.
        var registrations = services.Where(ResolvesDashboardHost).ToList();
        if (HostType is null || ExporterType is null || Initialize is null || SetVersion is null
            || !typeof(BaseExporter<Metric>).IsAssignableFrom(ExporterType)
            || !registrations.Any(d => d.ServiceType == HostType) || !registrations.Any(d => d.ServiceType == typeof(IHostedService)))
        {
            return false;
        }

        foreach (var registration in registrations)
        {
            services.Remove(registration);
        }
        services.AddHostedService<DashboardCounterReader>();
        return true;
    }

    private static bool ResolvesDashboardHost(ServiceDescriptor d)
    {
        if (HostType is null || d.IsKeyedService)
        {
            return false;
        }
        if (d.ServiceType == HostType || d.ImplementationType == HostType)
        {
            return true;
        }
        if (d.ImplementationFactory is not { } factory)
        {
            return false;
        }
        if (d.ServiceType == typeof(IHostedService) && factory.Method.DeclaringType?.Assembly == HostType.Assembly)
        {
            return true;
        }
        // A factory whose closure names the host's type: sp => sp.GetRequiredService(implementation).
        return factory.Target?.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            .Any(f => f.FieldType == typeof(Type) && Equals(f.GetValue(factory.Target), HostType)) == true;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var exporter = (BaseExporter<Metric>)services.GetRequiredService(ExporterType!);
        // As the Dashboard's host builds it: this silo's meter only (silos in one process share the meter's name),
        // histograms as sums without buckets; and without the two walks.
        var meter = services.GetRequiredService<OrleansInstruments>().Meter;
        _provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(meter.Name)
            .AddView(instrument => instrument.Meter != meter || Dropped.Contains(instrument.Name)
                ? MetricStreamConfiguration.Drop
                : instrument.GetType() is { IsGenericType: true } type && type.GetGenericTypeDefinition() == typeof(Histogram<>)
                    ? new ExplicitBucketHistogramConfiguration { TagKeys = [], Boundaries = [], RecordMinMax = false }
                    : null)
            .AddReader(new PeriodicExportingMetricReader(exporter, 1000, 1000))
            .Build();

        await Task.WhenAll(StepAsync("activate the Dashboard grain", () => (Task)Initialize!.Invoke(grains.GetGrain(DashboardGrainType!, 0L), [cancellationToken])!),
            StepAsync("report the versions to the silo's Dashboard service", () =>
            {
                var service = SiloService!.Invoke(services.GetRequiredService(SiloClientType!), [silo.SiloAddress]);
                return (Task)SetVersion!.Invoke(service, [VersionOf(typeof(SiloAddress).Assembly), Assembly.GetEntryAssembly()?.GetName().Version?.ToString() ?? "1.0.0.0", cancellationToken])!;
            }));
    }

    private async Task StepAsync(string what, Func<Task> step)
    {
        try
        {
            await step();
        }
        catch (Exception e)
        {
            LogStepFailed(logger, e, what);
        }
    }

    private static string VersionOf(Assembly assembly) =>
        $"{assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion} ({assembly.GetName().Version})";

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _provider?.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Orleans Dashboard: could not {What}")]
    private static partial void LogStepFailed(ILogger logger, Exception exception, string what);
}
