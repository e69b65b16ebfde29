using System.Collections.Concurrent;
using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;
using Runtime.InMemory;
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
    /// sensor stores its work only once it has waited 5 s and partitions store the positions their sensors have
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
            // Long enough that the victim still holds unstored work when it is killed, however slow the machine is that
            // day; the survivors store what they replay after it.
            o.SensorWriteInterval = TimeSpan.FromSeconds(5);
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
        await AssertHandedOverAsync(silos);
    }

    /// <summary>
    /// A stopping silo stops its readers first, while it is still active: each one's last checkpoint is stored before the
    /// silo announces that it shuts down, when the other silos may start the partition's next reader. Here every sensor
    /// holds unstored work until then and each of those partition writes takes a second, so a last checkpoint left to
    /// the silo's deactivation of its grains is stored after the announcement.
    /// </summary>
    [Fact]
    public async Task A_stopping_silo_stores_its_last_checkpoints_while_still_active()
    {
        var stopping = new StoppingSilo();
        var states = new InMemoryGrainStorage.Store();
        await using var silos = await TestSilos.StartAsync(3, o =>
        {
            o.SensorWriteAllUpTo = 0;
            o.SensorWriteInterval = TimeSpan.FromHours(1);
        }, storage: silo => silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Name, (sp, _) => new SlowLastCheckpoints(
            new InMemoryGrainStorage(states, sp.GetRequiredService<Serializer>()), sp.GetRequiredService<ILocalSiloDetails>(),
            sp.GetRequiredService<IClusterMembershipService>(), stopping)));
        // Partition p on the silo at index p modulo 3 in address order, once every silo has joined.
        var placed = silos.Cluster.Silos.Select(s => s.SiloAddress).Order().ToArray();
        await Waiting.Until(async () => (await silos.StatusesAsync()).All(s => s is not null && s.Silo == placed[s.Partition % placed.Length].ToParsableString()),
            TimeSpan.FromSeconds(30), "every partition on its placed silo");
        await silos.Inbox.AppendRuleChangeAsync(KnownInput.HotRule.Id, KnownInput.HotRule, CancellationToken.None);
        await Input.PostAsync(silos.Inbox, 0, Seconds / 2);
        await WaitAppliedAsync(silos);

        var victim = silos.Cluster.Silos[1];
        var held = (await silos.StatusesAsync()).Count(s => s?.Silo == victim.SiloAddress.ToParsableString());
        stopping.Address = victim.SiloAddress;
        await silos.Cluster.StopSiloAsync(victim);

        Assert.True(held > 0, "the stopped silo read partitions");
        var writes = stopping.Writes.ToArray();
        Assert.Equal(held, writes.Select(w => w.Partition).Distinct().Count());
        Assert.All(writes, w => Assert.Equal(SiloStatus.Active, w.Status));

        silos.Options.SensorWriteInterval = TimeSpan.FromMilliseconds(300);
        await AssertHandedOverAsync(silos);
    }

    /// <summary>
    /// After a graceful stop: a new silo joins, the second half of the input follows, and every reading is counted once,
    /// every alert opened once, and no event published twice (a hand-over after a last checkpoint replays nothing).
    /// </summary>
    private static async Task AssertHandedOverAsync(TestSilos silos)
    {
        await silos.Cluster.StartAdditionalSiloAsync();
        await Input.PostAsync(silos.Inbox, Seconds / 2, Seconds);
        await silos.TickAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 120_000);
        await silos.WaitForQuiescenceAsync();
        await Input.AssertExactAggregatesAsync(silos.Store);
        await Input.AssertAlertsOpenedOnceAsync(silos.Store, silos.PublishedOf<GrainOutput>());
        var ids = silos.PublishedOf<GrainOutput>().Select(o => o.Id).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    private sealed class StoppingSilo
    {
        public volatile SiloAddress? Address;
        public ConcurrentQueue<(string Partition, SiloStatus Status)> Writes { get; } = new();
    }

    /// <summary>The stopping silo's partition writes take a second; each records the silo's status when it is made.</summary>
    private sealed class SlowLastCheckpoints(IGrainStorage inner, ILocalSiloDetails silo, IClusterMembershipService membership, StoppingSilo stopping)
        : IGrainStorage
    {
        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ReadStateAsync(stateName, grainId, grainState);

        public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (stateName == "partition" && silo.SiloAddress.Equals(stopping.Address))
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
                stopping.Writes.Enqueue((grainId.ToString(), membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress)));
            }

            await inner.WriteStateAsync(stateName, grainId, grainState);
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ClearStateAsync(stateName, grainId, grainState);
    }

    /// <summary>Every partition's reader has read all that was appended (not necessarily committed it).</summary>
    private static Task WaitAppliedAsync(TestSilos silos) => Waiting.Until(async () =>
        (await silos.StatusesAsync()).All(s => s is not null && s.AppliedOffset == s.EndOffset), TimeSpan.FromSeconds(30), "every partition read to its end");
}
