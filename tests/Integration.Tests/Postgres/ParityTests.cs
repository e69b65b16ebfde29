using Grains.Abstractions;
using Runtime;
using Runtime.InMemory;

namespace Integration.Tests.Postgres;

/// <summary>
/// The same batches of outputs (as silos write them, replays of earlier batches included), command deliveries and rule
/// changes through both stores give the same answers to every query.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ParityTests(PostgresServer server)
{
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
    public async Task Same_batches_of_outputs_give_the_same_reads_as_the_in_memory_store(int seed)
    {
        var (pg, _) = await server.MigratedStoreAsync();
        await using var _1 = pg;
        var parity = new StoreParity<InMemoryStore, Runtime.Postgres.PostgresStore>(new InMemoryStore(TimeProvider.System), pg);
        var random = new Random(seed);
        var started = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var outputs = new Outputs(random);

        for (var i = 0; i < 60; i++)
        {
            var batch = outputs.Next(i);
            await parity.BothAsync($"Write #{i} ({batch.Count} outputs)", s => s.WriteAsync(batch, None));
            if (random.Next(4) == 0)
            {
                var device = Devices[random.Next(Devices.Length)];
                await parity.BothAsync($"TakePendingCommands({device}) after #{i}", s => s.TakePendingCommandsAsync(device, None));
            }
            else if (random.Next(3) == 0)
            {
                // As MQTT delivers: list what is pending, mark one delivered by id (again: false), an unknown id (false).
                var device = Devices[random.Next(Devices.Length)];
                var pending = await parity.BothAsync($"ListPendingCommands({device}, 3) after #{i}", s => s.ListPendingCommandsAsync(device, 3, None));
                if (pending.Count > 0)
                {
                    var id = pending[random.Next(pending.Count)].CommandId;
                    Assert.True(await parity.BothAsync($"MarkCommandDelivered({device}, {id})", s => s.MarkCommandDeliveredAsync(device, id, None)));
                    Assert.False(await parity.BothAsync($"MarkCommandDelivered({device}, {id}) again", s => s.MarkCommandDeliveredAsync(device, id, None)));
                }
                Assert.False(await parity.BothAsync($"MarkCommandDelivered({device}, unknown)", s => s.MarkCommandDeliveredAsync(device, "unknown", None)));
            }
        }

        await parity.AssertSameReadsAsync(SensorIds, outputs.KnownAlertIds, RuleIds, T0);
        await AssertSameCommandHistoryAsync(parity, "before the last deliveries", started);
        foreach (var device in Devices.Append("missing"))
        {
            await parity.BothAsync($"TakePendingCommands({device})", s => s.TakePendingCommandsAsync(device, None));
            await parity.BothAsync($"TakePendingCommands({device}) again", s => s.TakePendingCommandsAsync(device, None));
        }
        await AssertSameCommandHistoryAsync(parity, "after every delivery", started);
        var history = await parity.Expected.ListCommandsAsync(Devices[0], 1000, None);
        Assert.True(history.Count >= 2 && history.All(c => c.DeliveredAtMs is not null), $"{history.Count} commands of {Devices[0]}");
        // The scenario must exercise what it claims to: stale summaries and alerts sent back to an earlier state by replays.
        var sensors = await parity.Expected.ListSensorsAsync(null, 0, 1000, None);
        Assert.True(sensors.Total >= 6, $"{sensors.Total} sensors");
        var alerts = await parity.Expected.QueryAlertsAsync(new AlertQuery(null, null, null, null, null, 1000), None);
        Assert.True(alerts.Count >= 5, $"{alerts.Count} alerts");
        Assert.Contains(alerts, a => a.State == AlertState.Resolved);
        Assert.Contains(alerts, a => a.AcknowledgedAtMs is not null);
        Assert.True(outputs.StaleSummaries > 0, "no replayed summary was older than the stored one");
        Assert.True(outputs.SentBack > 0, "no replay tried to reopen an alert or drop its acknowledgement");
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

    /// <summary>
    /// Sensor metadata set by operators (issue 13 item 2): a sensor registered before its first reading (no last seen), its
    /// operator metadata and its effective metadata (found by search) read back the same from both stores; a later summary
    /// without operator metadata clears it, and an older one (a replay) changes nothing.
    /// </summary>
    [Fact]
    public async Task Operator_metadata_and_registered_sensors_read_back_the_same_from_both_stores()
    {
        var (pg, _) = await server.MigratedStoreAsync();
        await using var _1 = pg;
        var parity = new StoreParity<InMemoryStore, Runtime.Postgres.PostgresStore>(new InMemoryStore(TimeProvider.System), pg);
        var registered = new SensorSummary
        {
            SensorId = "reg-1", LastSeenMs = null, Latest = [], LateCount = 0, AppliedPosition = 3,
            Metadata = new SensorMetadata { Location = "Roof", Model = "X1", Extra = new() { ["team"] = "ops" } },
            OperatorMetadata = new OperatorMetadata { Location = "Roof", Model = "X1", Tags = new() { ["team"] = "ops" } },
        };
        await parity.BothAsync("Write the registered sensor", s => s.WriteAsync([registered], None));

        var read = await parity.BothAsync("GetSensor(reg-1)", s => s.GetSensorAsync("reg-1", None));
        Assert.Equal(((long?)null, "Roof", "X1", "ops"), (read!.LastSeenMs, read.OperatorMetadata!.Location, read.OperatorMetadata.Model, read.OperatorMetadata.Tags!["team"]));
        var found = await parity.BothAsync("ListSensors(roof)", s => s.ListSensorsAsync("roof", 0, 10, None));
        Assert.Equal(["reg-1"], found.Items.Select(i => i.SensorId));

        await parity.BothAsync("Write its first reading's summary", s => s.WriteAsync([registered with
        {
            LastSeenMs = T0, Latest = new() { ["t"] = 1 }, AppliedPosition = 9, OperatorMetadata = null,
            Metadata = new SensorMetadata { Location = "Garden" },
        }], None));
        await parity.BothAsync("Write a replayed older summary", s => s.WriteAsync([registered with { AppliedPosition = 5 }], None));

        read = await parity.BothAsync("GetSensor(reg-1) after", s => s.GetSensorAsync("reg-1", None));
        Assert.Equal((T0, (OperatorMetadata?)null, "Garden"), (read!.LastSeenMs, read.OperatorMetadata, read.Metadata!.Location));
        Assert.Empty((await parity.BothAsync("ListSensors(roof) after", s => s.ListSensorsAsync("roof", 0, 10, None))).Items);
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
        Assert.Equal(RuleCreation.Created, await parity.BothAsync("Create b", s => s.CreateAsync(b, 3, None)));
        Assert.Equal(RuleCreation.Created, await parity.BothAsync("Create a", s => s.CreateAsync(a, 3, None)));
        Assert.Equal(RuleCreation.Created, await parity.BothAsync("Create B", s => s.CreateAsync(upper, 3, None)));
        Assert.Equal(RuleCreation.Exists, await parity.BothAsync("Create a again", s => s.CreateAsync(a with { Name = "dup" }, 3, None)));
        // Three rules, the bound: a fourth is refused, and nothing of it stored.
        Assert.Equal(RuleCreation.Full, await parity.BothAsync("Create c past the bound", s => s.CreateAsync(Rule("c", 5, 0), 3, None)));
        Assert.Null(await parity.BothAsync("Get c", s => s.GetAsync("c", None)));
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

    /// <summary>
    /// Every text the Api accepts (TextRules: anything but control characters and lone surrogates) comes back from both
    /// stores exactly as written: names and values of metrics, attributes, metadata, alerts and commands (issue 10 item 2).
    /// </summary>
    [Fact]
    public async Task Every_text_the_api_accepts_round_trips_unchanged_through_both_stores()
    {
        var (pg, _) = await server.MigratedStoreAsync();
        await using var _1 = pg;
        var parity = new StoreParity<InMemoryStore, Runtime.Postgres.PostgresStore>(new InMemoryStore(TimeProvider.System), pg);
        string[] texts =
        [
            "é à ü ñ ß", "Jardín", "日本語テキスト", "😀👍🏽🇨🇴", "\u2028\u2029", "\uFEFFbom", "\uFFFE\uFFFF", "'\"\\/<>&%{}_",
            "{\"json\":true}", "e\u0301", "שלום", "a\u200Bb", " spaced ", "\\u0000 as text", new string('x', 250) + "😀é",
        ];
        var summaries = new List<GrainOutput>();
        for (var i = 0; i < texts.Length; i++)
        {
            var text = texts[i];
            var sensor = $"text-{i}";
            summaries.Add(new SensorSummary
            {
                SensorId = sensor, LastSeenMs = T0, LateCount = 0, AppliedPosition = i,
                Latest = new Dictionary<string, double> { [text] = i },
                Attributes = new Dictionary<string, string> { [text] = text },
                Metadata = new SensorMetadata { Location = text, Model = text, Owner = text, Version = text, Extra = new() { [text] = text } },
                OperatorMetadata = new OperatorMetadata { Location = text, Model = text, Owner = text, Tags = new() { [text] = text } },
            });
            summaries.Add(new MinuteAggregate
            {
                SensorId = sensor, MinuteMs = T0,
                Metrics = [new MetricAggregate { Metric = text, Count = 1, Min = i, Max = i, Sum = i, First = i, Last = i }],
            });
            var alert = new Alert
            {
                Id = $"alert-{i}", RuleId = "r1", RuleName = text, RuleVersion = 1, SensorId = sensor, Severity = Severity.Minor,
                State = AlertState.Open, StartedAtMs = T0, OpenedAtMs = T0, Message = text,
            };
            summaries.Add(new AlertEvent { Kind = AlertEventKind.Opened, Alert = alert });
            summaries.Add(new DeviceCommand
            {
                CommandId = $"command-{i}", DeviceId = sensor, Command = text, Parameters = new() { [text] = text }, RuleId = "r1",
                AlertId = alert.Id, CreatedAtMs = T0,
            });
        }

        await parity.BothAsync("Write", s => s.WriteAsync(summaries, None));

        for (var i = 0; i < texts.Length; i++)
        {
            var text = texts[i];
            var sensor = await parity.BothAsync($"GetSensor(text-{i})", s => s.GetSensorAsync($"text-{i}", None));
            Assert.Equal((text, text, text, text), (sensor!.Latest.Keys.Single(), sensor.Attributes!.Single().Value, sensor.Metadata!.Location, sensor.Metadata.Extra!.Single().Key));
            var minutes = await parity.BothAsync($"GetAggregates(text-{i})", s => s.GetAggregatesAsync($"text-{i}", long.MinValue, long.MaxValue, text, None));
            Assert.Equal(text, minutes.Single().Metrics.Single().Metric);
            var alert = await parity.BothAsync($"GetAlert(alert-{i})", s => s.GetAlertAsync($"alert-{i}", None));
            Assert.Equal((text, text), (alert!.RuleName, alert.Message));
            var commands = await parity.BothAsync($"TakePendingCommands(text-{i})", s => s.TakePendingCommandsAsync($"text-{i}", None));
            Assert.Equal((text, text, text), (commands.Single().Command, commands.Single().Parameters!.Single().Key, commands.Single().Parameters!.Single().Value));
        }

        var search = await parity.BothAsync("ListSensors(日本語)", s => s.ListSensorsAsync("日本語", 0, 10, None));
        Assert.Equal("text-2", search.Items.Single().SensorId);
    }

    /// <summary>The rule bound holds when creates race on several connections: the count and the insert are serial.</summary>
    [Fact]
    public async Task Racing_rule_creates_never_pass_the_bound()
    {
        var (pg, _) = await server.MigratedStoreAsync();
        await using var _1 = pg;

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => pg.CreateAsync(Rule($"race-{i}", i + 1, 0), 5, None)));

        Assert.Equal((5, 7), (outcomes.Count(o => o == RuleCreation.Created), outcomes.Count(o => o == RuleCreation.Full)));
        Assert.Equal(5, (await pg.ListAsync(None)).Count);
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

    /// <summary>
    /// Batches of outputs as silos write them: each sensor's summaries at increasing log positions, minute aggregates,
    /// alerts through their lifecycle (opened, then acknowledged and/or resolved, in that order within a batch), commands
    /// whose ids repeat; and now and then a replay, an earlier batch written again as it was: summaries older than the
    /// stored ones, alert events behind the stored alert, commands already stored.
    /// </summary>
    private sealed class Outputs(Random random)
    {
        private readonly List<IReadOnlyList<GrainOutput>> _written = [];
        private readonly Dictionary<string, long> _positions = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Alert> _alerts = new(StringComparer.Ordinal);

        public IReadOnlyList<string> KnownAlertIds => _alerts.Keys.ToList();

        /// <summary>Summaries replayed with a position below the sensor's newest one.</summary>
        public int StaleSummaries { get; private set; }

        /// <summary>Alert events replayed that are behind the alert (open after resolved, unacknowledged after acknowledged).</summary>
        public int SentBack { get; private set; }

        public IReadOnlyList<GrainOutput> Next(int i)
        {
            if (_written.Count > 0 && random.Next(5) == 0)
            {
                var replay = _written[random.Next(_written.Count)];
                foreach (var output in replay)
                {
                    switch (output)
                    {
                        case SensorSummary s when s.AppliedPosition < _positions[s.SensorId]:
                            StaleSummaries++;
                            break;
                        case AlertEvent e when _alerts[e.Alert.Id] is var newest && e.Alert.State != AlertState.Resolved
                            && (newest.State == AlertState.Resolved || (newest.AcknowledgedAtMs is not null && e.Alert.AcknowledgedAtMs is null)):
                            SentBack++;
                            break;
                    }
                }
                return replay;
            }
            var batch = NewBatch(i);
            _written.Add(batch);
            return batch;
        }

        private List<GrainOutput> NewBatch(int i)
        {
            var outputs = new List<GrainOutput>();
            var n = random.Next(0, 12);
            for (var k = 0; k < n; k++)
            {
                var sensor = SensorIds[random.Next(SensorIds.Length)];
                switch (random.Next(4))
                {
                    case 0:
                        var position = _positions[sensor] = _positions.GetValueOrDefault(sensor, -1) + random.Next(1, 40);
                        outputs.Add(new SensorSummary
                        {
                            SensorId = sensor,
                            // Now and then a sensor an operator registered before its first reading (no last seen), or whose
                            // metadata an operator set (from its own sequence: the draws of the scenario stay as they were).
                            LastSeenMs = (i + k) % 7 == 0 ? null : T0 + i * 1000 + k,
                            OperatorMetadata = (i + k) % 3 != 0 ? null : new OperatorMetadata
                            {
                                Location = (i + k) % 2 == 0 ? Locations[(i + k) % Locations.Length] : null,
                                Model = k % 2 == 0 ? Models[i % Models.Length] : null,
                                Tags = i % 2 == 0 ? new Dictionary<string, string> { ["team"] = "ops", ["b"] = "y" } : null,
                            },
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
                            AppliedPosition = position,
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
                        AddAlertEvents(outputs, sensor, k);
                        break;
                    default:
                        outputs.Add(new DeviceCommand
                        {
                            CommandId = $"c{random.Next(25)}",
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

        /// <summary>Opens an incident's alert (and maybe acknowledges or resolves it in the same batch), or moves an existing one on.</summary>
        private void AddAlertEvents(List<GrainOutput> outputs, string sensor, int k)
        {
            var rule = RuleIds[random.Next(RuleIds.Length)];
            var started = T0 + random.Next(6) * 30_000L;
            var id = AlertIds.For(rule, 1, sensor, started);
            if (!_alerts.TryGetValue(id, out var alert))
            {
                alert = new Alert
                {
                    Id = id,
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
                Add(AlertEventKind.Opened, alert);
                if (random.Next(2) == 0)
                {
                    return;
                }
            }
            if (alert.State == AlertState.Resolved)
            {
                return;
            }
            if (alert.AcknowledgedAtMs is null && random.Next(2) == 0)
            {
                Add(AlertEventKind.Acknowledged, alert with { AcknowledgedAtMs = started + 2000, AcknowledgedBy = "op" });
            }
            else
            {
                Add(AlertEventKind.Resolved, alert with { State = AlertState.Resolved, ResolvedAtMs = started + 5000, ResolvedReason = "cleared" });
            }

            void Add(AlertEventKind kind, Alert version)
            {
                _alerts[version.Id] = alert = version;
                outputs.Add(new AlertEvent { Kind = kind, Alert = version });
            }
        }
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
