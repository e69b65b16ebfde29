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
/// Orleans stops waiting for a grain's deactivation after its timeout and lets the next activation start, while a state
/// write the old one already sent may still land. The next activation then holds an older state than the stored one,
/// and its partition reports more applied than it has.
/// </summary>
public sealed class StaleActivationTests
{
    private static readonly KnownInput Input = new("st", sensors: 2, seconds: 60);

    [Fact]
    public async Task A_sensor_that_read_its_state_before_the_last_write_landed_reads_it_again_and_counts_every_reading_once()
    {
        var states = new InMemoryGrainStorage.Store();
        await using var silos = await TestSilos.StartAsync(1, o => o.Partitions = 1, storage: silo =>
            silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Name, (sp, _) => new InMemoryGrainStorage(states, sp.GetRequiredService<Serializer>())));
        var sensorId = Input.SensorId(0);
        var key = ("sensor", GrainId.Create("sensor", sensorId));
        var sensor = silos.Grains.GetGrain<ISensorGrain>(sensorId);

        await Input.PostAsync(silos.Inbox, 0, 20);
        await silos.WaitForQuiescenceAsync();
        var earlier = states.Entries[key];
        await Input.PostAsync(silos.Inbox, 20, 40);
        await silos.WaitForQuiescenceAsync();
        var later = states.Entries[key];
        Assert.Equal(KnownInput.T0 + 39_000, (await sensor.GetViewAsync())!.LastSeenMs);

        // The next activation reads the state of second 19; the state of second 39 lands after it has.
        states.Entries[key] = earlier;
        await silos.Grains.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        await Waiting.Until(async () => (await sensor.GetViewAsync())!.LastSeenMs == KnownInput.T0 + 19_000, TimeSpan.FromSeconds(10),
            "an activation holding the state of second 19");
        states.Entries[key] = later;

        // Its partition gives it work as of second 39: it reads the stored state again instead of refusing every replay.
        await Input.PostAsync(silos.Inbox, 40, 60);
        await silos.WaitForQuiescenceAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(KnownInput.T0 + 59_000, (await sensor.GetViewAsync())!.LastSeenMs);
        await silos.TickAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 120_000);
        await silos.WaitForQuiescenceAsync();
        await Input.AssertExactAggregatesAsync(silos.Store);
    }
}
