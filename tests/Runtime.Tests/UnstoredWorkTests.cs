using Runtime.Partitions;

namespace Runtime.Tests;

/// <summary>
/// The reader's bookkeeping of work sensors have not stored: which sensors a checkpoint flushes (all of a small fleet,
/// the ones whose work has waited the write interval in a large one) and which snapshot of the partition may be stored
/// (the newest one taken before any work still unstored was given).
/// </summary>
public sealed class UnstoredWorkTests
{
    private const long Interval = 30_000;

    private static PartitionState At(long nextOffset) => new() { NextOffset = nextOffset };

    [Fact]
    public void A_small_fleet_flushes_every_sensor_and_commits_the_newest_snapshot()
    {
        var work = new UnstoredWork();
        work.Touch("a", 10, nowMs: 0);
        work.Touch("b", 11, nowMs: 0);
        work.AddSnapshot(At(2));

        var flush = work.Select(nowMs: 5_000, Interval, allUpTo: 2);
        Assert.Equal([("a", 10L), ("b", 11L)], flush.Sensors.Select(s => (s.SensorId, s.Given)).Order());
        work.Flushed(flush);

        Assert.Equal(0, work.Count);
        Assert.Equal(2, work.TakeCommittable()!.NextOffset);
        Assert.Equal(0, work.Snapshots);
        Assert.Null(work.TakeCommittable());
    }

    [Fact]
    public void A_large_fleet_flushes_only_work_older_than_the_interval_and_commits_what_every_sensor_stored()
    {
        var work = new UnstoredWork();
        work.Touch("a", 10, nowMs: 0);
        work.AddSnapshot(At(1));                // snapshot 1: a's work is in it
        work.Touch("b", 20, nowMs: 5_000);
        work.AddSnapshot(At(2));                // snapshot 2: b's too
        work.Touch("c", 30, nowMs: 25_000);
        work.AddSnapshot(At(3));

        // At 30 s only a's work has waited the interval: a is flushed; b's work (given after snapshot 1) holds the rest.
        var flush = work.Select(nowMs: 30_000, Interval, allUpTo: 0);
        Assert.Equal(["a"], flush.Sensors.Select(s => s.SensorId));
        work.Flushed(flush);
        Assert.Equal(1, work.TakeCommittable()!.NextOffset);

        // Nothing more until b's work is old enough.
        Assert.Empty(work.Select(nowMs: 34_999, Interval, allUpTo: 0).Sensors);
        Assert.Null(work.TakeCommittable());

        flush = work.Select(nowMs: 35_000, Interval, allUpTo: 0);
        Assert.Equal(["b"], flush.Sensors.Select(s => s.SensorId));
        work.Flushed(flush);
        Assert.Equal(2, work.TakeCommittable()!.NextOffset);
        Assert.Equal(1, work.Count);

        // The last checkpoint before stopping flushes everyone.
        flush = work.Select(nowMs: 36_000, Interval, allUpTo: 0, all: true);
        Assert.Equal(["c"], flush.Sensors.Select(s => s.SensorId));
        work.Flushed(flush);
        Assert.Equal(3, work.TakeCommittable()!.NextOffset);
    }

    [Fact]
    public void A_sensor_given_work_while_it_was_flushed_still_holds_that_work()
    {
        var work = new UnstoredWork();
        work.Touch("a", 10, nowMs: 0);
        work.AddSnapshot(At(1));
        var flush = work.Select(nowMs: 1_000, Interval, allUpTo: 10);

        // The reader goes on while the flush runs: a gets more work, and a snapshot is taken after it.
        work.Touch("a", 12, nowMs: 1_500);
        work.AddSnapshot(At(2));
        work.Flushed(flush);

        Assert.Equal(1, work.Count);
        Assert.Equal(1, work.TakeCommittable()!.NextOffset); // not 2: a may not have stored what it got at 1.5 s
        Assert.Null(work.TakeCommittable());

        // Its remaining work counts as given when the flush was chosen: old enough 30 s after that.
        Assert.Empty(work.Select(nowMs: 30_999, Interval, allUpTo: 0).Sensors);
        flush = work.Select(nowMs: 31_000, Interval, allUpTo: 0);
        Assert.Equal([("a", 12L)], flush.Sensors.Select(s => (s.SensorId, s.Given)));
        work.Flushed(flush);
        Assert.Equal(2, work.TakeCommittable()!.NextOffset);
    }

    [Fact]
    public void Past_the_limit_a_new_snapshot_replaces_the_newest_kept()
    {
        var work = new UnstoredWork();
        work.Touch("a", 1, nowMs: 0);
        for (var offset = 1; offset <= UnstoredWork.MaxSnapshots + 3; offset++)
        {
            work.AddSnapshot(At(offset));
        }

        Assert.Equal(UnstoredWork.MaxSnapshots, work.Snapshots);
        Assert.Null(work.TakeCommittable()); // a's work is in every snapshot

        work.Flushed(work.Select(nowMs: 0, Interval, allUpTo: 1));
        Assert.Equal(UnstoredWork.MaxSnapshots + 3, work.TakeCommittable()!.NextOffset);
        Assert.Equal(0, work.Snapshots);
    }

    [Fact]
    public void Sensors_whose_work_began_together_are_flushed_the_oldest_first_a_bounded_number_per_checkpoint()
    {
        var work = new UnstoredWork();
        foreach (var i in new[] { 7, 2, 9, 0, 5, 3, 8, 1, 6, 4 })
        {
            work.Touch($"s{i}", 100 + i, nowMs: i);
        }

        // 10 sensors, checkpoints every 5 s, writes every 30 s: at most ceil(2 * 10 * 5 / 30) = 4 a checkpoint.
        var bound = work.FlushBound(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), allUpTo: 0);
        Assert.Equal(4, bound);
        var first = work.Select(nowMs: 30_009, Interval, allUpTo: 0, max: bound);
        Assert.Equal(["s0", "s1", "s2", "s3"], first.Sensors.Select(s => s.SensorId));
        work.Flushed(first);

        // 6 left: at most 2 * 6 * 5 / 30 = 2 at the next checkpoint.
        var second = work.Select(nowMs: 35_000, Interval, allUpTo: 0, max: work.FlushBound(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), 0));
        Assert.Equal(["s4", "s5"], second.Sensors.Select(s => s.SensorId));
        work.Flushed(second);
        Assert.Equal(["s6", "s7", "s8", "s9"], work.Select(nowMs: 40_000, Interval, allUpTo: 0).Sensors.Select(s => s.SensorId).Order());

        // Never fewer than the small-fleet bound, and a final checkpoint takes every sensor.
        Assert.Equal(1_000, work.FlushBound(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), allUpTo: 1_000));
        Assert.Equal(4, work.Select(nowMs: 40_000, Interval, allUpTo: 0, all: true, max: 1).Sensors.Count);
    }
}
