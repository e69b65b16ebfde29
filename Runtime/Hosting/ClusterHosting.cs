using System.Net;
using System.Net.Sockets;
using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Dashboard;
using Orleans.Serialization;
using Orleans.Storage;
using Runtime.Idempotency;
using Runtime.InMemory;
using Runtime.Outputs;
using Runtime.Partitions;
using Runtime.Postgres;
using Runtime.RabbitMq;
using StackExchange.Redis;

namespace Runtime.Hosting;

public enum ClusterMode { Embedded, Durable }

/// <summary>
/// How a process joins the system, by <c>Cluster:Mode</c>. <c>Embedded</c> (the default): one process, the Api co-hosts
/// an Orleans silo on loopback with in-memory grain storage, log and read models. <c>Durable</c>: silo processes on Redis
/// clustering and Redis grain storage, RabbitMQ stream queues as the log, PostgreSQL read models; Api nodes are Orleans
/// clients of those silos. Sections: "Silo" (<see cref="SiloOptions"/>), "Grains" (<see cref="SensorGrainOptions"/>),
/// "Orleans" (ClusterId, ServiceId, SiloName, and "Membership" bound to <see cref="ClusterMembershipOptions"/>), and in
/// durable mode "Redis", "Postgres" and "RabbitMq".
/// </summary>
public static partial class ClusterHosting
{
    /// <summary>Membership settings that declare a dead silo within about 2 s (the Orleans defaults take 12 to 20 s).</summary>
    private static readonly Dictionary<string, string?> FastMembership = new()
    {
        ["Orleans:Membership:ProbeTimeout"] = "00:00:01",
        ["Orleans:Membership:NumMissedProbesLimit"] = "2",
        ["Orleans:Membership:NumVotesForDeathDeclaration"] = "1",
        ["Orleans:Membership:TableRefreshTimeout"] = "00:00:02",
        ["Orleans:Membership:IAmAliveTablePublishTimeout"] = "00:00:05",
    };

    public static ClusterMode ModeOf(IConfiguration configuration) => configuration["Cluster:Mode"] switch
    {
        null or "" or "Embedded" or "embedded" => ClusterMode.Embedded,
        "Durable" or "durable" => ClusterMode.Durable,
        var other => throw new InvalidOperationException($"Cluster:Mode is '{other}'; it must be Embedded or Durable."),
    };

