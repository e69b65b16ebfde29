using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Grains.Abstractions;
using Runtime;
using Runtime.RabbitMq;
using Xunit.Abstractions;

namespace Integration.Tests.RabbitMq;

[Collection(RabbitMqCollection.Name)]
public sealed class RabbitMqInboxLogTests(RabbitMqServer server, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var d in Enumerable.Reverse(_disposables))
        {
            await d.DisposeAsync();
        }
    }

    private async Task<RabbitMqInboxLog> NewLogAsync(int partitions, RabbitMqOptions? options = null)
    {
        var log = new RabbitMqInboxLog(options ?? server.NewOptions(), partitions, XunitLoggerProvider.Factory(output));
        _disposables.Add(log);
        await log.EnsureStreamsAsync(partitions, CancellationToken.None);
        return log;
    }

    private T Track<T>(T disposable) where T : IAsyncDisposable
    {
        _disposables.Add(disposable);
        return disposable;
    }

    [Fact]
    public async Task Every_entry_kind_round_trips_with_exact_content_and_increasing_offsets()
    {
        var log = await NewLogAsync(2);
        var entries = RmqTest.EveryKind();
        await log.AppendAsync(1, entries, CancellationToken.None);

        var reader = Track(log.OpenReader(1, 0));
        var records = await RmqTest.ReadExactlyAsync(reader, entries.Length);

        Assert.Equal(Enumerable.Range(0, entries.Length).Select(i => (long)i), records.Select(r => r.Offset));
        for (var i = 0; i < entries.Length; i++)
        {
            Assert.Equal(entries[i].GetType(), records[i].Entry.GetType());
            Assert.Equal(RmqTest.Json(entries[i]), RmqTest.Json(records[i].Entry));
        }
        var telemetry = Assert.IsType<TelemetryEntry>(records[0].Entry);
        Assert.Equal("AAAA", telemetry.Readings[0].SensorId);
        Assert.Equal(1_700_000_000_123, telemetry.Readings[0].TimestampMs);
        Assert.Equal([new MetricValue("temperature", 22.25), new MetricValue("volume_control", 0.5), new MetricValue("neg", -1e-9)],
            telemetry.Readings[0].Metrics);
        Assert.Equal([new AttributeValue("light", "on"), new AttributeValue("door", "false")], telemetry.Readings[0].Attributes!);
        Assert.Equal("ü <&> \"q\"", telemetry.Readings[0].Metadata!.Extra!["ñandú"]);
        Assert.Null(telemetry.Readings[1].Attributes);
        Assert.Equal(("key-\u00f1-1", 1_700_000_000_500L), (telemetry.IdempotencyKey, telemetry.ReceivedAtMs));
        var keyless = Assert.IsType<TelemetryEntry>(records[1].Entry);
        Assert.Equal(((string?)null, 1_700_000_000_800L), (keyless.IdempotencyKey, keyless.ReceivedAtMs));
        Assert.Equal([new MetricValue("temperature", 18.5), new MetricValue("humidity", 50.5)], Assert.Single(keyless.Readings).Metrics);
        Assert.Equal(new TickEntry(1_700_000_200_000), records[2].Entry);
        var changed = Assert.IsType<RuleChangeEntry>(records[3].Entry);
        Assert.Equal(("r2", 1_700_000_100_000L), (changed.RuleId, changed.AtMs));
        Assert.Equal(["a", "b"], changed.Rule!.Target.SensorIds!.Value.ToArray());
        Assert.Equal("high", changed.Rule.ControlAction!.Parameters!["speed"]);
        Assert.Equal(ConditionSource.Avg, changed.Rule.Condition.Source);
        Assert.Equal(ConditionKind.Offline, Assert.IsType<RuleChangeEntry>(records[4].Entry).Rule!.Condition.Kind);
        Assert.Equal(new RuleChangeEntry("r4", null, 1_700_000_100_002), records[5].Entry);
        var metadata = Assert.IsType<SensorMetadataEntry>(records[6].Entry);
        Assert.Equal(("AAAA", "roof", "HW-MD300", "ops", 1_700_000_100_003L),
            (metadata.SensorId, metadata.Metadata.Location, metadata.Metadata.Model, metadata.Metadata.Owner, metadata.AtMs));
        Assert.Equal(new Dictionary<string, string> { ["team"] = "ñ <&> \"q\"", ["floor"] = "2" }, metadata.Metadata.Tags);
        var cleared = Assert.IsType<SensorMetadataEntry>(records[7].Entry);
        Assert.Equal(("BBBB", true, 1_700_000_100_004L), (cleared.SensorId, cleared.Metadata.IsEmpty, cleared.AtMs));
        var outside = Assert.IsType<OutsideConditionsEntry>(records[8].Entry);
        Assert.Equal(("garden ñ", 1_700_000_100_005L), (outside.Location, outside.AtMs));
        Assert.Equal([new MetricValue("humidity", 81.5), new MetricValue("temperature", -2.25)], outside.Observations[0].Metrics);
        Assert.Equal([1_700_000_000_000L, 1_700_000_060_000L], outside.Observations.Select(o => o.TimestampMs));
        Assert.Equal("temperature", Assert.IsType<RuleChangeEntry>(records[9].Entry).Rule!.Condition.OutsideMetric);

        // The other partition is untouched.
        Assert.Equal(0, await log.EndOffsetAsync(0, CancellationToken.None));
    }

    [Fact]
    public async Task A_reader_opened_at_a_middle_offset_starts_exactly_there()
    {
        var log = await NewLogAsync(1);
        for (var batch = 0; batch < 4; batch++)
        {
            await log.AppendAsync(0, Enumerable.Range(batch * 5, 5).Select(i => (InboxEntry)new TickEntry(i)).ToArray(), CancellationToken.None);
        }

        foreach (var from in new long[] { 7, 10, 19 })
        {
            await using var reader = log.OpenReader(0, from);
            var records = await RmqTest.ReadExactlyAsync(reader, (int)(20 - from));
            Assert.Equal(Enumerable.Range((int)from, (int)(20 - from)).Select(i => (long)i), records.Select(r => r.Offset));
            Assert.Equal(records.Select(r => (InboxEntry)new TickEntry(r.Offset)), records.Select(r => r.Entry));
        }

        await using var atEnd = log.OpenReader(0, 20);
        var none = new List<LogRecord>();
        Assert.Equal(0, await atEnd.ReadAsync(none, 10, TimeSpan.FromMilliseconds(300), CancellationToken.None));
    }

    [Fact]
    public async Task A_record_that_is_not_an_entry_ends_reading_after_the_records_before_it_with_an_error_naming_it()
    {
        var options = server.NewOptions();
        var log = await NewLogAsync(1, options);
        await log.AppendAsync(0, [new TickEntry(1), new TickEntry(2)], CancellationToken.None);
        // Another publisher writes something else into the partition's stream.
        var factory = new RabbitMQ.Client.ConnectionFactory { Uri = new Uri(options.Uri) };
        await using (var connection = await factory.CreateConnectionAsync())
        await using (var channel = await connection.CreateChannelAsync(new RabbitMQ.Client.CreateChannelOptions(true, true)))
        {
            await channel.BasicPublishAsync("", options.StreamName(0), mandatory: true, new RabbitMQ.Client.BasicProperties(),
                System.Text.Encoding.UTF8.GetBytes("{\"$type\":\"unknown\"}"));
        }
        await log.AppendAsync(0, [new TickEntry(4)], CancellationToken.None);

        await using var reader = log.OpenReader(0, 0);
        var records = new List<LogRecord>();
        await RmqTest.UntilAsync(async () =>
        {
            await reader.ReadAsync(records, 10, TimeSpan.FromMilliseconds(200), CancellationToken.None);
            return records.Count == 2;
        }, TimeSpan.FromSeconds(10), "the two entries before the foreign record");
        Assert.Equal([new LogRecord(0, new TickEntry(1)), new LogRecord(1, new TickEntry(2))], records);
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var error = await Assert.ThrowsAsync<InvalidDataException>(async () =>
                await reader.ReadAsync(records, 10, TimeSpan.FromSeconds(5), CancellationToken.None));
            Assert.StartsWith($"Record 2 of stream '{options.StreamName(0)}' is not a valid inbox entry: ", error.Message);
        }
        Assert.Equal(2, records.Count);
    }

    [Fact]
    public async Task A_reader_sees_records_appended_after_it_opened()
    {
        var log = await NewLogAsync(1);
        var reader = Track(log.OpenReader(0, 0));
        var records = new List<LogRecord>();
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, await reader.ReadAsync(records, 10, TimeSpan.FromMilliseconds(300), CancellationToken.None));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(250), $"returned after {clock.Elapsed}");
        // Without a wait (a partition waking a backlog of due sensors): nothing yet, at once, and the reader reads on.
        clock.Restart();
        Assert.Equal(0, await reader.ReadAsync(records, 10, TimeSpan.Zero, CancellationToken.None));
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(250), $"returned after {clock.Elapsed}");

        var pending = reader.ReadAsync(records, 10, TimeSpan.FromSeconds(10), CancellationToken.None).AsTask();
        await log.AppendAsync(0, [new TickEntry(1), new TickEntry(2)], CancellationToken.None);
        await pending;
        var rest = await RmqTest.ReadExactlyAsync(reader, 2 - records.Count);
        records.AddRange(rest);
        Assert.Equal([new LogRecord(0, new TickEntry(1)), new LogRecord(1, new TickEntry(2))], records);

        await log.AppendAsync(0, [new TickEntry(3)], CancellationToken.None);
        Assert.Equal([new LogRecord(2, new TickEntry(3))], await RmqTest.ReadExactlyAsync(reader, 1));
    }

    [Fact]
    public async Task Concurrent_appends_are_all_confirmed_and_read_once_each_in_order()
    {
        const int partitions = 4, writers = 16, appendsPerWriter = 25;
        var log = await NewLogAsync(partitions);
        // Each writer appends sequentially (so its appends to a partition are ordered by confirmation); writers run concurrently.
        var expected = new ConcurrentBag<(int Partition, long[] Ids)>();
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            for (var a = 0; a < appendsPerWriter; a++)
            {
                var partition = random.Next(partitions);
                var ids = Enumerable.Range(0, 1 + random.Next(3)).Select(k => w * 1_000_000L + a * 10 + k).ToArray();
                await log.AppendAsync(partition, ids.Select(id => (InboxEntry)new TickEntry(id)).ToArray(), CancellationToken.None);
                expected.Add((partition, ids));
            }
        })));

        for (var p = 0; p < partitions; p++)
        {
            var appends = expected.Where(e => e.Partition == p).ToList();
            var count = appends.Sum(e => e.Ids.Length);
            await using var reader = log.OpenReader(p, 0);
            var records = await RmqTest.ReadExactlyAsync(reader, count);
            Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), records.Select(r => r.Offset));
            var ids = records.Select(r => ((TickEntry)r.Entry).TimeMs).ToList();
            Assert.Equal(appends.SelectMany(e => e.Ids).Order(), ids.Order());
            foreach (var append in appends)
            {
                // The entries of one append are contiguous and in order.
                var at = ids.IndexOf(append.Ids[0]);
                Assert.Equal(append.Ids, ids.Skip(at).Take(append.Ids.Length));
            }
            foreach (var writer in ids.GroupBy(id => id / 1_000_000))
            {
                // A writer's later append (started after the earlier one was confirmed) comes later in the log.
                Assert.Equal(writer.Order(), writer);
            }
            Assert.Equal(count, await log.EndOffsetAsync(p, CancellationToken.None));
        }
    }

    [Fact]
    public async Task Telemetry_appended_while_a_publish_waits_for_its_confirm_shares_one_record_and_reads_back_once_each()
    {
        const int appends = 200;
        var log = await NewLogAsync(1);
        // A lone append is its own record.
        await log.AppendAsync(0, [new TelemetryEntry([RmqTest.Reading("first", 1_000, 1)], "caller:first", 1_000)], CancellationToken.None);
        await log.AppendAsync(0, [new TickEntry(5)], CancellationToken.None);

        // 200 requests at once, one reading each, and a rule change among them.
        var sent = Enumerable.Range(0, appends).Select(i => new TelemetryEntry([RmqTest.Reading($"s-{i}", 2_000 + i, i)], $"caller:{i}", 2_000 + i)).ToArray();
        await Task.WhenAll(sent.Select((entry, i) => Task.Run(async () =>
        {
            await log.AppendAsync(0, [entry], CancellationToken.None);
            if (i == appends / 2)
            {
                await log.AppendAsync(0, [new RuleChangeEntry("r-1", null, 3_000)], CancellationToken.None);
            }
        })));

        await using var reader = log.OpenReader(0, 0);
        var records = await RmqTest.ReadReadingsAsync(reader, appends + 1, TimeSpan.FromSeconds(20));
        records.AddRange(await RmqTest.ReadExactlyAsync(reader, records.Any(r => r.Entry is RuleChangeEntry) ? 0 : 1));

        Assert.Equal(Enumerable.Range(0, records.Count).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal("first", Assert.IsType<TelemetryEntry>(records[0].Entry).Readings[0].SensorId);
        Assert.Equal(new TickEntry(5), records[1].Entry);
        Assert.Single(records, r => r.Entry is RuleChangeEntry);
        var groups = records.Where(r => r.Entry is TelemetryGroupEntry).ToList();
        Assert.NotEmpty(groups);
        Assert.True(records.Count < appends / 2, $"{records.Count} records for {appends} concurrent appends");
        // Every request's entry once, whole, with its key and time of receipt.
        var read = records.Skip(2).SelectMany(r => RmqTest.Telemetry(r.Entry)).ToList();
        Assert.Equal(sent.Select(RmqTest.Json).Order(), read.Select(RmqTest.Json).Order());
        Assert.Equal(records.Count, await log.EndOffsetAsync(0, CancellationToken.None));
    }

    [Fact]
    public async Task With_group_commit_off_every_request_keeps_a_record_of_its_own_for_silos_of_the_release_before()
    {
        const int appends = 100;
        var options = server.NewOptions();
        options.GroupCommit = false;
        var log = await NewLogAsync(1, options);

        var sent = Enumerable.Range(0, appends).Select(i => new TelemetryEntry([RmqTest.Reading($"s-{i}", 2_000 + i, i)], $"caller:{i}", 2_000 + i)).ToArray();
        await Task.WhenAll(sent.Select(entry => Task.Run(async () => await log.AppendAsync(0, [entry], CancellationToken.None))));

        await using var reader = log.OpenReader(0, 0);
        var records = await RmqTest.ReadExactlyAsync(reader, appends);
        Assert.All(records, r => Assert.IsType<TelemetryEntry>(r.Entry));
        Assert.Equal(sent.Select(RmqTest.Json).Order(), records.Select(r => RmqTest.Json(r.Entry)).Order());
        Assert.Equal(appends, await log.EndOffsetAsync(0, CancellationToken.None));
    }

    [Fact]
    public async Task Streams_are_declared_with_the_retention_arguments()
    {
        var options = server.NewOptions();
        options.MaxAge = TimeSpan.FromMinutes(90);
        options.MaxLengthBytes = 123_456_789;
        options.MaxSegmentSizeBytes = 7_654_321;
        await NewLogAsync(2, options);

        var json = await server.CtlAsync("list_queues", "-p", server.VirtualHost, "name", "arguments", "durable", "--formatter", "json", "--quiet");
        var queues = JsonDocument.Parse(json).RootElement.EnumerateArray()
            .Where(q => q.GetProperty("name").GetString()!.StartsWith(options.StreamPrefix + ".", StringComparison.Ordinal))
            .ToDictionary(q => q.GetProperty("name").GetString()!);
        Assert.Equal([$"{options.StreamPrefix}.inbox.0", $"{options.StreamPrefix}.inbox.1"], queues.Keys.Order());
        foreach (var queue in queues.Values)
        {
            Assert.True(queue.GetProperty("durable").GetBoolean());
            // rabbitmqctl lists each argument as [name, type, value].
            var arguments = queue.GetProperty("arguments").EnumerateArray()
                .ToDictionary(a => a[0].GetString()!, a => (Type: a[1].GetString(), Value: a[2].ToString()));
            Assert.Equal(
                new Dictionary<string, (string?, string)>
                {
                    ["x-queue-type"] = ("longstr", "stream"),
                    ["x-max-age"] = ("longstr", "5400s"),
                    ["x-max-length-bytes"] = ("long", "123456789"),
                    ["x-stream-max-segment-size-bytes"] = ("long", "7654321"),
                },
                arguments);
        }

        // Declaring the same streams with other retention fails clearly rather than silently keeping the old one.
        var other = server.NewOptions();
        other.StreamPrefix = options.StreamPrefix;
        other.MaxAge = TimeSpan.FromMinutes(91);
        await using var conflicting = new RabbitMqInboxLog(other, 2);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => conflicting.EnsureStreamsAsync(2, CancellationToken.None));
        Assert.Contains($"{options.StreamPrefix}.inbox.0", error.Message);
        Assert.Contains("x-max-age", error.Message);
    }

    [Fact]
    public async Task End_offset_is_the_offset_of_the_next_record()
    {
        var log = await NewLogAsync(2);
        Assert.Equal(0, await log.EndOffsetAsync(0, CancellationToken.None));

        await log.AppendAsync(0, [new TickEntry(1)], CancellationToken.None);
        Assert.Equal(1, await log.EndOffsetAsync(0, CancellationToken.None));

        await log.AppendAsync(0, Enumerable.Range(0, 40).Select(i => (InboxEntry)new TickEntry(i)).ToArray(), CancellationToken.None);
        Assert.Equal(41, await log.EndOffsetAsync(0, CancellationToken.None));

        // A burst of concurrent appends lands in large chunks; the probe still sees the end of the last one.
        await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            log.AppendAsync(0, [RmqTest.Telemetry(20), new TickEntry(i)], CancellationToken.None).AsTask()));
        Assert.Equal(141, await log.EndOffsetAsync(0, CancellationToken.None));
        Assert.Equal(0, await log.EndOffsetAsync(1, CancellationToken.None));

        // Equal to the reader's next offset once everything is read, which is what lag and quiescence checks compare.
        await using var reader = log.OpenReader(0, 0);
        var records = await RmqTest.ReadExactlyAsync(reader, 141);
        Assert.Equal(records[^1].Offset + 1, await log.EndOffsetAsync(0, CancellationToken.None));
    }

    [Fact]
    public async Task Appends_fail_fast_while_the_broker_is_unreachable_and_the_startup_error_names_the_endpoint()
    {
        var port = RabbitMqServer.FreePort();
        var options = server.NewOptions();
        options.Uri = $"amqp://someone:pa55w0rd-secret@127.0.0.1:{port}/some-vhost";
        await using var log = new RabbitMqInboxLog(options, 1);

        var error = await Assert.ThrowsAsync<RabbitMqUnreachableException>(() => log.EnsureStreamsAsync(1, CancellationToken.None));
        Assert.Contains($"127.0.0.1:{port}", error.Message);
        Assert.Contains("some-vhost", error.Message);
        Assert.DoesNotContain("pa55w0rd-secret", error.ToString());

        var clock = Stopwatch.StartNew();
        var unavailable = await Assert.ThrowsAsync<LogUnavailableException>(() => log.AppendAsync(0, [new TickEntry(1)], CancellationToken.None).AsTask());
        Assert.True(clock.Elapsed < options.PublishTimeout, $"took {clock.Elapsed}");
        Assert.DoesNotContain("pa55w0rd-secret", unavailable.ToString());
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Empty(new RabbitMqOptions().Validate());
        var bad = new RabbitMqOptions
        {
            Uri = "http://x", StreamPrefix = "a b", MaxAge = TimeSpan.Zero, MaxLengthBytes = 0, MaxSegmentSizeBytes = 0,
            Prefetch = 0, PublishTimeout = TimeSpan.Zero, PublisherChannels = 0, ReconnectInterval = TimeSpan.Zero,
        };
        var errors = bad.Validate();
        foreach (var name in new[] { "Uri", "StreamPrefix", "MaxAge", "MaxLengthBytes", "MaxSegmentSizeBytes", "Prefetch", "PublishTimeout", "PublisherChannels", "ReconnectInterval" })
        {
            Assert.Contains(errors, e => e.StartsWith($"RabbitMq:{name} ", StringComparison.Ordinal));
        }
        Assert.Equal("127.0.0.1:5673 vhost 'v/1'", new RabbitMqOptions { Uri = "amqp://u:p@127.0.0.1:5673/v%2F1" }.Describe());
        Assert.Equal("h:5672 vhost '/'", new RabbitMqOptions { Uri = "amqp://h" }.Describe());
        Assert.Equal("86400s", new RabbitMqOptions { MaxAge = TimeSpan.FromDays(1) }.MaxAgeArgument);
    }
}
