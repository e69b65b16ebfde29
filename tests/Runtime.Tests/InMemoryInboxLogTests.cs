using Tests.Shared;
using Grains.Abstractions;
using Runtime.InMemory;

namespace Runtime.Tests;

public sealed class InMemoryInboxLogTests
{
    private static TelemetryEntry Entry(int i) =>
        new([new Reading { SensorId = "s", TimestampMs = 1_000 + i, Metrics = [new("t", i)] }], null, 1_000 + i);

    private static async Task<List<LogRecord>> ReadAll(IInboxReader reader)
    {
        var records = new List<LogRecord>();
        while (await reader.ReadAsync(records, 100, TimeSpan.FromMilliseconds(10), CancellationToken.None) > 0)
        {
        }
        return records;
    }

    [Fact]
    public async Task A_commit_drops_entries_below_it_but_none_an_open_reader_still_needs()
    {
        var log = new InMemoryInboxLog(1);
        await log.AppendAsync(0, Enumerable.Range(0, 10).Select(Entry).ToArray(), CancellationToken.None);

        // A reader (a paused former owner, say) at offset 3 keeps entries 3.. even when the checkpoint is at 8.
        await using (var behind = log.OpenReader(0, 3))
        {
            log.Committed(0, 8);
            Assert.Equal(3, log.StartOffset(0));
            var records = await ReadAll(behind);
            Assert.Equal(Enumerable.Range(3, 7).Select(i => (long)i), records.Select(r => r.Offset));
            Assert.Equal(9.0, ((TelemetryEntry)records[^1].Entry).Readings[0].Metrics[0].Value);
        }

        // With no reader behind it, the checkpoint offset bounds the log; offsets and the end stay where they were.
        log.Committed(0, 8);
        Assert.Equal(8, log.StartOffset(0));
        Assert.Equal(10, await log.EndOffsetAsync(0, CancellationToken.None));
        await using var resumed = log.OpenReader(0, 8);
        Assert.Equal([8L, 9L], (await ReadAll(resumed)).Select(r => r.Offset));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.OpenReader(0, 7));
    }

    [Fact]
    public async Task Entries_read_back_exactly_as_appended_and_hold_no_object_of_the_caller()
    {
        var log = new InMemoryInboxLog(1);
        var metrics = new MetricValue[] { new("t", 21.5), new("nan", double.NaN), new("up", double.PositiveInfinity), new("tiny", 5e-324) };
        var reading = new Reading
        {
            SensorId = "s-\u00e9\"q", TimestampMs = 1_700_000_000_123, Metrics = metrics, Attributes = [new("door", "open")],
            Metadata = new SensorMetadata { Model = "m1", Location = "hall" },
        };
        await log.AppendAsync(0, [new TelemetryEntry([reading], "caller:key", 1_700_000_000_200), new TickEntry(1_700_000_001_000)],
            CancellationToken.None);
        metrics[0] = new("t", 99); // the caller reuses its objects after the append

        await using var reader = log.OpenReader(0, 0);
        var records = await ReadAll(reader);
        Assert.Equal([0L, 1L], records.Select(r => r.Offset));
        var telemetry = Assert.IsType<TelemetryEntry>(records[0].Entry);
        Assert.Equal("caller:key", telemetry.IdempotencyKey);
        Assert.Equal(1_700_000_000_200, telemetry.ReceivedAtMs);
        var read = Assert.Single(telemetry.Readings);
        Assert.NotSame(reading, read);
        Assert.Equal("s-\u00e9\"q", read.SensorId);
        Assert.Equal(1_700_000_000_123, read.TimestampMs);
        Assert.Equal(["t", "nan", "up", "tiny"], read.Metrics.Select(m => m.Name));
        Assert.Equal(21.5, read.Metrics[0].Value);
        Assert.True(double.IsNaN(read.Metrics[1].Value));
        Assert.Equal(double.PositiveInfinity, read.Metrics[2].Value);
        Assert.Equal(5e-324, read.Metrics[3].Value);
        Assert.Equal([new AttributeValue("door", "open")], read.Attributes!);
        Assert.Equal(new SensorMetadata { Model = "m1", Location = "hall" }, read.Metadata);
        Assert.Equal(new TickEntry(1_700_000_001_000), records[1].Entry);
    }

    [Fact]
    public async Task A_checkpoint_trims_the_embedded_log_and_a_new_reader_resumes_after_it()
    {
        await using var silos = await TestSilos.StartAsync(1, o => o.Partitions = 1);
        Reading[] Readings(int from) => Enumerable.Range(from, 50)
            .Select(i => new Reading { SensorId = "s", TimestampMs = 1_000 + i, Metrics = [new("t", i)] }).ToArray();
        foreach (var batch in Readings(0).Chunk(10))
        {
            await silos.Inbox.AppendTelemetryAsync(batch, null, CancellationToken.None);
        }

        await silos.WaitForQuiescenceAsync();
        Assert.Equal(5, silos.Log.StartOffset(0));

        await silos.Cluster.KillSiloAsync(silos.Cluster.Silos[0]);
        await silos.Cluster.StartAdditionalSiloAsync();
        await silos.WaitForPartitionsAsync();
        foreach (var batch in Readings(50).Chunk(10))
        {
            await silos.Inbox.AppendTelemetryAsync(batch, null, CancellationToken.None);
        }

        await silos.WaitForQuiescenceAsync();
        Assert.Equal(10, silos.Log.StartOffset(0));
        var view = await silos.Grains.GetGrain<ISensorGrain>("s").GetViewAsync();
        Assert.Equal(100, view!.CurrentMinute!.Metrics.Single().Count);
    }
}
