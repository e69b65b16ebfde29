using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Runtime.Partitions;

namespace Runtime.Tests;

/// <summary>
/// A partition applies telemetry with an idempotency key once within the window, across its stored state (a replay or
/// another activation), while a snapshot costs the keys applied since the previous one, not the whole window.
/// </summary>
public sealed class AppliedKeysTests
{
    private const long T0 = 1_700_000_040_000;
    private const long WindowMs = 15 * 60_000;

    private static readonly Serializer Serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();

    private static LogRecord Keyed(long offset, string key, long receivedAtMs, string sensorId = "s1") =>
        new(offset, new TelemetryEntry([new Reading { SensorId = sensorId, TimestampMs = receivedAtMs, Metrics = [new MetricValue("t", offset)] }],
            key, receivedAtMs));

    private static PartitionBatch Take(PartitionLogic logic, params LogRecord[] records)
    {
        var batch = new PartitionBatch();
        Assert.Equal(records.Length, logic.Take(records, 0, batch));
        return batch;
    }

    [Fact]
    public void A_key_is_applied_once_within_the_window_and_again_after_it()
    {
        var keys = new AppliedKeys();
        Assert.True(keys.TryApply("k", T0, WindowMs));
        Assert.False(keys.TryApply("k", T0 + 1, WindowMs));
        Assert.False(keys.TryApply("k", T0 + WindowMs, WindowMs));
        Assert.True(keys.TryApply("other", T0 + 1, WindowMs));
        Assert.True(keys.TryApply("k", T0 + WindowMs + 1, WindowMs));
        Assert.False(keys.TryApply("k", T0 + WindowMs + 2, WindowMs));
    }

    [Fact]
    public void A_snapshot_shares_the_segments_before_it_and_stores_24_bytes_per_key()
    {
        var keys = new AppliedKeys();
        Assert.True(keys.TryApply("a", T0, WindowMs));
        Assert.True(keys.TryApply("b", T0 + 1, WindowMs));
        var first = keys.Snapshot(T0 - WindowMs);
        Assert.Equal([2 * AppliedKeys.EntryBytes], first.Select(s => s.Length));

        Assert.True(keys.TryApply("c", T0 + 2, WindowMs));
        var second = keys.Snapshot(T0 - WindowMs);
        Assert.Equal([2 * AppliedKeys.EntryBytes, AppliedKeys.EntryBytes], second.Select(s => s.Length));
        Assert.Same(first[0], second[0]);
        Assert.Single(first); // taken before: unchanged

        Assert.Equal(2, keys.Snapshot(T0 - WindowMs).Length); // nothing new: no empty segment
    }

    [Fact]
    public void Keys_restored_from_segments_are_known_and_a_segment_is_forgotten_whole_once_its_newest_key_left_the_window()
    {
        var keys = new AppliedKeys();
        Assert.True(keys.TryApply("old", T0, WindowMs));
        Assert.True(keys.TryApply("again", T0 + 10, WindowMs));
        keys.Snapshot(long.MinValue);
        Assert.True(keys.TryApply("new", T0 + 20, WindowMs));
        Assert.True(keys.TryApply("again", T0 + WindowMs + 11, WindowMs)); // applied again after its window: in the newer segment
        var stored = keys.Snapshot(long.MinValue);

        var restored = new AppliedKeys(stored);
        Assert.Equal(3, restored.Count);
        Assert.False(restored.TryApply("old", T0 + 1, WindowMs));
        Assert.False(restored.TryApply("new", T0 + 21, WindowMs));

        // The first segment's newest key ("again" at T0 + 10) is older than the cut: the segment goes, "old" with it, and
        // "again" stays known from the newer segment.
        var kept = restored.Snapshot(T0 + 11);
        Assert.Equal([2 * AppliedKeys.EntryBytes], kept.Select(s => s.Length));
        Assert.Equal(2, restored.Count);
        Assert.False(restored.TryApply("again", T0 + WindowMs + 12, WindowMs));
        Assert.True(restored.TryApply("old", T0 + 2, WindowMs));
    }

