using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Runtime;
using Runtime.Hosting;
using Runtime.InMemory;

namespace Integration.Tests.Postgres;

/// <summary>In durable mode the cluster page's load comes from the silos' heartbeat rows: a silo on PostgreSQL writes its counters there.</summary>
[Collection(PostgresCollection.Name)]
public sealed class SiloCountersTests(PostgresServer server)
{
    private const int Partitions = 2;
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly long T0 = DateTimeOffset.Parse("2026-01-06T10:00:00Z").ToUnixTimeMilliseconds();

    [Fact]
    public async Task A_silo_on_postgres_heartbeats_its_applied_readings_and_opened_alerts()
    {
        var (store, _) = await server.MigratedStoreAsync();
        await using var _1 = store;
        var log = new InMemoryInboxLog(Partitions);
        var gateway = new GrainGateway(log);
        var options = new SiloOptions
        {
            SiloId = "counting",
            Partitions = Partitions,
            LeaseDuration = TimeSpan.FromMilliseconds(1500),
            RenewInterval = TimeSpan.FromMilliseconds(200),
            CheckpointInterval = TimeSpan.FromMilliseconds(100),
            TicksEnabled = false,
        };
        await using var silo = new SiloNode(options, log, store, store, new InMemoryLiveEvents(),
            RuntimeServiceCollectionExtensions.CreateHosting(new SensorGrainOptions()), TimeProvider.System, NullLoggerFactory.Instance);
        await silo.StartAsync(None);
        await Eventually.Until(() => silo.OwnedPartitions.Count == Partitions, TimeSpan.FromSeconds(30), "both partitions owned");

        var rule = new RuleDefinition
        {
            Id = "warm", Name = "Warm", Enabled = true, Severity = Severity.Info, Version = 1,
            Target = new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "t", Operator = ComparisonOperator.Greater, Value = 25 },
        };
        await gateway.BroadcastRuleChangeAsync(rule.Id, rule, None);
        var readings = Enumerable.Range(0, 15).Select(i => new Reading
        {
            SensorId = $"pg-count-{i % 5}",
            TimestampMs = T0 + i * 1_000,
            Metrics = [new MetricValue("t", i == 14 ? 26 : 20)],
        }).ToArray();
        await gateway.AppendTelemetryAsync(readings, None);

        await Eventually.Until(async () =>
        {
            var row = (await store.SilosAsync(None)).SingleOrDefault(s => s.SiloId == "counting");
            return row is { ReadingsApplied: 15, AlertsOpened: 1 };
        }, TimeSpan.FromSeconds(30), "the membership row counting 15 readings and 1 alert");
        Assert.Equal((15L, 1L), silo.Counters());
    }
}
