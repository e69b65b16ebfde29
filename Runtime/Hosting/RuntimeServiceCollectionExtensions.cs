using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Runtime.InMemory;
using Runtime.Postgres;
using Runtime.RabbitMq;

namespace Runtime.Hosting;

public static partial class RuntimeServiceCollectionExtensions
{
    /// <summary>
    /// The cluster as configured by <c>Cluster:Mode</c>: <c>Embedded</c> (default: in-memory log, state and leases,
    /// nothing shared with other processes) or <c>Durable</c> (RabbitMQ stream queues as the log, PostgreSQL for
    /// leases, checkpoints and read models). With <paramref name="hostSilo"/>, this process also runs a silo.
    /// Sections: "Silo" (<see cref="SiloOptions"/>), "Grains" (<see cref="SensorGrainOptions"/>), and in durable
    /// mode "Postgres" (<see cref="PostgresOptions"/>) and "RabbitMq" (<see cref="RabbitMqOptions"/>).
    /// </summary>
    public static IServiceCollection AddCluster(this IServiceCollection services, IConfiguration configuration, bool hostSilo)
    {
        var mode = ModeOf(configuration);
        services.AddOptions<SiloOptions>().Bind(configuration.GetSection("Silo")).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<SensorGrainOptions>().Bind(configuration.GetSection("Grains"))
            .Validate(o => o.AllowedLatenessMs is >= 0 and <= 3_600_000, "Grains:AllowedLatenessMs must be between 0 and 3600000")
            .Validate(o => o.LastReadingsCount is >= 1 and <= 100, "Grains:LastReadingsCount must be between 1 and 100")
            .ValidateOnStart();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<GrainGateway>();
        services.AddSingleton(sp => CreateHosting(sp.GetRequiredService<IOptions<SensorGrainOptions>>().Value));
        if (mode == ClusterMode.Embedded)
        {
            services.AddSingleton<IInboxLog>(sp => new InMemoryInboxLog(sp.GetRequiredService<IOptions<SiloOptions>>().Value.Partitions));
            services.AddSingleton(sp =>
            {
                // Log entries below a committed checkpoint are never read again: the embedded log keeps only the rest.
                var store = new InMemoryStore(sp.GetRequiredService<TimeProvider>());
                store.CheckpointCommitted += ((InMemoryInboxLog)sp.GetRequiredService<IInboxLog>()).Trim;
                return store;
            });
            services.AddStore<InMemoryStore>();
            services.AddSingleton<ILiveEvents, InMemoryLiveEvents>();
        }
        else
        {
            services.AddOptions<PostgresOptions>().Bind(configuration.GetSection("Postgres")).ValidateOnStart();
            services.AddSingleton<IValidateOptions<PostgresOptions>, PostgresOptionsValidator>();
            services.AddOptions<RabbitMqOptions>().Bind(configuration.GetSection("RabbitMq"))
                .Validate(o => o.Validate().Count == 0, "RabbitMq settings are not valid")
                .ValidateOnStart();
            services.AddSingleton(sp => new PostgresStore(sp.GetRequiredService<IOptions<PostgresOptions>>().Value,
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<PostgresStore>>()));
            services.AddStore<PostgresStore>();
            services.AddSingleton(sp => new RabbitMqInboxLog(sp.GetRequiredService<IOptions<RabbitMqOptions>>().Value,
                sp.GetRequiredService<IOptions<SiloOptions>>().Value.Partitions, sp.GetRequiredService<ILoggerFactory>()));
            services.AddSingleton<IInboxLog>(sp => sp.GetRequiredService<RabbitMqInboxLog>());
            services.AddSingleton(sp => new RabbitMqLiveEvents(sp.GetRequiredService<IOptions<RabbitMqOptions>>().Value, sp.GetRequiredService<ILoggerFactory>()));
            services.AddSingleton<ILiveEvents>(sp => sp.GetRequiredService<RabbitMqLiveEvents>());
            // Registered before the silo: hosted services start in order, so the servers are checked first.
            services.AddHostedService<DurableStartup>();
        }
        if (hostSilo)
        {
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
        }
        return services;
    }

    public static ClusterMode ModeOf(IConfiguration configuration) => configuration["Cluster:Mode"] switch
    {
        null or "" or "Embedded" or "embedded" => ClusterMode.Embedded,
        "Durable" or "durable" => ClusterMode.Durable,
        var other => throw new InvalidOperationException($"Cluster:Mode is '{other}'; it must be Embedded or Durable."),
    };

    private static void AddStore<T>(this IServiceCollection services) where T : class, ILeaseStore, ICheckpointStore, IReadStore, IRuleStore
    {
        services.AddSingleton<ILeaseStore>(sp => sp.GetRequiredService<T>());
        services.AddSingleton<ICheckpointStore>(sp => sp.GetRequiredService<T>());
        services.AddSingleton<IReadStore>(sp => sp.GetRequiredService<T>());
        services.AddSingleton<IRuleStore>(sp => sp.GetRequiredService<T>());
    }

    public static GrainHosting CreateHosting(SensorGrainOptions options)
    {
        var factory = new GrainFactory(options);
        return new GrainHosting(factory.Activate, factory.SerializeState);
    }

    /// <summary>
    /// Durable mode start-up: the schema is migrated, the partition count is checked against the cluster's, the
    /// streams and the live exchange are declared; any failure stops the process with a message naming the server.
    /// Afterwards, expired minute aggregates are deleted every hour.
    /// </summary>
    private sealed partial class DurableStartup(PostgresStore store, RabbitMqInboxLog log, RabbitMqLiveEvents live,
        IOptions<SiloOptions> silo, ILogger<DurableStartup> logger) : BackgroundService
    {
        public override async Task StartAsync(CancellationToken cancellationToken)
        {
            var partitions = silo.Value.Partitions;
            await store.MigrateAsync(cancellationToken);
            await store.EnsureClusterAsync(partitions, cancellationToken);
            await log.EnsureStreamsAsync(partitions, cancellationToken);
            await live.EnsureExchangeAsync(cancellationToken);
            LogReady(logger, partitions, log.Options.Describe());
            await base.StartAsync(cancellationToken);
        }

        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await store.DeleteExpiredAggregatesAsync(stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogRetentionFailed(logger, e);
                }
            }
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "Durable cluster of {Partitions} partitions ready on {Broker}")]
        private static partial void LogReady(ILogger logger, int partitions, string broker);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Deleting expired minute aggregates failed; trying again in an hour")]
        private static partial void LogRetentionFailed(ILogger logger, Exception exception);
    }

    private sealed class SiloService(SiloNode silo) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => silo.StartAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => silo.StopAsync();
    }
}

public enum ClusterMode { Embedded, Durable }
