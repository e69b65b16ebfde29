using System.Collections.Immutable;
using Grains.Abstractions;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// The guarantees under failure: every reading counted exactly once in its minute aggregate and no alert opened
/// twice, across an abrupt stop (no final checkpoint, replay by the new owner) and a graceful hand-over.
/// </summary>
public sealed class FailoverTests
{
    private static readonly KnownInput Input = new("fo", sensors: 40, seconds: 180);
    private static readonly RuleDefinition HotRule = KnownInput.HotRule;
    private static readonly long T0 = KnownInput.T0;
    private const int Seconds = 180;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Abrupt_stop_mid_stream_loses_no_reading_and_counts_none_twice(bool deactivateAtOnce)
    {
        await using var cluster = await TestCluster.StartAsync(3, configure: o =>
        {
            if (deactivateAtOnce)
            {
                o.IdleDeactivation = TimeSpan.Zero;
            }
            if (o.SiloId == "silo-0")
            {
                // The victim never checkpoints: everything it applied must be replayed by the silos that take over.
                o.CheckpointInterval = TimeSpan.FromHours(1);
                o.CheckpointMaxRecords = 1_000_000;
            }
        });
        await cluster.Gateway.BroadcastRuleChangeAsync(HotRule.Id, HotRule, CancellationToken.None);

        await PostAsync(cluster, 0, Seconds / 2);
        var victim = cluster.Silos.Single(s => s.SiloId == "silo-0");
        await Eventually.Until(async () =>
        {
            foreach (var p in victim.OwnedPartitions)
            {
                if (victim.Worker(p)?.NextOffset != await cluster.Log.EndOffsetAsync(p, CancellationToken.None))
                {
                    return false;
                }
            }
            return true;
        }, TimeSpan.FromSeconds(20), "the victim applied all it was sent");
        var published = cluster.PublishedOf<GrainOutput>().Count;
        await cluster.KillAsync(victim);
        await PostAsync(cluster, Seconds / 2, Seconds);
        await cluster.WaitForBalanceAsync();
        await cluster.Gateway.TickAsync(T0 + 10 * 60_000, CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();

        await AssertExactAggregatesAsync(cluster);
        await AssertAlertsOpenedOnceAsync(cluster);
        // The takeover really replayed the victim's uncheckpointed work: its outputs were published again, with the same ids.
        Assert.True(published > 0);
        var ids = cluster.PublishedOf<GrainOutput>().Select(o => o.Id).ToList();
        Assert.True(ids.Count > ids.Distinct().Count(), "a replay republishes events with the ids they had");
    }

    [Fact]
    public async Task Graceful_restart_hands_over_without_replaying()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await cluster.Gateway.BroadcastRuleChangeAsync(HotRule.Id, HotRule, CancellationToken.None);

        await PostAsync(cluster, 0, Seconds / 2);
        await cluster.StopAsync(cluster.Silos[1]);
        await cluster.AddSiloAsync();
        await PostAsync(cluster, Seconds / 2, Seconds);
        await cluster.WaitForBalanceAsync();
        await cluster.Gateway.TickAsync(T0 + 10 * 60_000, CancellationToken.None);
        await cluster.WaitForQuiescenceAsync();

        await AssertExactAggregatesAsync(cluster);
        await AssertAlertsOpenedOnceAsync(cluster);
        // A hand-over after a final checkpoint replays nothing: no live event was published twice.
        var ids = cluster.PublishedOf<GrainOutput>().Select(o => o.Id).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    private static Task PostAsync(TestCluster cluster, int from, int to) => Input.PostAsync(cluster.Gateway, from, to);

    private static Task AssertExactAggregatesAsync(TestCluster cluster) => Input.AssertExactAggregatesAsync(cluster.Store);

    private static Task AssertAlertsOpenedOnceAsync(TestCluster cluster) =>
        Input.AssertAlertsOpenedOnceAsync(cluster.Store, cluster.PublishedOf<GrainOutput>());
}
