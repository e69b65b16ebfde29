using System.Text.Json;
using Grains.Abstractions;
using RabbitMQ.Client;
using Runtime.RabbitMq;
using Xunit.Abstractions;

namespace Integration.Tests.RabbitMq;

[Collection(RabbitMqCollection.Name)]
public sealed class RabbitMqLiveEventsTests(RabbitMqServer server, ITestOutputHelper output)
{
    [Fact]
    public async Task Every_subscriber_receives_every_output_with_exact_content()
    {
        var options = server.NewOptions();
        await using var publisherNode = new RabbitMqLiveEvents(options, XunitLoggerProvider.Factory(output));
        await using var apiNode1 = new RabbitMqLiveEvents(options);
        await using var apiNode2 = new RabbitMqLiveEvents(options);
        await publisherNode.EnsureExchangeAsync(CancellationToken.None);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var first = Collect(apiNode1, stop.Token);
        var second = Collect(apiNode2, stop.Token);
        var third = Collect(apiNode1, stop.Token); // two subscriptions in one process each get everything too

        // A subscription binds asynchronously: publish markers until every subscriber has seen one.
        var marker = 0;
        await RmqTest.UntilAsync(() =>
        {
            publisherNode.Publish(Command($"marker-{marker++}"));
            return Task.FromResult(new[] { first, second, third }.All(c => { lock (c) return c.Count > 0; }));
        }, TimeSpan.FromSeconds(20), "all subscriptions bound");

        GrainOutput[] outputs =
        [
            new MinuteAggregate
            {
                SensorId = "AAAA", MinuteMs = 1_700_000_040_000,
                Metrics = [new MetricAggregate { Metric = "temperature", Count = 3, Min = 1, Max = 3, Sum = 6, First = 1, Last = 3 }],
            },
            new AlertEvent
            {
                Kind = AlertEventKind.Opened,
                Alert = new Alert
                {
                    Id = "a1", RuleId = "r1", RuleName = "Too hot", RuleVersion = 2, SensorId = "AAAA", Severity = Severity.Critical,
                    State = AlertState.Open, StartedAtMs = 1, OpenedAtMs = 2, Value = 31.5, Threshold = 30, Message = "31.5 > 30",
                },
            },
            Command("c1"),
            new SensorSummary
            {
                SensorId = "AAAA", LastSeenMs = 5, Metadata = new SensorMetadata { Location = "garden" },
                Latest = new() { ["temperature"] = 22.5 }, Attributes = new() { ["light"] = "on" }, LateCount = 1,
            },
        ];
        var burst = Enumerable.Range(0, 500).Select(i => Command($"burst-{i}")).ToArray();
        foreach (var o in outputs.Concat(burst))
        {
            publisherNode.Publish(o);
        }

        var expected = outputs.Concat(burst).Select(Json).ToList();
        foreach (var received in new[] { first, second, third })
        {
            await RmqTest.UntilAsync(() => Task.FromResult(Real(received).Count >= expected.Count), TimeSpan.FromSeconds(20), "all outputs received");
            Assert.Equal(expected, Real(received).Select(Json));
        }
        var alert = Assert.IsType<AlertEvent>(Real(first)[1]);
        Assert.Equal("a1/Opened", alert.Id);
        Assert.Equal(Severity.Critical, alert.Alert.Severity);
        Assert.Equal(0, publisherNode.Dropped);
    }

    [Fact]
    public async Task A_burst_travels_as_a_few_messages_of_many_events_and_a_single_event_message_is_still_read()
    {
        var options = server.NewOptions();
        await using var publisherNode = new RabbitMqLiveEvents(options, XunitLoggerProvider.Factory(output));
        await using var apiNode = new RabbitMqLiveEvents(options);
        await publisherNode.EnsureExchangeAsync(CancellationToken.None);

        // A queue of the test's own on the exchange shows the messages as the broker carries them.
        var factory = new ConnectionFactory { Uri = new Uri(options.Uri) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var queue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true)).QueueName;
        await channel.QueueBindAsync(queue, options.LiveExchange, "");

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var received = Collect(apiNode, stop.Token);
        var marker = 0;
        await RmqTest.UntilAsync(() =>
        {
            publisherNode.Publish(Command($"marker-{marker++}"));
            lock (received) return Task.FromResult(received.Count > 0);
        }, TimeSpan.FromSeconds(20), "subscription bound");

        // An earlier publisher sent one output per message, as a JSON object: it is still read.
        var single = Command("single");
        await channel.BasicPublishAsync(options.LiveExchange, "", JsonSerializer.SerializeToUtf8Bytes(single, RabbitMqJsonContext.Default.GrainOutput));
        await RmqTest.UntilAsync(() => Task.FromResult(Real(received).Count == 1), TimeSpan.FromSeconds(20), "the single-object message read");

        var burst = Enumerable.Range(0, 5_000).Select(i => Command($"burst-{i}")).ToArray();
        foreach (var o in burst)
        {
            publisherNode.Publish(o);
        }
        await RmqTest.UntilAsync(() => Task.FromResult(Real(received).Count == 1 + burst.Length), TimeSpan.FromSeconds(20), "the burst received");
        Assert.Equal(new[] { single }.Concat(burst).Select(Json), Real(received).Select(Json));