    /// <summary>
    /// What Api nodes and silos share: the options, the log, the rule store and read models, live events, the
    /// <see cref="InboxWriter"/>; in durable mode a start-up check that names an unreachable server (registered before
    /// Orleans, so it runs first).
    /// </summary>
    public static IServiceCollection AddClusterServices(this IServiceCollection services, IConfiguration configuration)
    {
        var mode = ModeOf(configuration);
        services.AddOptions<SiloOptions>().Bind(configuration.GetSection("Silo")).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<SensorGrainOptions>().Bind(configuration.GetSection("Grains"))
            .Validate(o => o.AllowedLatenessMs is >= 0 and <= 3_600_000, "Grains:AllowedLatenessMs must be between 0 and 3600000")
            .Validate(o => o.OutsideMaxAgeMs is >= 60_000 and <= PartitionLogic.OutsideKeepMs,
                $"Grains:OutsideMaxAgeMs must be between 60000 and {PartitionLogic.OutsideKeepMs}")
            .Validate(o => o.LastReadingsCount is >= 1 and <= 100, "Grains:LastReadingsCount must be between 1 and 100")
            .Validate(o => o.MaxMetricNames is >= 1 and <= 4096 && o.MaxAttributeNames is >= 1 and <= 4096,
                "Grains:MaxMetricNames and Grains:MaxAttributeNames must be between 1 and 4096")
            .ValidateOnStart();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<InboxWriter>();
        services.AddOptions<OutputOptions>().Bind(configuration.GetSection("Outputs")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OutputOptions>, OutputOptionsValidator>();
        if (mode == ClusterMode.Embedded)
        {
            services.AddSingleton(sp =>
            {
                var outputs = sp.GetRequiredService<IOptions<OutputOptions>>().Value;
                return new InMemoryOutputStreams(outputs.InMemoryCapacity, outputs.KeptStreams());
            });
            services.AddSingleton<IOutputStreams>(sp => sp.GetRequiredService<InMemoryOutputStreams>());
            services.AddSingleton<IInboxLog>(sp => new InMemoryInboxLog(sp.GetRequiredService<IOptions<SiloOptions>>().Value.Partitions));
            services.AddOptions<EmbeddedOptions>().Bind(configuration.GetSection("Embedded")).ValidateOnStart();
            services.AddSingleton<IValidateOptions<EmbeddedOptions>, EmbeddedOptionsValidator>();
            services.AddSingleton(sp => new InMemoryStore(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<InMemoryOutputStreams>(),
                sp.GetRequiredService<IOptions<EmbeddedOptions>>().Value.AggregateRetention));
            services.AddStore<InMemoryStore>();
            services.AddSingleton<ILiveEvents, InMemoryLiveEvents>();
            services.AddSingleton<IIdempotencyRegistry, InMemoryIdempotencyRegistry>();
            return services;
        }

        services.AddOptions<RedisOptions>().Bind(configuration.GetSection("Redis"))
            .Validate(o => !string.IsNullOrWhiteSpace(o.ConnectionString), "Redis:ConnectionString is required in durable mode")
            .ValidateOnStart();
        services.AddOptions<PostgresOptions>().Bind(configuration.GetSection("Postgres")).ValidateOnStart();
        services.AddSingleton<IValidateOptions<PostgresOptions>, PostgresOptionsValidator>();
        services.AddOptions<RabbitMqOptions>().Bind(configuration.GetSection("RabbitMq"))
            .Validate(o => o.Validate().Count == 0, "RabbitMq settings are not valid")
            .ValidateOnStart();
        services.AddSingleton(sp => new PostgresStore(sp.GetRequiredService<IOptions<PostgresOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<PostgresStore>>(),
            sp.GetRequiredService<IOptions<OutputOptions>>().Value.KeptStreams()));
        services.AddStore<PostgresStore>();
        services.AddSingleton(sp => new RabbitMqInboxLog(sp.GetRequiredService<IOptions<RabbitMqOptions>>().Value,
            sp.GetRequiredService<IOptions<SiloOptions>>().Value.Partitions, sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<IInboxLog>(sp => sp.GetRequiredService<RabbitMqInboxLog>());
        services.AddSingleton(sp => new RabbitMqLiveEvents(sp.GetRequiredService<IOptions<RabbitMqOptions>>().Value, sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<ILiveEvents>(sp => sp.GetRequiredService<RabbitMqLiveEvents>());
        services.AddSingleton(sp => new RabbitMqOutputStreams(sp.GetRequiredService<IOptions<RabbitMqOptions>>().Value,
            sp.GetRequiredService<IOptions<OutputOptions>>().Value, sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<IOutputStreams>(sp => sp.GetRequiredService<RabbitMqOutputStreams>());
        services.AddSingleton<IIdempotencyRegistry, RedisIdempotencyRegistry>();
        services.AddHostedService<DurableStartup>();
        return services;
    }

    /// <summary>
    /// An Orleans silo of the system: the grains' storage, clustering and endpoints for the mode, partition placement,
    /// idle collection after <see cref="SiloOptions.IdleDeactivation"/>, the output sink and the partition keeper.
    /// </summary>
    public static ISiloBuilder AddOrleansIotSilo(this ISiloBuilder silo, IConfiguration configuration)
    {
        var mode = ModeOf(configuration);
        var siloOptions = configuration.GetSection("Silo").Get<SiloOptions>() ?? new SiloOptions();
        ConfigureCluster(silo.Services, configuration, mode);
        if (mode == ClusterMode.Embedded)
        {
            var port = siloOptions.Port != 0 ? siloOptions.Port : FreeLoopbackPort();
            silo.UseLocalhostClustering(siloPort: port, gatewayPort: 0, serviceId: ServiceId(configuration), clusterId: ClusterId(configuration));
            var states = new InMemoryGrainStorage.Store();
            silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Name, (sp, _) => new InMemoryGrainStorage(states, sp.GetRequiredService<Serializer>()));
        }
        else
        {
            var redis = RedisConnection(configuration);
            silo.UseRedisClustering(o => o.ConfigurationOptions = redis);
            silo.AddOrleansIotRedisStorage(redis);
            var pod = KubernetesPod.Current;
            if (pod is not null)
            {
                // In a pod: Orleans' Kubernetes hosting beside Redis clustering (it is not a membership provider).
                silo.UseKubernetesHosting();
            }

            var address = IPAddress.Parse(configuration["Silo:AdvertisedAddress"] is { Length: > 0 } advertised ? advertised
                : pod?.IP is { } podIp ? podIp
                : "127.0.0.1");
            silo.ConfigureEndpoints(address, siloOptions.Port != 0 ? siloOptions.Port : 11111,
                siloOptions.GatewayPort != 0 ? siloOptions.GatewayPort : 30000, listenOnAnyHostAddress: false);
            silo.Services.AddHostedService<OutputRelay>();
        }

        silo.Services.AddOptions<ClusterMembershipOptions>().Bind(configuration.GetSection("Orleans:Membership"));
        if (configuration["Orleans:SiloName"] is { Length: > 0 } siloName)
        {
            silo.Configure<Orleans.Configuration.SiloOptions>(o => o.SiloName = siloName);
        }

        return silo.AddOrleansIotGrains(siloOptions);
    }

    /// <summary>
    /// What every silo of the system runs whatever its clustering and storage: partition placement, idle collection after
    /// <see cref="SiloOptions.IdleDeactivation"/>, the shared names of sensor grains, the output sink, the partition
    /// keeper and the drain that stops the partitions first when the silo shuts down. Expects
    /// <see cref="AddClusterServices"/>' services (or equivalents) and a grain storage named
    /// <see cref="GrainStorage.Name"/>.
    /// </summary>
    public static ISiloBuilder AddOrleansIotGrains(this ISiloBuilder silo, SiloOptions siloOptions)
    {
        silo.Services.Configure<GrainCollectionOptions>(o =>
        {
            o.CollectionAge = siloOptions.IdleDeactivation;
            o.CollectionQuantum = siloOptions.IdleDeactivation < TimeSpan.FromMinutes(2) ? siloOptions.IdleDeactivation / 2 : TimeSpan.FromMinutes(1);
        });
        AllowOurExceptions(silo.Services);
        silo.Services.AddPlacementDirector<PartitionPlacement, PartitionPlacementDirector>();
        silo.Services.AddSingleton<SensorNameTable>();
        silo.Services.AddSingleton<GrainReferences>();
        silo.Services.AddSingleton<IOutputSink>(sp =>
        {
            var writer = sp.GetRequiredService<IReadModelWriter>();
            return new OutputSink(sp.GetRequiredService<ILiveEvents>(), writer, groupCommit: writer is not InMemoryStore);
        });
        silo.Services.AddHostedService<PartitionKeeper>();
        silo.Services.AddSingleton<PartitionDrain>();
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<PartitionDrain>());
        // The Orleans Dashboard's collectors (grain statistics, silo counters); an Api node serves its pages at /orleans.
        silo.AddDashboard();
        DashboardCounterReader.Replace(silo.Services); // its host without the two gauges that walk every activation
        return silo;
    }

    /// <summary>The grain storage of the durable cluster: Redis, states in binary form (<see cref="BinaryGrainStorageSerializer"/>).</summary>
    public static ISiloBuilder AddOrleansIotRedisStorage(this ISiloBuilder silo, ConfigurationOptions redis) =>
        silo.AddRedisGrainStorage(GrainStorage.Name, o => o.Configure<Serializer>((options, serializer) =>
        {
            options.ConfigurationOptions = redis;
            options.GrainStorageSerializer = new BinaryGrainStorageSerializer(serializer);
        }));

    /// <summary>An Orleans client of the durable cluster's silos (an Api node in durable mode).</summary>
    public static IClientBuilder AddOrleansIotClient(this IClientBuilder client, IConfiguration configuration)
    {
        ConfigureCluster(client.Services, configuration, ClusterMode.Durable);
        client.UseRedisClustering(o => o.ConfigurationOptions = RedisConnection(configuration));
        AllowOurExceptions(client.Services);
        // A node started before the silos finds their gateways within seconds, not at the default one-minute refresh.
        client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
        client.AddDashboard();
        return client;
    }

    /// <summary>The configuration with the fast membership defaults under what the process was given.</summary>
    public static void AddClusterDefaults(this IConfigurationManager configuration) =>
        configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = FastMembership });

    /// <summary>
    /// Lets Orleans carry the exceptions of this system and of its server clients across grain calls (a rule grain that
    /// cannot write to PostgreSQL fails its caller with the reason): by default it serializes only exceptions of the
    /// Microsoft, System and Azure namespaces, and a caller failed by another one gets a CodecNotFoundException instead.
    /// </summary>
    private static void AllowOurExceptions(IServiceCollection services) =>
        services.Configure<ExceptionSerializationOptions>(o =>
        {
            foreach (var prefix in new[] { "Runtime", "Grains", "Npgsql", "StackExchange.Redis", "RabbitMQ" })
            {
                o.SupportedNamespacePrefixes.Add(prefix);
            }
        });

    private static void ConfigureCluster(IServiceCollection services, IConfiguration configuration, ClusterMode mode) =>
        services.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = ClusterId(configuration);
            o.ServiceId = ServiceId(configuration);
        });

    private static string ClusterId(IConfiguration configuration) => configuration["Orleans:ClusterId"] is { Length: > 0 } id ? id : "oiot";

    private static string ServiceId(IConfiguration configuration) => configuration["Orleans:ServiceId"] is { Length: > 0 } id ? id : "oiot";

    private static ConfigurationOptions RedisConnection(IConfiguration configuration)
    {
        var text = configuration["Redis:ConnectionString"];
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new InvalidOperationException("Redis:ConnectionString is required in durable mode (for example 127.0.0.1:6379).");
        }

        var options = ConfigurationOptions.Parse(text);
        options.AbortOnConnectFail = false;
        return options;
    }

