using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Runtime;
using Runtime.Hosting;
using Runtime.InMemory;

namespace Runtime.Tests;

/// <summary>
/// N silos in one process on shared in-memory providers, like Orleans' TestCluster. Silos can be added,
/// stopped gracefully (final checkpoint, leases handed over) or killed (no checkpoint, leases left to expire).
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly List<SiloNode> _silos = [];
    private readonly GrainHosting _hosting;
    private readonly Action<SiloOptions>? _configure;
    private readonly CancellationTokenSource _recording = new();
    private readonly Task _recorder;
    private int _next;

    private TestCluster(int partitions, SensorGrainOptions grains, Action<SiloOptions>? configure)
    {
        Partitions = partitions;
        Log = new InMemoryInboxLog(partitions);
        Store = new InMemoryStore(TimeProvider.System);
        Store.CheckpointCommitted += Log.Trim;
        Live = new InMemoryLiveEvents();
        Gateway = new GrainGateway(Log);
        _hosting = RuntimeServiceCollectionExtensions.CreateHosting(grains);
        _configure = configure;
        _recorder = Task.Run(async () =>
        {
            try
            {
                await foreach (var output in Live.SubscribeAsync(_recording.Token))
                {
                    lock (Published) Published.Add(output);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
    }

    public int Partitions { get; }
    public InMemoryInboxLog Log { get; }
    public InMemoryStore Store { get; }
    public InMemoryLiveEvents Live { get; }
    public GrainGateway Gateway { get; }

    /// <summary>Every live event published, duplicates from replays included.</summary>
    public List<GrainOutput> Published { get; } = [];

    public IReadOnlyList<SiloNode> Silos => _silos;

    /// <summary>Short leases and frequent checkpoints; ticks off so that tests drive stream time themselves.</summary>
    public static SiloOptions DefaultOptions(int partitions) => new()
    {
        Partitions = partitions,
        LeaseDuration = TimeSpan.FromMilliseconds(1500),
        RenewInterval = TimeSpan.FromMilliseconds(200),
        CheckpointInterval = TimeSpan.FromMilliseconds(100),
        CheckpointMaxRecords = 25,
        TicksEnabled = false,
        ReadBatchSize = 16,
    };

    public static async Task<TestCluster> StartAsync(int silos, int partitions = 8, SensorGrainOptions? grains = null,
        Action<SiloOptions>? configure = null)
    {
        var cluster = new TestCluster(partitions, grains ?? new SensorGrainOptions(), configure);
        for (var i = 0; i < silos; i++)
        {
            await cluster.AddSiloAsync();
        }
        await cluster.WaitForBalanceAsync();
        return cluster;
    }

    public async Task<SiloNode> AddSiloAsync()
    {
        var options = DefaultOptions(Partitions);
        options.SiloId = $"silo-{_next++}";
        _configure?.Invoke(options);
        var silo = new SiloNode(options, Log, Store, Store, Live, _hosting, TimeProvider.System, NullLoggerFactory.Instance);
        await silo.StartAsync(CancellationToken.None);
        _silos.Add(silo);
        return silo;
    }

    public async Task KillAsync(SiloNode silo)
    {
        await silo.KillAsync();
        _silos.Remove(silo);
    }

    public async Task StopAsync(SiloNode silo)
    {
        await silo.StopAsync();
        _silos.Remove(silo);
    }

    /// <summary>Waits until every partition is run by exactly one running silo and each silo holds its fair share.</summary>
    public Task WaitForBalanceAsync(TimeSpan? timeout = null) => Eventually.Until(() =>
    {
        var owned = _silos.SelectMany(s => s.OwnedPartitions).ToList();
        var fair = (Partitions + _silos.Count - 1) / _silos.Count;
        return owned.Count == Partitions && owned.Distinct().Count() == Partitions && _silos.All(s => s.OwnedPartitions.Count <= fair);
    }, timeout ?? TimeSpan.FromSeconds(20), "partitions balanced over the silos");

    /// <summary>Waits until every record of every partition is applied and checkpointed (and stays so).</summary>
    public async Task WaitForQuiescenceAsync(TimeSpan? timeout = null)
    {
        var stableRounds = 0;
        await Eventually.Until(async () =>
        {
            var committed = await Store.CommittedOffsetsAsync(CancellationToken.None);
            var done = true;
            for (var p = 0; p < Partitions; p++)
            {
                var end = await Log.EndOffsetAsync(p, CancellationToken.None);
                done &= end == 0 || committed.GetValueOrDefault(p) == end;
            }
            stableRounds = done ? stableRounds + 1 : 0;
            return stableRounds >= 3;
        }, timeout ?? TimeSpan.FromSeconds(30), "all partitions processed and checkpointed");
    }

    public List<T> PublishedOf<T>() where T : GrainOutput
    {
        lock (Published) return Published.OfType<T>().ToList();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var silo in _silos.ToArray())
        {
            await silo.KillAsync();
        }
        await _recording.CancelAsync();
        await _recorder;
    }
}

/// <summary>Waiting on a condition with a deadline, instead of sleeping.</summary>
public static class Eventually
{
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
