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
/// In a large fleet (more sensors with unstored work per partition than <see cref="SiloOptions.SensorWriteAllUpTo"/>),
/// a sensor writes its state once its work has waited <see cref="SiloOptions.SensorWriteInterval"/>, not at every
/// checkpoint, and its partition stores no position past work a sensor has not stored. Minute aggregates are written
/// when the minute closes, whatever the interval.
/// </summary>
public sealed class SensorWriteIntervalTests
{
    private static readonly KnownInput Input = new("wi", sensors: 8, seconds: 90);

    [Fact]
    public async Task Sensors_write_once_their_work_has_waited_the_interval_and_the_position_waits_for_them()
    {
        var writes = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var states = new InMemoryGrainStorage.Store();
        await using var silos = await TestSilos.StartAsync(1, o =>
        {
            o.CheckpointInterval = TimeSpan.FromMilliseconds(50);
            o.SensorWriteInterval = TimeSpan.FromHours(1);
            o.SensorWriteAllUpTo = 0;
            o.TicksEnabled = false;
        }, storage: silo => silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Name, (sp, _) =>
            new CountingStorage(new InMemoryGrainStorage(states, sp.GetRequiredService<Serializer>()), writes)));

        await silos.Inbox.AppendRuleChangeAsync(KnownInput.HotRule.Id, KnownInput.HotRule, CancellationToken.None);
        for (var k = 0; k < Input.Seconds; k += 10)
        {
            await Input.PostAsync(silos.Inbox, k, k + 10);
            await Waiting.Until(async () => (await silos.StatusesAsync()).All(s => s is not null && s.AppliedOffset == s.EndOffset),
                TimeSpan.FromSeconds(30), "every partition read to its end");
        }

        // Minute 0 closed and was written when it closed, with every reading in it.
        await Waiting.Until(async () =>
        {
            for (var s = 0; s < Input.Sensors; s++)
            {
                if ((await silos.Store.GetAggregatesAsync(Input.SensorId(s), KnownInput.T0, KnownInput.T0 + 60_000, null, CancellationToken.None)).Count == 0)
                {
                    return false;
                }
            }

            return true;
        }, TimeSpan.FromSeconds(30), "minute 0 of every sensor written");
        await Input.AssertExactAggregatesAsync(silos.Store);

        // No sensor wrote its state, and no partition holding sensors stored a position past its first telemetry record
        // (offset 1, after the rule change), though checkpoints ran every 50 ms.
        Assert.Equal(0, writes.GetValueOrDefault("sensor"));
        var holding = (await silos.StatusesAsync()).Where(s => s!.Sensors > 0).ToList();
        Assert.NotEmpty(holding);
        Assert.All(holding, s => Assert.True(s!.CommittedOffset <= 1, $"partition {s.Partition} stored offset {s.CommittedOffset} while its sensors stored nothing"));

        // Once the work has waited the interval, every sensor writes it once and every partition stores its end.
        silos.Options.SensorWriteInterval = TimeSpan.FromMilliseconds(100);
        await silos.WaitForQuiescenceAsync();
        Assert.Equal(Input.Sensors, writes.GetValueOrDefault("sensor"));
        for (var s = 0; s < Input.Sensors; s++)
        {
            var stored = states.Entries.Single(e => e.Key.StateName == "sensor" && e.Key.GrainId.Key.ToString() == Input.SensorId(s));
            Assert.NotEmpty(stored.Value.Data);
        }
    }

    /// <summary>Counts state writes per state name ("sensor", "partition", "rule").</summary>
    private sealed class CountingStorage(IGrainStorage inner, ConcurrentDictionary<string, int> writes) : IGrainStorage
    {
        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ReadStateAsync(stateName, grainId, grainState);

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            writes.AddOrUpdate(stateName, 1, (_, n) => n + 1);
            return inner.WriteStateAsync(stateName, grainId, grainState);
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ClearStateAsync(stateName, grainId, grainState);
    }
}
