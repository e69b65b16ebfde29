using System.Collections.Immutable;
using System.Text;
using Grains.Abstractions;
using Runtime;
using Runtime.InMemory;

namespace Integration.Tests.Postgres;

/// <summary>The same checkpoints, commands and rule changes through both stores give the same answers to every query.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ParityTests(PostgresServer server)
{
    private const int Partitions = 4;
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly long T0 = DateTimeOffset.Parse("2026-01-05T10:00:00Z").ToUnixTimeMilliseconds();

    private static readonly string[] SensorIds = ["s-a", "S-b", "s-c", "Z9", "garage-1", "hw-7", "n\u00f6de", "s-d", "s-e", "s-f"];
    private static readonly string[] Locations = ["Garden", "garage", "Kitchen", "Jard\u00edn", "50%_off"];
    private static readonly string[] Models = ["HW-MD202", "hw-x", "AB"];
    private static readonly string[] Metrics = ["temperature", "humidity", "Zeta", "alpha", "light"];
    private static readonly string[] RuleIds = ["r1", "r2", "R3"];
    private static readonly string[] Devices = ["d0", "d1", "d2"];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Same_checkpoints_give_the_same_reads_as_the_in_memory_store(int seed)
    {
        var (pg, _) = await server.MigratedStoreAsync();
        await using var _1 = pg;
        var parity = new StoreParity<InMemoryStore, Runtime.Postgres.PostgresStore>(new InMemoryStore(TimeProvider.System), pg);
        var random = new Random(seed);
        var started = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        await parity.BothAsync("EnsureCluster", s => s.EnsureClusterAsync(Partitions, None));
        for (var p = 0; p < Partitions; p++)
        {
            var partition = p;
            await parity.BothAsync($"TryAcquire({p})", async s => (await s.TryAcquireAsync(partition, "silo", TimeSpan.FromMinutes(5), None))?.Epoch);
        }
        var alertIds = new List<string>();
        var offsets = new long[Partitions];
        for (var i = 0; i < 40; i++)
        {
            var partition = random.Next(Partitions);
            // Now and then a stale writer: its checkpoint must be refused by both stores and change nothing.
            var epoch = random.Next(8) == 0 ? 0 : 1;
            offsets[partition] += random.Next(1, 50);
            var checkpoint = new Checkpoint(partition, epoch, offsets[partition], T0 + i * 1000,
                random.Next(3) == 0 ? Rules(random, i) : null, Grains(random, i), Outputs(random, i, alertIds));
            var committed = await parity.BothAsync($"Commit #{i}", s => s.CommitAsync(checkpoint, None));
            Assert.Equal(epoch == 1, committed);
            if (random.Next(4) == 0)
            {
                var device = Devices[random.Next(Devices.Length)];
                await parity.BothAsync($"TakePendingCommands({device}) after #{i}", s => s.TakePendingCommandsAsync(device, None));
            }
        }

        await parity.AssertSameReadsAsync(Partitions, SensorIds, alertIds.Distinct().ToList(), RuleIds, T0);
        await AssertSameCommandHistoryAsync(parity, "before the last deliveries", started);
        foreach (var device in Devices.Append("missing"))
        {
            await parity.BothAsync($"TakePendingCommands({device})", s => s.TakePendingCommandsAsync(device, None));
            await parity.BothAsync($"TakePendingCommands({device}) again", s => s.TakePendingCommandsAsync(device, None));
        }
        await AssertSameCommandHistoryAsync(parity, "after every delivery", started);
        var history = await parity.Expected.ListCommandsAsync(Devices[0], 1000, None);
        Assert.True(history.Count >= 2 && history.All(c => c.DeliveredAtMs is not null), $"{history.Count} commands of {Devices[0]}");
        // The scenario must exercise what it claims to.
        var sensors = await parity.Expected.ListSensorsAsync(null, 0, 1000, None);
        Assert.True(sensors.Total >= 6, $"{sensors.Total} sensors");
        Assert.True((await parity.Expected.QueryAlertsAsync(new AlertQuery(null, null, null, null, null, 1000), None)).Count >= 5);
    }

    /// <summary>
    /// The command history of every device matches, newest first, for several limits. Delivery times come from the
    /// database clock in PostgreSQL and from the process clock in memory, so they are compared as delivered or not,
    /// and each must lie between the start of the test and now.
    /// </summary>
    private static async Task AssertSameCommandHistoryAsync(StoreParity<InMemoryStore, Runtime.Postgres.PostgresStore> parity, string when, long startedMs)
    {
        foreach (var device in Devices.Append("missing"))
        {
            foreach (var limit in new[] { 1000, 2, 0 })
            {
                await parity.BothAsync($"ListCommands({device}, {limit}) {when}", async s =>
                {
                    var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1000;
                    var list = await s.ListCommandsAsync(device, limit, None);
                    Assert.All(list, c => Assert.True(c.DeliveredAtMs is null || (c.DeliveredAtMs >= startedMs - 1000 && c.DeliveredAtMs <= now),
                        $"{c.Command.CommandId} delivered at {c.DeliveredAtMs}, test started at {startedMs}"));
                    return list.Select(c => (c.Command, Delivered: c.DeliveredAtMs is not null)).ToList();
                });
            }
        }
    }

    [Fact]
    public async Task Rules_crud_and_versions_match_the_in_memory_store()
    {
        var (pg, _) = await server.MigratedStoreAsync();
        await using var _1 = pg;
        var parity = new StoreParity<InMemoryStore, Runtime.Postgres.PostgresStore>(new InMemoryStore(TimeProvider.System), pg);

        Assert.Equal(1L, await parity.BothAsync("NextVersion", s => s.NextVersionAsync(None)));
        Assert.Equal(2L, await parity.BothAsync("NextVersion", s => s.NextVersionAsync(None)));
        var b = Rule("b", 2, 0) with { Target = new RuleTarget { Kind = TargetKind.Sensors, SensorIds = ["x", "y"] } };
        var a = Rule("a", 3, 1) with { ControlAction = new ControlAction { Command = "fan", Parameters = new() { ["speed"] = "high" } } };
        var upper = Rule("B", 4, 2);
        Assert.True(await parity.BothAsync("Create b", s => s.TryCreateAsync(b, None)));
        Assert.True(await parity.BothAsync("Create a", s => s.TryCreateAsync(a, None)));
        Assert.True(await parity.BothAsync("Create B", s => s.TryCreateAsync(upper, None)));
        Assert.False(await parity.BothAsync("Create a again", s => s.TryCreateAsync(a with { Name = "dup" }, None)));
        Assert.Equal(["B", "a", "b"], (await parity.BothAsync("List", s => s.ListAsync(None))).Select(r => r.Id));
        await parity.BothAsync("Get a", s => s.GetAsync("a", None));
        await parity.BothAsync("Get b", s => s.GetAsync("b", None));
        Assert.Null(await parity.BothAsync("Get missing", s => s.GetAsync("missing", None)));

        var version = await parity.BothAsync("NextVersion", s => s.NextVersionAsync(None));
        Assert.Equal(3L, version);
        Assert.True(await parity.BothAsync("Update a", s => s.TryUpdateAsync(a with { Enabled = false, Version = version }, None)));
        Assert.False(await parity.BothAsync("Update missing", s => s.TryUpdateAsync(Rule("missing", version, 0), None)));
        Assert.Equal((false, 3L), (await parity.BothAsync("Get a", s => s.GetAsync("a", None))) is { } got ? (got.Enabled, got.Version) : default);
        Assert.True(await parity.BothAsync("Delete b", s => s.TryDeleteAsync("b", None)));
        Assert.False(await parity.BothAsync("Delete b again", s => s.TryDeleteAsync("b", None)));
        Assert.Equal(["B", "a"], (await parity.BothAsync("List", s => s.ListAsync(None))).Select(r => r.Id));
        Assert.Equal(4L, await parity.BothAsync("NextVersion", s => s.NextVersionAsync(None)));
    }

    private static RuleDefinition Rule(string id, long version, int variant) => new()
    {
        Id = id,
        Name = $"Rule {id} <{variant}>",
        Enabled = true,
        Severity = (Severity)(variant % 5),
        Version = version,
        CooldownSeconds = variant * 30,
        Target = variant % 2 == 0
            ? new RuleTarget { Kind = TargetKind.Location, Location = Locations[variant % Locations.Length] }
            : new RuleTarget { Kind = TargetKind.All },
        Condition = variant % 3 == 2
            ? new RuleCondition { Kind = ConditionKind.Offline, Minutes = 5 }
            : new RuleCondition
            {
                Kind = ConditionKind.Threshold,
                Metric = Metrics[variant % Metrics.Length],
                Source = (ConditionSource)(variant % 7),
                Operator = (ComparisonOperator)(variant % 6),
                Value = 30.5 + variant,
                ForMinutes = variant % 2,
            },
    };

    private static IReadOnlyList<RuleDefinition> Rules(Random random, int i) =>
        RuleIds.Where(_ => random.Next(3) != 0).Select((id, k) => Rule(id, i + 1, i + k) with
        {
            Target = k == 1 ? new RuleTarget { Kind = TargetKind.Sensors, SensorIds = ImmutableArray.Create(SensorIds[0], SensorIds[1]) } : Rule(id, 0, i + k).Target,
        }).ToList();

    private static IReadOnlyList<GrainRecord> Grains(Random random, int i)
    {
        var ids = SensorIds.Select(GrainId.Sensor).Concat(RuleIds.Select(GrainId.Rule)).Where(_ => random.Next(3) == 0).ToList();
        return ids.Select(id => new GrainRecord(id,
            Encoding.UTF8.GetBytes($"{{\"checkpoint\":{i},\"key\":\"{id.Key}\",\"x\":{random.NextDouble()}}}"),
            random.Next(3) == 0 ? null : T0 + random.Next(600_000),
            random.Next(2) == 0 ? null : Enumerable.Range(0, random.Next(0, 3)).ToDictionary(p => p, p => new MessageId(p, random.Next(1000), random.Next(3)))))
            .ToList();
    }

    private static IReadOnlyList<GrainOutput> Outputs(Random random, int i, List<string> alertIds)
    {
        var outputs = new List<GrainOutput>();
        var n = random.Next(0, 12);
        for (var k = 0; k < n; k++)
        {
            var sensor = SensorIds[random.Next(SensorIds.Length)];
            switch (random.Next(4))
            {
                case 0:
                    outputs.Add(new SensorSummary
                    {
                        SensorId = sensor,
                        LastSeenMs = T0 + i * 1000 + k,
                        Metadata = random.Next(4) == 0 ? null : new SensorMetadata
                        {
                            Location = random.Next(5) == 0 ? null : Locations[random.Next(Locations.Length)],
                            Model = random.Next(5) == 0 ? null : Models[random.Next(Models.Length)],
                            Owner = random.Next(2) == 0 ? null : "ops",
                            Extra = random.Next(3) == 0 ? new Dictionary<string, string> { ["floor"] = "2", ["b"] = "x" } : null,
                        },
                        Latest = Metrics.Where(_ => random.Next(2) == 0).ToDictionary(m => m, _ => Value(random)),
                        Attributes = random.Next(2) == 0 ? null : new Dictionary<string, string> { ["light"] = "on", ["mode"] = $"m{k}" },
                        LateCount = random.Next(5),
                    });
                    break;
                case 1:
                    outputs.Add(new MinuteAggregate
                    {
                        SensorId = sensor,
                        MinuteMs = T0 + random.Next(5) * 60_000L,
                        Metrics = Metrics.Where(_ => random.Next(2) == 0).Append("temperature").Distinct().Order(StringComparer.Ordinal)
                            .Select(m => new MetricAggregate
                            {
                                Metric = m,
                                Count = random.Next(1, 60),
                                Min = Value(random),
                                Max = Value(random),
                                Sum = Value(random) * 10,
                                First = Value(random),
                                Last = Value(random),
                            }).ToArray(),
                    });
                    break;
                case 2:
                    var rule = RuleIds[random.Next(RuleIds.Length)];
                    var started = T0 + random.Next(6) * 30_000L;
                    var alert = new Alert
                    {
                        Id = AlertIds.For(rule, 1, sensor, started),
                        RuleId = rule,
                        RuleName = $"Rule {rule}",
                        RuleVersion = 1,
                        SensorId = sensor,
                        Severity = (Severity)random.Next(5),
                        State = AlertState.Open,
                        StartedAtMs = started,
                        OpenedAtMs = started + random.Next(2) * 1000,
                        Value = random.Next(3) == 0 ? null : Value(random),
                        Threshold = random.Next(3) == 0 ? null : 30,
                        Message = $"temperature {k} > 30",
                    };
                    alertIds.Add(alert.Id);
                    outputs.Add(new AlertEvent { Kind = AlertEventKind.Opened, Alert = alert });
                    if (random.Next(2) == 0)
                    {
                        // Opened and resolved (or acknowledged) within one checkpoint: the last version wins.
                        outputs.Add(random.Next(2) == 0
                            ? new AlertEvent { Kind = AlertEventKind.Resolved, Alert = alert with { State = AlertState.Resolved, ResolvedAtMs = started + 5000, ResolvedReason = "cleared" } }
                            : new AlertEvent { Kind = AlertEventKind.Acknowledged, Alert = alert with { AcknowledgedAtMs = started + 2000, AcknowledgedBy = "op" } });
                    }
                    break;
                default:
                    var id = $"c{random.Next(25)}";
                    outputs.Add(new DeviceCommand
                    {
                        CommandId = id,
                        DeviceId = Devices[random.Next(Devices.Length)],
                        Command = $"cmd-{i}-{k}",
                        Parameters = random.Next(2) == 0 ? null : new Dictionary<string, string> { ["level"] = $"{k}" },
                        RuleId = RuleIds[random.Next(RuleIds.Length)],
                        AlertId = "a",
                        CreatedAtMs = T0 - random.Next(100_000),
                    });
                    break;
            }
        }
        return outputs;
    }

    private static double Value(Random random) => random.Next(20) switch
    {
        0 => double.NaN,
        1 => double.PositiveInfinity,
        2 => -0.1,
        3 => 1e300,
        4 => 5e-324,
        _ => Math.Round(random.NextDouble() * 100, random.Next(0, 6)),
    };
}
