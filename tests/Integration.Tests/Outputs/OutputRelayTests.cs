using System.Text.Json;
using Grains.Abstractions;
using Integration.Tests.Cluster;
using Integration.Tests.RabbitMq;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Runtime;
using Runtime.Outputs;
using Runtime.Postgres;
using Runtime.RabbitMq;
using Xunit.Abstractions;

namespace Integration.Tests.Outputs;

/// <summary>
/// The durable output streams: outputs queued by the PostgreSQL read-model writer reach the RabbitMQ streams once each,
/// whatever a replay writes again and wherever a relay dies (after appending, before recording it); one relay at a time.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class OutputRelayTests(ClusterServers servers, ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly long T0 = DateTimeOffset.Parse("2026-03-01T08:00:00Z").ToUnixTimeMilliseconds();

    [Fact]
    public async Task Replayed_outputs_and_a_relay_that_died_after_appending_leave_each_message_once_in_order()
    {
        await using var store = new PostgresStore(new PostgresOptions { ConnectionString = await servers.Postgres.CreateDatabaseAsync() },
            TimeProvider.System, NullLogger<PostgresStore>.Instance);
        await store.MigrateAsync(None);
        await using var streams = new RabbitMqOutputStreams(servers.RabbitMq.NewOptions(), new OutputOptions(), XunitLoggerProvider.Factory(output));
        await streams.EnsureStreamsAsync(None);

        var opened = AlertEvent(AlertEventKind.Opened);
        var command = new DeviceCommand
        {
            CommandId = "a1/open", DeviceId = "s1", Command = "irrigate", RuleId = "r1", AlertId = "a1", CreatedAtMs = T0,
            Parameters = new() { ["minutes"] = "5" },
        };
        await store.WriteAsync([Aggregate("s1", 0, 21.5), Aggregate("s2", 0, 30), opened, command], None);
        // A replay writes the same outputs again, with a new one.
        await store.WriteAsync([Aggregate("s2", 0, 30), opened, command, Aggregate("s1", 1, 22)], None);

        // A relay numbers and appends the first two aggregates, then dies before it records them as appended.
        await using (var dying = await store.TryTakeOutputRelayLockAsync(None))
        {
            Assert.NotNull(dying);
            Assert.Null(await store.TryTakeOutputRelayLockAsync(None));
            var batch = await dying.NextAsync(OutputStream.Aggregates, 2, None);
            Assert.Equal([(1L, "s1@" + T0), (2L, "s2@" + T0)], batch.Select(b => (b.Seq, b.Message.Id)).ToArray());
            await streams.AppendAsync(OutputStream.Aggregates, batch, None);
        }

        var relay = new OutputRelay(store, streams, Options.Create(new OutputOptions { PollInterval = TimeSpan.FromMilliseconds(20) }),
            TimeProvider.System, NullLogger<OutputRelay>.Instance);
        await relay.StartAsync(None);
        try
        {
            await UntilIdsAsync(streams, OutputStream.Aggregates, 3);
            // Another replay of what was appended, then a new output: the relay works in order, so once the new one is
            // there the replay would have been too.
            await store.WriteAsync([Aggregate("s1", 0, 21.5), opened, command], None);
            await store.WriteAsync([Aggregate("s3", 0, 1)], None);
            var aggregates = await UntilIdsAsync(streams, OutputStream.Aggregates, 4);
            Assert.Equal(["s1@" + T0, "s2@" + T0, "s1@" + (T0 + 60_000), "s3@" + T0], aggregates.Select(r => r.Id).ToArray());
            Assert.Equal([0L, 1, 2, 3], aggregates.Select(r => r.Offset).ToArray());
            Assert.All(aggregates, r => Assert.Equal("aggregate", r.Type));
            Assert.Equal(
                "{\"id\":\"s1@" + T0 + "\",\"sensorId\":\"s1\",\"minute\":\"2026-03-01T08:00:00.000Z\",\"minuteMs\":" + T0
                + ",\"metrics\":{\"temperature\":{\"count\":2,\"min\":21.5,\"max\":21.5,\"sum\":43,\"avg\":21.5,\"first\":21.5,\"last\":21.5}}}",
                System.Text.Encoding.UTF8.GetString(aggregates[0].Body));

            var alerts = await UntilIdsAsync(streams, OutputStream.Alerts, 1);
            Assert.Equal(("a1/Opened", "alert.opened"), (alerts[0].Id, alerts[0].Type));
            using var alert = JsonDocument.Parse(alerts[0].Body);
            Assert.Equal("opened", alert.RootElement.GetProperty("kind").GetString());
            Assert.Equal("2026-03-01T08:00:00.000Z", alert.RootElement.GetProperty("alert").GetProperty("startedAt").GetString());
            var commands = await UntilIdsAsync(streams, OutputStream.Commands, 1);
            Assert.Equal(
                """{"id":"a1/open","deviceId":"s1","command":"irrigate","parameters":{"minutes":"5"},"ruleId":"r1","alertId":"a1","createdAt":"2026-03-01T08:00:00.000Z"}""",
                System.Text.Encoding.UTF8.GetString(commands[0].Body));
        }
        finally
        {
            await relay.StopAsync(None);
        }
    }

    /// <summary>
    /// A cluster that keeps the alert stream only (Outputs:Streams): the writer queues no aggregate in the outbox, the
    /// relay appends the alert, and the aggregates stream is not declared.
    /// </summary>
    [Fact]
    public async Task Outputs_of_streams_not_kept_are_not_queued_nor_relayed()
    {
        var kept = new OutputOptions { Streams = "alerts", PollInterval = TimeSpan.FromMilliseconds(20) };
        await using var store = new PostgresStore(new PostgresOptions { ConnectionString = await servers.Postgres.CreateDatabaseAsync() },
            TimeProvider.System, NullLogger<PostgresStore>.Instance, kept.KeptStreams());
        await store.MigrateAsync(None);
        await using var streams = new RabbitMqOutputStreams(servers.RabbitMq.NewOptions(), kept, XunitLoggerProvider.Factory(output));
        await streams.EnsureStreamsAsync(None);

        await store.WriteAsync([Aggregate("s1", 0, 21.5), AlertEvent(AlertEventKind.Opened)], None);
        await using (var lease = await store.TryTakeOutputRelayLockAsync(None))
        {
            Assert.NotNull(lease);
            Assert.Empty(await lease.NextAsync(OutputStream.Aggregates, 10, None));
        }

        var relay = new OutputRelay(store, streams, Options.Create(kept), TimeProvider.System, NullLogger<OutputRelay>.Instance);
        await relay.StartAsync(None);
        try
        {
            var alerts = await UntilIdsAsync(streams, OutputStream.Alerts, 1);
            Assert.Equal("a1/Opened", alerts[0].Id);
            await Assert.ThrowsAsync<LogUnavailableException>(() => streams.ReadAsync(OutputStream.Aggregates, 0, 10, None));
        }
        finally
        {
            await relay.StopAsync(None);
        }
    }

    /// <summary>
    /// What a stream queued before the cluster stopped keeping it stays queued and is appended when the stream is kept
    /// again, after the relay that did not keep it appended the others.
    /// </summary>
    [Fact]
    public async Task Outputs_queued_for_a_stream_left_out_are_appended_when_it_is_kept_again()
    {
        await using var store = new PostgresStore(new PostgresOptions { ConnectionString = await servers.Postgres.CreateDatabaseAsync() },
            TimeProvider.System, NullLogger<PostgresStore>.Instance);
        await store.MigrateAsync(None);
        var rabbit = servers.RabbitMq.NewOptions();
        await store.WriteAsync([Aggregate("s1", 0, 21.5), AlertEvent(AlertEventKind.Opened)], None);

        var alertsOnly = new OutputOptions { Streams = "alerts", PollInterval = TimeSpan.FromMilliseconds(20) };
        await using (var streams = new RabbitMqOutputStreams(rabbit, alertsOnly, XunitLoggerProvider.Factory(output)))
        {
            await streams.EnsureStreamsAsync(None);
            var relay = new OutputRelay(store, streams, Options.Create(alertsOnly), TimeProvider.System, NullLogger<OutputRelay>.Instance);
            await relay.StartAsync(None);
            await UntilIdsAsync(streams, OutputStream.Alerts, 1);
            await relay.StopAsync(None);
        }

        var all = new OutputOptions { PollInterval = TimeSpan.FromMilliseconds(20) };
        await using (var streams = new RabbitMqOutputStreams(rabbit, all, XunitLoggerProvider.Factory(output)))
        {
            await streams.EnsureStreamsAsync(None);
            var relay = new OutputRelay(store, streams, Options.Create(all), TimeProvider.System, NullLogger<OutputRelay>.Instance);
            await relay.StartAsync(None);
            try
            {
                Assert.Equal(["s1@" + T0], (await UntilIdsAsync(streams, OutputStream.Aggregates, 1)).Select(r => r.Id).ToArray());
                Assert.Equal(["a1/Opened"], (await UntilIdsAsync(streams, OutputStream.Alerts, 1)).Select(r => r.Id).ToArray());
            }
            finally
            {
                await relay.StopAsync(None);
            }
        }
    }

    /// <summary>Waits until the stream holds <paramref name="count"/> messages, then checks that no id repeats.</summary>
    private static async Task<IReadOnlyList<OutputRecord>> UntilIdsAsync(RabbitMqOutputStreams streams, OutputStream stream, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var page = await streams.ReadAsync(stream, 0, 1000, None);
            if (page.Records.Count >= count || DateTime.UtcNow > deadline)
            {
                Assert.Equal(count, page.Records.Count);
                Assert.Equal(page.Records.Count, page.Records.Select(r => r.Id).Distinct().Count());
                return page.Records;
            }
            await Task.Delay(50);
        }
    }

    private static MinuteAggregate Aggregate(string sensor, int minute, double value) => new()
    {
        SensorId = sensor,
        MinuteMs = T0 + minute * 60_000L,
        Metrics = [new MetricAggregate { Metric = "temperature", Count = 2, Min = value, Max = value, Sum = value * 2, First = value, Last = value }],
    };

    private static AlertEvent AlertEvent(AlertEventKind kind) => new()
    {
        Kind = kind,
        Alert = new Alert
        {
            Id = "a1", RuleId = "r1", RuleName = "Hot", RuleVersion = 1, SensorId = "s1", Severity = Severity.Major, State = AlertState.Open,
            StartedAtMs = T0, OpenedAtMs = T0, Value = 31, Threshold = 30, Message = "31 > 30",
        },
    };
}
