using System.Collections.Concurrent;
using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;
using Orleans.TestingHost;
using Runtime;
using SiloOptions = Runtime.SiloOptions;
using Runtime.Hosting;
using Runtime.InMemory;

namespace Tests.Shared;

/// <summary>
/// N Orleans silos in this process (Orleans' <see cref="InProcessTestCluster"/>, in-memory transport and membership) on
/// providers they all share, as the durable cluster's silos share Redis, RabbitMQ and PostgreSQL: the log, the read
/// models (in memory, or a given writer such as PostgreSQL), live events (every published output is recorded) and a
/// grain storage with ETags (in memory, or one a test configures, such as Redis). A killed silo's grains and partitions
/// reload from what was stored, on the others.
/// </summary>
public sealed class TestSilos : IAsyncDisposable
{
    private readonly CancellationTokenSource _recording = new();
    private readonly Task _recorder;
    private readonly List<GrainOutput> _published = [];

    private TestSilos(InProcessTestCluster cluster, SiloOptions options, InMemoryInboxLog log, InMemoryStore store, InMemoryLiveEvents live,
        InMemoryGrainStorage.Store storage)
    {
        Cluster = cluster;
        Options = options;
        Log = log;
        Store = store;
        Live = live;
        Storage = storage;
        Inbox = new InboxWriter(log, TimeProvider.System);
        _recorder = Task.Run(async () =>
        {
            try
            {
                await foreach (var output in live.SubscribeAsync(_recording.Token))
                {
                    lock (_published) _published.Add(output);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    public InProcessTestCluster Cluster { get; }
    public SiloOptions Options { get; }
    public InMemoryInboxLog Log { get; }
    public InMemoryStore Store { get; }
    public InMemoryLiveEvents Live { get; }
    public InMemoryGrainStorage.Store Storage { get; }
    public InboxWriter Inbox { get; }
    public IGrainFactory Grains => Cluster.Client;

    /// <summary>Frequent checkpoints, no wall-clock ticks (tests move receipt time with <see cref="TickAsync"/>), fast failure detection.</summary>
    public static SiloOptions DefaultOptions() => new()
    {
        Partitions = 8,
        CheckpointInterval = TimeSpan.FromMilliseconds(100),
        CheckpointMaxRecords = 25,
        TicksEnabled = false,
        ReadBatchSize = 16,
        PartitionCheckInterval = TimeSpan.FromMilliseconds(250),
    };

    /// <param name="wrapLog">Gives the silos another view of the shared log (one that fails appends, say); tests append to the log itself.</param>
    /// <param name="writer">Where the silos write the read models (default: <see cref="Store"/>).</param>
    /// <param name="storage">Adds the grain storage named <see cref="GrainStorage.Name"/> to each silo (default: shared memory).</param>
    public static async Task<TestSilos> StartAsync(short silos, Action<SiloOptions>? configure = null, SensorGrainOptions? grains = null,
        Func<InMemoryInboxLog, IInboxLog>? wrapLog = null, IReadModelWriter? writer = null, Action<ISiloBuilder>? storage = null)
    {
        var options = DefaultOptions();
        configure?.Invoke(options);
        var log = new InMemoryInboxLog(options.Partitions);
        var siloLog = wrapLog?.Invoke(log) ?? log;
        var store = new InMemoryStore(TimeProvider.System);
        var live = new InMemoryLiveEvents();
        var records = new InMemoryGrainStorage.Store();
        var builder = new InProcessTestClusterBuilder(silos);
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSilo((_, silo) =>
        {
            silo.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(options));
            silo.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(grains ?? new SensorGrainOptions()));
            silo.Services.AddSingleton(TimeProvider.System);
            silo.Services.AddSingleton(siloLog);
            silo.Services.AddSingleton(writer ?? store);
            silo.Services.AddSingleton<ILiveEvents>(live);
            if (storage is not null)
            {
                storage(silo);
            }
            else
            {
                silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Name, (sp, _) => new InMemoryGrainStorage(records, sp.GetRequiredService<Serializer>()));
            }

            silo.Services.Configure<ClusterMembershipOptions>(m =>
            {
                m.ProbeTimeout = TimeSpan.FromSeconds(1);
                m.NumMissedProbesLimit = 2;
                m.NumVotesForDeathDeclaration = 1;
                m.TableRefreshTimeout = TimeSpan.FromSeconds(1);
                m.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(2);
            });
            silo.AddOrleansIotGrains(options);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        var testSilos = new TestSilos(cluster, options, log, store, live, records);
        await testSilos.WaitForPartitionsAsync();
        return testSilos;
    }

    /// <summary>Every partition's reader answers (from any silo).</summary>
    public Task WaitForPartitionsAsync(TimeSpan? timeout = null) => Waiting.Until(async () =>
    {
        var statuses = await StatusesAsync();
        return statuses.All(s => s is not null);
    }, timeout ?? TimeSpan.FromSeconds(30), "every partition has a reader");

    public async Task<PartitionStatus?[]> StatusesAsync()
    {
        var calls = Enumerable.Range(0, Options.Partitions).Select(async p =>
        {
            try
            {
                return await Grains.GetGrain<IPartitionGrain>(p).GetStatusAsync(withEnd: true).WaitAsync(Runtime.Partitions.PartitionGrain.EndOffsetWait + TimeSpan.FromSeconds(2));
            }
            catch (Exception)
            {
                return null;
            }
        });
        return await Task.WhenAll(calls);
    }

    /// <summary>Appends a tick to every partition: receipt time reaches <paramref name="timeMs"/> (closing what is due by then).</summary>
    public Task TickAsync(long timeMs) => Task.WhenAll(Enumerable.Range(0, Options.Partitions)
        .Select(p => Log.AppendAsync(p, [new TickEntry(timeMs)], CancellationToken.None).AsTask()));

    /// <summary>Waits until every record of every partition is applied and committed (and stays so for a few rounds).</summary>
    public async Task WaitForQuiescenceAsync(TimeSpan? timeout = null)
    {
        var stableRounds = 0;
        await Waiting.Until(async () =>
        {
            var done = true;
            foreach (var status in await StatusesAsync())
            {
                done &= status is not null && status.CommittedOffset == status.EndOffset;
            }

            stableRounds = done ? stableRounds + 1 : 0;
            return stableRounds >= 3;
        }, timeout ?? TimeSpan.FromSeconds(60), "all partitions applied and committed");
    }

    public List<T> PublishedOf<T>() where T : GrainOutput
    {
        lock (_published) return _published.OfType<T>().ToList();
    }

    public async ValueTask DisposeAsync()
    {
        await _recording.CancelAsync();
        await _recorder;
        try
        {
            await Cluster.StopAllSilosAsync();
        }
        finally
        {
            await Cluster.DisposeAsync();
        }
    }
}

/// <summary>Waiting on a condition with a deadline, instead of sleeping.</summary>
public static class Waiting
{
    /// <summary>Waits until <paramref name="probe"/> returns a value (not null) and returns it.</summary>
    public static async Task<T> Value<T>(Func<Task<T?>> probe, TimeSpan timeout, string what) where T : class
    {
        T? value = null;
        await Until(async () => (value = await probe()) is not null, timeout, what);
        return value!;
    }

    public static Task Until(Func<bool> condition, TimeSpan timeout, string what) => Until(() => Task.FromResult(condition()), timeout, what);

    public static async Task Until(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            }

            await Task.Delay(20);
        }
    }
}