        // On the wire: arrays of at most MaxEventsPerMessage, in order, far fewer messages than events.
        var carried = new List<string>();
        var messages = 0;
        while (await channel.BasicGetAsync(queue, autoAck: true) is { } message)
        {
            if (message.Body.Span[0] != (byte)'[')
            {
                continue; // the test's own single-object message
            }
            var events = JsonSerializer.Deserialize(message.Body.Span, RabbitMqJsonContext.Default.ListGrainOutput)!;
            Assert.InRange(events.Count, 1, RabbitMqLiveEvents.MaxEventsPerMessage);
            carried.AddRange(events.Select(e => e.Id).Where(id => id.StartsWith("burst-", StringComparison.Ordinal)));
            messages += events.Any(e => e.Id.StartsWith("burst-", StringComparison.Ordinal)) ? 1 : 0;
        }
        Assert.Equal(burst.Select(b => b.Id), carried);
        Assert.InRange(messages, burst.Length / RabbitMqLiveEvents.MaxEventsPerMessage, burst.Length / 10);
        Assert.Equal(0, publisherNode.Dropped);
    }

    [Fact]
    public async Task Publishing_never_blocks_and_drops_while_the_broker_is_unreachable()
    {
        var options = server.NewOptions();
        options.Uri = $"amqp://guest:guest@127.0.0.1:{RabbitMqServer.FreePort()}/";
        await using var live = new RabbitMqLiveEvents(options, XunitLoggerProvider.Factory(output));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 1000; i++)
        {
            live.Publish(Command($"c{i}"));
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"publishing took {clock.Elapsed}");
        await RmqTest.UntilAsync(() => Task.FromResult(live.Dropped == 1000), TimeSpan.FromSeconds(10), "every event dropped");
    }

    [Fact]
    public async Task A_subscriber_that_falls_behind_drops_the_oldest_events_and_counts_them()
    {
        var options = server.NewOptions();
        await using var publisherNode = new RabbitMqLiveEvents(options, XunitLoggerProvider.Factory(output));
        await using var laggingNode = new RabbitMqLiveEvents(options, XunitLoggerProvider.Factory(output));
        await using var readingNode = new RabbitMqLiveEvents(options);
        await publisherNode.EnsureExchangeAsync(CancellationToken.None);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var lagging = laggingNode.SubscribeAsync(stop.Token).GetAsyncEnumerator(stop.Token);
        var reading = Collect(readingNode, stop.Token); // shows how far the events got

        var first = lagging.MoveNextAsync().AsTask();
        var marker = 0;
        await RmqTest.UntilAsync(() =>
        {
            publisherNode.Publish(Command($"marker-{marker++}"));
            lock (reading) return Task.FromResult(first.IsCompleted && reading.Count > 0);
        }, TimeSpan.FromSeconds(20), "both subscriptions bound");
        // Markers published before the lagging subscriber's queue was bound never reach it; it took the first one that did
        // and every later one waits in its queue.
        Assert.True(await first);
        var firstTaken = int.Parse(lagging.Current.Id["marker-".Length..], System.Globalization.CultureInfo.InvariantCulture);
        var markersQueued = marker - 1 - firstTaken;

        // The lagging subscriber reads nothing more while 12,000 events come, in rounds the publisher's queue holds.
        for (var round = 0; round < 3; round++)
        {
            var last = Math.Min(12_000, (round + 1) * 5_000) - 1;
            for (var i = round * 5_000; i <= last; i++)
            {
                publisherNode.Publish(Command($"c{i}"));
            }
            await RmqTest.UntilAsync(() => Task.FromResult(Real(reading).LastOrDefault()?.Id == $"c{last}"), TimeSpan.FromSeconds(20),
                $"c{last} delivered");
        }

        // Its queue holds 10,000: the oldest of the rest (its markers, then the first commands) were dropped and counted.
        await RmqTest.UntilAsync(() => Task.FromResult(laggingNode.Dropped == markersQueued + 2_000), TimeSpan.FromSeconds(10),
            $"{markersQueued + 2_000} events dropped (dropped: {laggingNode.Dropped})");
        Assert.True(await lagging.MoveNextAsync());
        Assert.Equal("c2000", lagging.Current.Id);
        Assert.Equal(0, publisherNode.Dropped);
    }

    private static DeviceCommand Command(string id) => new()
    {
        CommandId = id, DeviceId = "dev", Command = "fan", Parameters = new() { ["speed"] = "high" }, RuleId = "r1", AlertId = "a1",
        CreatedAtMs = 9,
    };

    private static string Json(GrainOutput o) => JsonSerializer.Serialize(o, RabbitMqJsonContext.Default.GrainOutput);

    private static List<GrainOutput> Real(List<GrainOutput> received)
    {
        lock (received)
        {
            return received.Where(o => !o.Id.StartsWith("marker-", StringComparison.Ordinal)).ToList();
        }
    }

    private static List<GrainOutput> Collect(RabbitMqLiveEvents live, CancellationToken cancellationToken)
    {
        var received = new List<GrainOutput>();
        _ = Task.Run(async () =>
        {
            try
            {
                await foreach (var output in live.SubscribeAsync(cancellationToken))
                {
                    lock (received)
                    {
                        received.Add(output);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);
        return received;
    }
}
