using Grains.Abstractions;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// A fleet's minute close makes every sensor of a partition due at once: the partition wakes them a window at a time
/// between its batches, and goes on with the next window without waiting for new records.
/// </summary>
public sealed class WakeRoundsTests
{
    [Fact]
    public async Task Sensors_due_at_once_are_all_woken_in_rounds_without_waiting_for_new_records()
    {
        var input = new KnownInput("wake", sensors: 600, seconds: 1);
        await using var silos = await TestSilos.StartAsync(1, o =>
        {
            o.Partitions = 1;
            // An idle reader waits this long for records: a round that waited for them would not end within the test.
            o.CheckpointInterval = TimeSpan.FromMinutes(5);
            o.PartitionCheckInterval = TimeSpan.FromMinutes(5);
            o.CheckpointMaxRecords = 1_000_000;
        });
        await input.PostAsync(silos.Inbox, 0, 1); // every sensor opens the same minute
        await Waiting.Until(async () => (await silos.StatusesAsync()).Single() is { } s && s.AppliedOffset == s.EndOffset,
            TimeSpan.FromSeconds(30), "the readings applied");
        Assert.Empty(silos.PublishedOf<MinuteAggregate>());

        // Receipt time passes the minute's close (its end plus the allowed lateness) for all 600 sensors at once: more
        // than two windows of calls.
        await silos.TickAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 120_000);

        await Waiting.Until(() => silos.PublishedOf<MinuteAggregate>().Count >= input.Sensors, TimeSpan.FromSeconds(30),
            "every sensor's minute closed");
        var closed = silos.PublishedOf<MinuteAggregate>();
        Assert.Equal(input.Sensors, closed.Select(a => a.SensorId).Distinct().Count());
        Assert.All(closed, a => Assert.Equal(KnownInput.T0, a.MinuteMs));
    }
}
