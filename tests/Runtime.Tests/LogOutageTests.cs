using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Runtime.Hosting;
using Runtime.InMemory;

namespace Runtime.Tests;

public sealed class LogOutageTests
{
    private static readonly long T0 = DateTimeOffset.Parse("2026-04-01T12:00:00Z").ToUnixTimeMilliseconds();

    [Fact]
    public async Task A_partition_waits_out_a_log_that_refuses_appends_and_loses_no_message()
    {
        var inner = new InMemoryInboxLog(2);
        var log = new RefusingLog(inner) { Refusals = 5 };
        var store = new InMemoryStore(TimeProvider.System);
        var live = new InMemoryLiveEvents();
        var options = TestCluster.DefaultOptions(2);
        options.SiloId = "only";
        await using var silo = new SiloNode(options, log, store, store, live, RuntimeServiceCollectionExtensions.CreateHosting(new()),
            TimeProvider.System, NullLoggerFactory.Instance);
        await silo.StartAsync(CancellationToken.None);
        await Eventually.Until(() => silo.OwnedPartitions.Count == 2, TimeSpan.FromSeconds(10), "both partitions owned");

        var gateway = new GrainGateway(inner);
        var rule = new RuleDefinition
        {
            Id = "r", Name = "R", Enabled = true, Severity = Severity.Info, Version = 1,
            Target = new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "t", Operator = ComparisonOperator.Greater, Value = 5 },
        };
        await gateway.BroadcastRuleChangeAsync("r", rule, CancellationToken.None);
        // The reading's signal to the rule grain is a grain-to-grain append: the log refuses it five times.
        await gateway.AppendTelemetryAsync([new Reading { SensorId = "s", TimestampMs = T0, Metrics = [new("t", 9)] }], CancellationToken.None);

        await Eventually.Until(async () => (await store.QueryAlertsAsync(new AlertQuery(null, "r", null, null, null, 10), CancellationToken.None)).Count == 1,
            TimeSpan.FromSeconds(15), "the alert opened after the log recovered");
        Assert.Equal(0, log.Refusals);
        // The partitions kept their first lease: the worker paused, it did not fail and get re-acquired.
        Assert.All(await store.LeasesAsync(CancellationToken.None), l => Assert.Equal((1L, "only"), (l.Epoch, l.Owner)));
    }

    private sealed class RefusingLog(IInboxLog inner) : IInboxLog
    {
        private int _refusals;

        public int Refusals { get => Volatile.Read(ref _refusals); init => _refusals = value; }

        public int Partitions => inner.Partitions;

        public ValueTask AppendAsync(int partition, IReadOnlyList<InboxEntry> entries, CancellationToken cancellationToken)
        {
            if (Interlocked.Decrement(ref _refusals) >= 0)
            {
                throw new LogUnavailableException("the log is down (test)");
            }
            Interlocked.Exchange(ref _refusals, 0);
            return inner.AppendAsync(partition, entries, cancellationToken);
        }

        public IInboxReader OpenReader(int partition, long fromOffset) => inner.OpenReader(partition, fromOffset);

        public ValueTask<long> EndOffsetAsync(int partition, CancellationToken cancellationToken) => inner.EndOffsetAsync(partition, cancellationToken);
    }
}
