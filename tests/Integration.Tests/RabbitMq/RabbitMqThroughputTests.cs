using System.Diagnostics;
using Grains.Abstractions;
using Runtime;
using Runtime.RabbitMq;
using Xunit.Abstractions;

namespace Integration.Tests.RabbitMq;

/// <summary>A measurement, not a timed assertion: it reports readings per second and checks only that everything arrived.</summary>
[Collection(RabbitMqCollection.Name)]
public sealed class RabbitMqThroughputTests(RabbitMqServer server, ITestOutputHelper output)
{
    [Theory]
    [InlineData(200_000, 500, 8, 64)]
    [InlineData(200_000, 100, 8, 64)]
    public async Task Append_and_read_throughput(int readings, int readingsPerEntry, int partitions, int concurrency)
    {
        await using var log = new RabbitMqInboxLog(server.NewOptions(), partitions);
        await log.EnsureStreamsAsync(partitions, CancellationToken.None);
        var entries = readings / readingsPerEntry;
        // As the Api would append them: one entry per request and partition, sensors spread over the partitions.
        var work = Enumerable.Range(0, entries).Select(e => (Partition: e % partitions, Entry: new TelemetryEntry(
            Enumerable.Range(0, readingsPerEntry).Select(i => new Reading
            {
                SensorId = $"sensor-{(e * readingsPerEntry + i) % 5000:D5}",
                TimestampMs = 1_700_000_000_000 + e * 1000L + i,
                Metrics = [new MetricValue("temperature", 20 + i % 10 * 0.5), new MetricValue("humidity", 40 + i % 30), new MetricValue("light", i % 2)],
            }).ToArray(), null, 1_700_000_000_000 + e * 1000L))).ToArray();
        // Warm up the connection, channels and the JSON code paths (JIT) with one entry, read back, in partition 0.
        await log.AppendAsync(0, [work[0].Entry], CancellationToken.None);
        await using (var warmUp = log.OpenReader(0, 0))
        {
            await RmqTest.ReadExactlyAsync(warmUp, 1, checkNoMore: false);
        }

        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < work.Length)
            {
                await log.AppendAsync(work[i].Partition, [work[i].Entry], CancellationToken.None);
            }
        })));
        var appendTime = clock.Elapsed;

        clock.Restart();
        var read = await Task.WhenAll(Enumerable.Range(0, partitions).Select(async p =>
        {
            await using var reader = log.OpenReader(p, p == 0 ? 1 : 0);
            var count = work.Where(w => w.Partition == p).Sum(w => w.Entry.Readings.Length);
            var records = await RmqTest.ReadReadingsAsync(reader, count, TimeSpan.FromSeconds(60));
            return records.Sum(r => RmqTest.Telemetry(r.Entry).Sum(t => t.Readings.Length));
        }));
        var readTime = clock.Elapsed;

        Assert.Equal(readings, read.Sum());
        var report = $"{readings:N0} readings in {entries} entries of {readingsPerEntry} over {partitions} partitions, {concurrency} concurrent appends: " +
                     $"append {readings / appendTime.TotalSeconds:N0} readings/s ({appendTime.TotalMilliseconds:N0} ms, {entries / appendTime.TotalSeconds:N0} confirmed entries/s), " +
                     $"read {readings / readTime.TotalSeconds:N0} readings/s ({readTime.TotalMilliseconds:N0} ms)";
        output.WriteLine(report);
        Console.WriteLine(report);
    }
}
