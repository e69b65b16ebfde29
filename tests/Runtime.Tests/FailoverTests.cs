using Grains.Abstractions;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// The guarantees under failure, on Orleans silos: every reading counted exactly once in its minute aggregate and no
/// alert opened twice, across a killed silo (its partitions and grains reload elsewhere from what was stored, the
/// readers replay) and a graceful stop (grains write their state, readers take a last checkpoint).
/// </summary>
public sealed class FailoverTests
{
    private static readonly KnownInput Input = new("fo", sensors: 40, seconds: 180);
    private const int Seconds = 180;

    /// <param name="largeFleet">
    /// False: rare checkpoints, each storing every sensor. True: checkpoints every 100 ms as in a large fleet, where a
    /// sensor stores its work only once it has waited 300 ms and partitions store the positions their sensors have
    /// covered so far.
    /// </param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_killed_silo_loses_no_reading_and_counts_none_twice(bool largeFleet)
    {
        // The killed silo leaves work that is applied but not stored, which the others must replay.
        await using var silos = await TestSilos.StartAsync(3, o =>
        {
            o.CheckpointInterval = largeFleet ? TimeSpan.FromMilliseconds(100) : TimeSpan.FromSeconds(30);
            o.CheckpointMaxRecords = 1_000_000;
            o.SensorWriteInterval = TimeSpan.FromMilliseconds(300);
            o.SensorWriteAllUpTo = largeFleet ? 0 : 1_000;
        });
        // Partitions answer from the first silos up and move once every silo's manifest is known: the silo to kill must
        // run its share before the work it will lose is applied.
        var victim = silos.Cluster.Silos[1];
        await Waiting.Until(async () => (await silos.StatusesAsync()).Any(s => s?.Silo == victim.SiloAddress.ToParsableString()),
            TimeSpan.FromSeconds(30), "the silo to kill runs partitions");
        await silos.Inbox.AppendRuleChangeAsync(KnownInput.HotRule.Id, KnownInput.HotRule, CancellationToken.None);
        await Input.PostAsync(silos.Inbox, 0, Seconds / 2);
        await WaitAppliedAsync(silos);
        var published = silos.PublishedOf<GrainOutput>().Count;

        var victimPartitions = (await silos.StatusesAsync()).Count(s => s?.Silo == victim.SiloAddress.ToParsableString());
        Assert.True(victimPartitions > 0, "the killed silo ran partitions");
        await silos.Cluster.KillSiloAsync(victim);
        await Input.PostAsync(silos.Inbox, Seconds / 2, Seconds);
        await silos.TickAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 120_000);
        await silos.WaitForQuiescenceAsync();

        await Input.AssertExactAggregatesAsync(silos.Store);
        await Input.AssertAlertsOpenedOnceAsync(silos.Store, silos.PublishedOf<GrainOutput>());
        // The others really replayed the killed silo's unstored work: its outputs were published again, with the same ids.
        Assert.True(published > 0);
        var ids = silos.PublishedOf<GrainOutput>().Select(o => o.Id).ToList();
        Assert.True(ids.Count > ids.Distinct().Count(), "a replay republishes events with the ids they had");
        Assert.DoesNotContain(await silos.StatusesAsync(), s => s?.Silo == victim.SiloAddress.ToParsableString());
    }

    [Fact]
    public async Task A_gracefully_stopped_silo_hands_over_without_replaying()
    {
        await using var silos = await TestSilos.StartAsync(3);
        await silos.Inbox.AppendRuleChangeAsync(KnownInput.HotRule.Id, KnownInput.HotRule, CancellationToken.None);
        await Input.PostAsync(silos.Inbox, 0, Seconds / 2);
        await WaitAppliedAsync(silos);

        await silos.Cluster.StopSiloAsync(silos.Cluster.Silos[1]);
        await silos.Cluster.StartAdditionalSiloAsync();
        await Input.PostAsync(silos.Inbox, Seconds / 2, Seconds);
        await silos.TickAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 120_000);
        await silos.WaitForQuiescenceAsync();

        await Input.AssertExactAggregatesAsync(silos.Store);
        await Input.AssertAlertsOpenedOnceAsync(silos.Store, silos.PublishedOf<GrainOutput>());
        // A hand-over after a last checkpoint replays nothing: no live event was published twice.
        var ids = silos.PublishedOf<GrainOutput>().Select(o => o.Id).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    /// <summary>Every partition's reader has read all that was appended (not necessarily committed it).</summary>
    private static Task WaitAppliedAsync(TestSilos silos) => Waiting.Until(async () =>
        (await silos.StatusesAsync()).All(s => s is not null && s.AppliedOffset == s.EndOffset), TimeSpan.FromSeconds(30), "every partition read to its end");
}
