using System.Diagnostics;
using Runtime;
using Runtime.RabbitMq;
using Xunit.Abstractions;

namespace Integration.Tests.RabbitMq;

/// <summary>Broker restarts and alarms. Runs in the RabbitMQ collection, so no other test uses the node meanwhile.</summary>
[Collection(RabbitMqCollection.Name)]
public sealed class RabbitMqOutageTests(RabbitMqServer server, ITestOutputHelper output)
{
    [Fact]
    public async Task After_a_broker_restart_appends_resume_and_an_open_reader_continues_without_loss_or_duplicates()
    {
        var options = server.NewOptions();
        await using var log = new RabbitMqInboxLog(options, 2, XunitLoggerProvider.Factory(output));
        await log.EnsureStreamsAsync(2, CancellationToken.None);
        var appended = new List<long>();
        for (var i = 0; i < 10; i++)
        {
            await log.AppendAsync(0, [new TickEntry(i)], CancellationToken.None);
            appended.Add(i);
        }
        await using var reader = log.OpenReader(0, 0);
        var records = await RmqTest.ReadExactlyAsync(reader, 10, checkNoMore: false);

        await server.StopAppAsync();
        try
        {
            // Down: every append fails within the publish timeout (at once, since the connection is known to be gone).
            for (var i = 0; i < 3; i++)
            {
                var clock = Stopwatch.StartNew();
                await Assert.ThrowsAsync<LogUnavailableException>(() => log.AppendAsync(0, [new TickEntry(-1)], CancellationToken.None).AsTask());
                Assert.True(clock.Elapsed < options.PublishTimeout + TimeSpan.FromSeconds(1), $"took {clock.Elapsed}");
            }
            await Assert.ThrowsAsync<LogUnavailableException>(() => log.EndOffsetAsync(0, CancellationToken.None).AsTask());
            var none = new List<LogRecord>();
            Assert.Equal(0, await reader.ReadAsync(none, 10, TimeSpan.FromMilliseconds(200), CancellationToken.None));
        }
        finally
        {
            await server.StartAppAsync();
        }

        // Up again: appends succeed once the client has reconnected (retrying like a client on 503 would).
        var next = 10L;
        await RmqTest.UntilAsync(async () =>
        {
            try
            {
                await log.AppendAsync(0, [new TickEntry(next)], CancellationToken.None);
                appended.Add(next++);
                return true;
            }
            catch (LogUnavailableException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "an append succeeds after the restart");
        for (var i = 0; i < 10; i++)
        {
            await log.AppendAsync(0, [new TickEntry(next)], CancellationToken.None);
            appended.Add(next++);
        }
        await log.AppendAsync(1, [new TickEntry(1)], CancellationToken.None);

        // The reader that was open across the restart picks up exactly the records after the last one it delivered.
        records.AddRange(await RmqTest.ReadExactlyAsync(reader, appended.Count - 10, TimeSpan.FromSeconds(30)));
        Assert.Equal(appended, records.Select(r => ((TickEntry)r.Entry).TimeMs));
        Assert.Equal(Enumerable.Range(0, appended.Count).Select(i => (long)i), records.Select(r => r.Offset));
        Assert.Equal(appended.Count, await log.EndOffsetAsync(0, CancellationToken.None));
    }

    [Fact]
    public async Task Appends_fail_within_the_publish_timeout_while_the_broker_blocks_publishers()
    {
        var options = server.NewOptions();
        options.PublishTimeout = TimeSpan.FromSeconds(2);
        await using var log = new RabbitMqInboxLog(options, 1, XunitLoggerProvider.Factory(output));
        await log.EnsureStreamsAsync(1, CancellationToken.None);
        await log.AppendAsync(0, [new TickEntry(0)], CancellationToken.None);

        // A memory alarm: the broker blocks every publishing connection.
        await server.CtlAsync("set_vm_memory_high_watermark", "0");
        try
        {
            var failures = 0;
            await RmqTest.UntilAsync(async () =>
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    await log.AppendAsync(0, [new TickEntry(-1)], CancellationToken.None);
                    return false;
                }
                catch (LogUnavailableException e)
                {
                    output.WriteLine($"{clock.ElapsedMilliseconds} ms: {e.Message}");
                    Assert.True(clock.Elapsed < options.PublishTimeout + TimeSpan.FromSeconds(1), $"took {clock.Elapsed}");
                    return ++failures == 3;
                }
            }, TimeSpan.FromSeconds(20), "appends fail while blocked");
        }
        finally
        {
            await server.CtlAsync("set_vm_memory_high_watermark", "0.4");
        }

        await RmqTest.UntilAsync(async () =>
        {
            try
            {
                await log.AppendAsync(0, [new TickEntry(1)], CancellationToken.None);
                return true;
            }
            catch (LogUnavailableException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "an append succeeds after the alarm cleared");
    }
}