    /// <summary>A free loopback port for the embedded silo's silo-to-silo endpoint (nothing connects to it from outside).</summary>
    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void AddStore<T>(this IServiceCollection services) where T : class, IReadModelWriter, IReadStore, IRuleStore, IAggregateRetention
    {
        services.AddSingleton<IReadModelWriter>(sp => sp.GetRequiredService<T>());
        services.AddSingleton<IReadStore>(sp => sp.GetRequiredService<T>());
        services.AddSingleton<IRuleStore>(sp => sp.GetRequiredService<T>());
        services.AddSingleton<IAggregateRetention>(sp => sp.GetRequiredService<T>());
        services.AddHostedService<AggregateRetentionService>();
    }

    /// <summary>
    /// Durable mode start-up, before Orleans starts: Redis answers, the schema is migrated, the partition count is checked
    /// against the cluster's, the inbox streams, the live exchange and the output streams are declared; any failure stops the process with a
    /// message naming the server.
    /// </summary>
    private sealed partial class DurableStartup(PostgresStore store, RabbitMqInboxLog log, RabbitMqLiveEvents live,
        RabbitMqOutputStreams outputs, IOptions<SiloOptions> silo, IOptions<RedisOptions> redis, ILogger<DurableStartup> logger) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            var partitions = silo.Value.Partitions;
            await redis.Value.CheckAsync(cancellationToken);
            await store.MigrateAsync(cancellationToken);
            await store.EnsureClusterAsync(partitions, cancellationToken);
            await log.EnsureStreamsAsync(partitions, cancellationToken);
            await live.EnsureExchangeAsync(cancellationToken);
            await outputs.EnsureStreamsAsync(cancellationToken);
            LogReady(logger, partitions, log.Options.Describe());
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(Level = LogLevel.Information, Message = "Durable cluster of {Partitions} partitions ready on {Broker}")]
        private static partial void LogReady(ILogger logger, int partitions, string broker);
    }
}

/// <summary>Redis, where the durable cluster keeps its membership and grain states (section "Redis").</summary>
public sealed class RedisOptions
{
    /// <summary>A StackExchange.Redis configuration string, for example <c>127.0.0.1:6379</c>.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>Connects and sends PING; a failure names the server (never a password).</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        var options = ConfigurationOptions.Parse(ConnectionString);
        var server = string.Join(", ", options.EndPoints.Select(e => e.ToString()));
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = 5_000;
        try
        {
            await using var connection = await ConnectionMultiplexer.ConnectAsync(options).WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            await connection.GetDatabase().PingAsync();
        }
        catch (Exception e) when (e is RedisException or TimeoutException or SocketException)
        {
            throw new InvalidOperationException($"Redis server {server} cannot be reached: {e.Message}", e);
        }
    }
}