    [Fact]
    public void A_state_stored_with_whole_keys_is_read_into_segments()
    {
        var logic = new PartitionLogic(0, 1, new PartitionState { AppliedKeys = new() { ["k1"] = T0, ["k2"] = T0 + 5 } }, TimeSpan.FromMinutes(15));
        var batch = Take(logic, Keyed(0, "k1", T0 + 10), Keyed(1, "k3", T0 + 10));
        Assert.Equal(1, batch.DuplicatesSkipped);
        Assert.Equal([1L], batch.Sensors["s1"].Select(i => LogPosition.OffsetOf(i.Position)));

        var snapshot = logic.Snapshot();
        Assert.Empty(snapshot.AppliedKeys);
        Assert.Equal([2 * AppliedKeys.EntryBytes, AppliedKeys.EntryBytes], snapshot.AppliedKeySegments.Select(s => s.Length));
    }

    [Fact]
    public void A_resent_request_is_skipped_by_the_partition_after_a_replay_from_its_stored_state()
    {
        var logic = new PartitionLogic(0, 1, new PartitionState(), TimeSpan.FromMinutes(15));
        var first = Take(logic, Keyed(0, "caller:key-1", T0), Keyed(1, "caller:key-2", T0 + 1), Keyed(2, "caller:key-1", T0 + 2));
        Assert.Equal(1, first.DuplicatesSkipped);
        Assert.Equal([0L, 1L], first.Sensors["s1"].Select(i => LogPosition.OffsetOf(i.Position)));

        // Stored with Orleans' serializer, as the partition grain's state is, and loaded by the next activation.
        var stored = Serializer.Deserialize<PartitionState>(Serializer.SerializeToArray(logic.Snapshot()))!;
        Assert.Empty(stored.AppliedKeys); // present and empty, as a silo of the version before segments expects it
        var resumed = new PartitionLogic(0, 1, stored, TimeSpan.FromMinutes(15));
        var second = Take(resumed, Keyed(3, "caller:key-2", T0 + 60_000), Keyed(4, "caller:key-3", T0 + 60_001));
        Assert.Equal(1, second.DuplicatesSkipped);
        Assert.Equal([4L], second.Sensors["s1"].Select(i => LogPosition.OffsetOf(i.Position)));

        // Past the window the key counts as new.
        var third = Take(resumed, Keyed(5, "caller:key-1", T0 + WindowMs + 1));
        Assert.Equal(0, third.DuplicatesSkipped);
        Assert.Equal([5L], third.Sensors["s1"].Select(i => LogPosition.OffsetOf(i.Position)));
    }
    [Fact]
    public void A_group_record_applies_each_request_as_its_own_entry_with_positions_numbering_on_across_them()
    {
        var logic = new PartitionLogic(0, 1, new PartitionState(), TimeSpan.FromMinutes(15));
        Take(logic, Keyed(0, "caller:key-1", T0));
        var a = new TelemetryEntry(
        [
            new Reading { SensorId = "s1", TimestampMs = T0, Metrics = [new MetricValue("t", 1)] },
            new Reading { SensorId = "s2", TimestampMs = T0, Metrics = [new MetricValue("t", 2)] },
        ], "caller:key-2", T0 + 5);
        var resent = (TelemetryEntry)Keyed(9, "caller:key-1", T0 + 6).Entry;
        var b = new TelemetryEntry([new Reading { SensorId = "s1", TimestampMs = T0 + 7, Metrics = [new MetricValue("t", 3)] }], null, T0 + 7);

        var batch = Take(logic, new LogRecord(1, new TelemetryGroupEntry([a, resent, b])));

        Assert.Equal(1, batch.DuplicatesSkipped); // the resent request's key was applied at offset 0
        Assert.Equal([LogPosition.Of(1, 0), LogPosition.Of(1, 3)], batch.Sensors["s1"].Select(i => i.Position));
        Assert.Equal([T0 + 5, T0 + 7], batch.Sensors["s1"].Select(i => i.ReceivedAtMs));
        Assert.Equal([LogPosition.Of(1, 1)], batch.Sensors["s2"].Select(i => i.Position));
        Assert.Equal(T0 + 7, batch.ReceivedUpToMs);
        Assert.Equal(2, logic.NextOffset);

        // The same record again (a reader that resumed before it) adds nothing.
        Assert.Empty(Take(logic, new LogRecord(1, new TelemetryGroupEntry([a, resent, b]))).Sensors);
    }
}
