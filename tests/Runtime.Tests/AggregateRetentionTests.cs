using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Runtime.Hosting;
using Runtime.InMemory;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// The embedded store keeps minute aggregates for <c>Embedded:AggregateRetention</c>, and the retention service deletes the
/// older ones every hour (the PostgreSQL store's deletes, and both stores' counts, are in Integration.Tests).
/// </summary>
public sealed class AggregateRetentionTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.Parse("2026-03-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static MinuteAggregate Aggregate(string sensor, long minuteMs) => new()
    {
        SensorId = sensor,
        MinuteMs = minuteMs,
        Metrics = [new MetricAggregate { Metric = "t", Count = 1, Min = 1, Max = 1, Sum = 1, First = 1, Last = 1 }],
    };

    private static async Task<long[]> MinutesAsync(InMemoryStore store, string sensor) =>
        (await store.GetAggregatesAsync(sensor, 0, long.MaxValue, null, CancellationToken.None)).Select(a => a.MinuteMs).ToArray();

    [Fact]
    public async Task The_service_deletes_the_minutes_past_the_retention_once_an_hour()
    {
        var time = new FakeTimeProvider(Start);
        var store = new InMemoryStore(time, aggregateRetention: TimeSpan.FromDays(7));
        // The cutoff of the first pass, an hour after the start: minutes on both sides of it and of the next pass's cutoff,
        // an hour later; a sensor with only old minutes.
        var cutoff = (Start + AggregateRetentionService.Interval - TimeSpan.FromDays(7)).ToUnixTimeMilliseconds();
        long[] minutes = [cutoff - 60_000, cutoff, cutoff + 59 * 60_000, cutoff + 60 * 60_000];
        await store.WriteAsync([.. minutes.Select(m => Aggregate("s1", m)), Aggregate("old", cutoff - 120_000)], CancellationToken.None);

        using var service = new AggregateRetentionService(store, time, NullLogger<AggregateRetentionService>.Instance);
        await service.StartAsync(CancellationToken.None);
        try
        {
            time.Advance(AggregateRetentionService.Interval - TimeSpan.FromSeconds(1));
            Assert.Equal(minutes, await MinutesAsync(store, "s1")); // nothing before the hour is up

            time.Advance(TimeSpan.FromSeconds(1));
            await Waiting.Until(async () => (await MinutesAsync(store, "s1")).Length == 3, TimeSpan.FromSeconds(10), "the first hourly pass");
            Assert.Equal([cutoff, cutoff + 59 * 60_000, cutoff + 60 * 60_000], await MinutesAsync(store, "s1"));
            Assert.Empty(await MinutesAsync(store, "old"));

            // An hour later the cutoff has moved on by an hour.
            time.Advance(AggregateRetentionService.Interval);
            await Waiting.Until(async () => (await MinutesAsync(store, "s1")).Length == 1, TimeSpan.FromSeconds(10), "the second hourly pass");
            Assert.Equal([cutoff + 60 * 60_000], await MinutesAsync(store, "s1"));
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_failed_pass_is_logged_and_the_next_hour_tries_again()
    {
        var time = new FakeTimeProvider(Start);
        var store = new FailingOnce();
        using var service = new AggregateRetentionService(store, time, NullLogger<AggregateRetentionService>.Instance);
        await service.StartAsync(CancellationToken.None);
        try
        {
            time.Advance(AggregateRetentionService.Interval);
            await Waiting.Until(() => store.Calls == 1, TimeSpan.FromSeconds(10), "the failing pass");
            time.Advance(AggregateRetentionService.Interval);
            await Waiting.Until(() => store.Calls == 2, TimeSpan.FromSeconds(10), "the pass an hour later");
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
        }
    }

    private sealed class FailingOnce : IAggregateRetention
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public Task<long> DeleteExpiredAggregatesAsync(CancellationToken cancellationToken) =>
            Interlocked.Increment(ref _calls) == 1 ? throw new InvalidOperationException("the store is down") : Task.FromResult(0L);
    }
}
