using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Runtime.Hosting;
using Runtime.InMemory;

namespace Runtime.Tests;

/// <summary>
/// The log refusing appends for a while (a broker restart or alarm) must not kill a partition worker: the messages it
/// sends to other grains and the ticks it appends wait and go out once the log takes writes again, and the worker
/// keeps its lease (same epoch, no replay).
/// </summary>
public sealed class LogOutageTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static readonly RuleDefinition HotRule = global::Tests.Shared.KnownInput.HotRule;

    [Fact]
    public async Task A_worker_waits_for_the_log_instead_of_dying_when_its_appends_are_refused()
    {
        const int partitions = 2;
        var log = new RefusingLog(new InMemoryInboxLog(partitions));
        var store = new InMemoryStore(TimeProvider.System);
        var options = TestCluster.DefaultOptions(partitions);
        options.SiloId = "silo-0";
        options.TicksEnabled = true;
        options.TickInterval = TimeSpan.FromMilliseconds(100);
        var silo = new SiloNode(options, log, store, store, new InMemoryLiveEvents(),
            RuntimeServiceCollectionExtensions.CreateHosting(new SensorGrainOptions()), TimeProvider.System, NullLoggerFactory.Instance);
        await silo.StartAsync(None);
        try
        {
            await Eventually.Until(() => silo.OwnedPartitions.Count == partitions, TimeSpan.FromSeconds(10), "the silo owns both partitions");
            var epochs = Enumerable.Range(0, partitions).ToDictionary(p => p, p => silo.Worker(p)!.Epoch);
            // The Api's appends are not the worker's: they go to the log directly (while it is down they get 503).
            var gateway = new GrainGateway(log.Inner);
            await gateway.BroadcastRuleChangeAsync(HotRule.Id, HotRule, None);

            log.Refusing = true;
            // A hot reading: its sensor must send a condition signal to the rule grain (an append by the worker).
            // A reading of minutes ago: its minute closes on a wall-clock tick (an append by the worker).
            // They are in different partitions: a worker waiting to send its signal appends no tick meanwhile.
            var hot = SensorIn("hot-", 0, partitions);
            var cold = SensorIn("old-", 1, partitions);
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var old = now - 5 * 60_000;
            await gateway.AppendTelemetryAsync([Reading(hot, now, 35), Reading(cold, old, 20)], None);
            await Eventually.Until(() => log.Refused<MessageEntry>() >= 2 && log.Refused<TickEntry>() >= 2, TimeSpan.FromSeconds(10),
                "the worker's signal and tick appends refused, and tried again");

            log.Refusing = false;
            await Eventually.Until(async () => (await store.QueryAlertsAsync(new AlertQuery(AlertState.Open, HotRule.Id, hot, null, null, 10), None)).Count == 1,
                TimeSpan.FromSeconds(10), "the alert opened once the signal went out");
            await Eventually.Until(async () => (await store.GetAggregatesAsync(cold, old - 60_000, old + 60_000, null, None)).Count == 1,
                TimeSpan.FromSeconds(10), "the old minute closed once the tick went out");

            // Neither worker died: both partitions are still run with the epochs they started with.
            Assert.Equal(epochs, Enumerable.Range(0, partitions).ToDictionary(p => p, p => silo.Worker(p)?.Epoch ?? -1));
        }
        finally
        {
            await silo.KillAsync();
        }
    }

    private static string SensorIn(string prefix, int partition, int partitions) =>
        Enumerable.Range(0, 1000).Select(i => $"{prefix}{i}").First(id => Partitioner.PartitionOf(id, partitions) == partition);

    private static Reading Reading(string sensor, long timestampMs, double temperature) => new()
    {
        SensorId = sensor,
        TimestampMs = timestampMs,
        Metrics = [new MetricValue("temperature", temperature)],
    };

    /// <summary>The in-memory log, refusing appends with <see cref="LogUnavailableException"/> while <see cref="Refusing"/> is set.</summary>
    private sealed class RefusingLog(InMemoryInboxLog inner) : IInboxLog
    {
        private readonly List<InboxEntry> _refused = [];

        public InMemoryInboxLog Inner => inner;

        public volatile bool Refusing;

        public int Partitions => inner.Partitions;

        public int Refused<T>() where T : InboxEntry
        {
            lock (_refused) return _refused.OfType<T>().Count();
        }

        public ValueTask AppendAsync(int partition, IReadOnlyList<InboxEntry> entries, CancellationToken cancellationToken)
        {
            if (Refusing)
            {
                lock (_refused) _refused.AddRange(entries);
                throw new LogUnavailableException("The test log refuses appends.");
            }
            return inner.AppendAsync(partition, entries, cancellationToken);
        }

        public IInboxReader OpenReader(int partition, long fromOffset) => inner.OpenReader(partition, fromOffset);

        public ValueTask<long> EndOffsetAsync(int partition, CancellationToken cancellationToken) => inner.EndOffsetAsync(partition, cancellationToken);
    }
}
