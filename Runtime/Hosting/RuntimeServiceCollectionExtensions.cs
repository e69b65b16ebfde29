using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runtime.InMemory;

namespace Runtime.Hosting;

public static class RuntimeServiceCollectionExtensions
{
    /// <summary>
    /// The embedded default: in-memory log, state and leases, with a silo hosted in this process.
    /// Configuration: sections "Silo" (<see cref="SiloOptions"/>) and "Grains" (<see cref="SensorGrainOptions"/>).
    /// </summary>
    public static IServiceCollection AddEmbeddedCluster(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SiloOptions>().Bind(configuration.GetSection("Silo")).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<SensorGrainOptions>().Bind(configuration.GetSection("Grains"))
            .Validate(o => o.AllowedLatenessMs is >= 0 and <= 3_600_000, "Grains:AllowedLatenessMs must be between 0 and 3600000")
            .Validate(o => o.LastReadingsCount is >= 1 and <= 100, "Grains:LastReadingsCount must be between 1 and 100")
            .ValidateOnStart();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<IInboxLog>(sp => new InMemoryInboxLog(sp.GetRequiredService<IOptions<SiloOptions>>().Value.Partitions));
        services.AddSingleton<InMemoryStore>();
        services.AddSingleton<ILeaseStore>(sp => sp.GetRequiredService<InMemoryStore>());
        services.AddSingleton<ICheckpointStore>(sp => sp.GetRequiredService<InMemoryStore>());
        services.AddSingleton<IReadStore>(sp => sp.GetRequiredService<InMemoryStore>());
        services.AddSingleton<IRuleStore>(sp => sp.GetRequiredService<InMemoryStore>());
        services.AddSingleton<ILiveEvents, InMemoryLiveEvents>();
        services.AddSingleton<GrainGateway>();
        services.AddSingleton(sp => CreateHosting(sp.GetRequiredService<IOptions<SensorGrainOptions>>().Value));
        services.AddSingleton(sp => new SiloNode(
            sp.GetRequiredService<IOptions<SiloOptions>>().Value,
            sp.GetRequiredService<IInboxLog>(),
            sp.GetRequiredService<ILeaseStore>(),
            sp.GetRequiredService<ICheckpointStore>(),
            sp.GetRequiredService<ILiveEvents>(),
            sp.GetRequiredService<GrainHosting>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>()));
        services.AddHostedService<SiloService>();
        return services;
    }

    public static GrainHosting CreateHosting(SensorGrainOptions options)
    {
        var factory = new GrainFactory(options);
        return new GrainHosting(factory.Activate, factory.SerializeState);
    }

    private sealed class SiloService(SiloNode silo) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => silo.StartAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => silo.StopAsync();
    }
}
