using Tests.Shared;
using Grains.Abstractions;
using Runtime.InMemory;

namespace Runtime.Tests;

/// <summary>
/// The log refusing appends for a while (a broker restart or alarm) must not stop a partition: the ticks its reader
/// appends when idle wait and go out once the log takes writes again, and the minutes they close are emitted then.
/// </summary>
public sealed class LogOutageTests
{
    [Fact]
    public async Task A_partition_waits_for_the_log_when_its_tick_is_refused()
    {
        RefusingLog? refusing = null;
        await using var silos = await TestSilos.StartAsync(1, o =>
        {
            o.TicksEnabled = true;
            o.TickInterval = TimeSpan.FromMilliseconds(100);
        }, wrapLog: log => refusing = new RefusingLog(log));
        refusing!.Refusing = true;

        // A reading whose receipt time is now: its minute closes 70 s of receipt time after the minute's start, which
        // only a tick can bring about (no other reading comes).
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var reading = new Reading { SensorId = "quiet-1", TimestampMs = now - 80_000, Metrics = [new MetricValue("t", 20)] };
        await silos.Log.AppendAsync(Partitioner.PartitionOf(reading.SensorId, silos.Options.Partitions),
            [new TelemetryEntry([reading], null, now - 79_000)], CancellationToken.None);
        await Waiting.Until(() => refusing.Refused >= 2, TimeSpan.FromSeconds(10), "the reader's tick refused, and tried again");
        Assert.Empty(await silos.Store.GetAggregatesAsync(reading.SensorId, now - 600_000, now, null, CancellationToken.None));

        refusing.Refusing = false;
        await Waiting.Until(async () => (await silos.Store.GetAggregatesAsync(reading.SensorId, now - 600_000, now, null, CancellationToken.None)).Count == 1,
            TimeSpan.FromSeconds(10), "the minute closed once the tick went out");
        Assert.All(await silos.StatusesAsync(), s => Assert.NotNull(s));
    }

    /// <summary>The in-memory log, refusing appends with <see cref="LogUnavailableException"/> while <see cref="Refusing"/> is set.</summary>
    private sealed class RefusingLog(InMemoryInboxLog inner) : IInboxLog
    {
        private int _refused;

        public volatile bool Refusing;

        public int Refused => Volatile.Read(ref _refused);

        public int Partitions => inner.Partitions;

        public ValueTask AppendAsync(int partition, IReadOnlyList<InboxEntry> entries, CancellationToken cancellationToken)
        {
            if (Refusing)
            {
                Interlocked.Increment(ref _refused);
                throw new LogUnavailableException("The test log refuses appends.");
            }

            return inner.AppendAsync(partition, entries, cancellationToken);
        }

        public IInboxReader OpenReader(int partition, long fromOffset) => inner.OpenReader(partition, fromOffset);

        public ValueTask<long> EndOffsetAsync(int partition, CancellationToken cancellationToken) => inner.EndOffsetAsync(partition, cancellationToken);

        public void Committed(int partition, long beforeOffset) => inner.Committed(partition, beforeOffset);
    }
}
