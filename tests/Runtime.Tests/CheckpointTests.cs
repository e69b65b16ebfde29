using Grains;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;
using Runtime.InMemory;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// A checkpoint flushes sensors while the partition's reader reads on: readings do not wait for a slow state write, and
/// the position is stored once every sensor stored what it was given.
/// </summary>
public sealed class CheckpointTests
{
    private static readonly KnownInput Input = new("cp", sensors: 2, seconds: 10);

    [Fact]
    public async Task Readings_are_applied_while_a_checkpoint_waits_for_a_sensor_write()
    {
        var held = new HeldWrites(Input.SensorId(0));
        await using var silos = await TestSilos.StartAsync(1, o =>
        {
            o.Partitions = 1;
            o.CheckpointInterval = TimeSpan.FromMilliseconds(50);
            o.CheckpointMaxRecords = 1_000_000; // no backpressure in this test (a fast machine appends thousands of seconds in its 10 intervals)
        }, storage: silo => silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Name, (sp, _) =>
            new HoldingStorage(new InMemoryGrainStorage(new InMemoryGrainStorage.Store(), sp.GetRequiredService<Serializer>()), held)));

        await Input.PostAsync(silos.Inbox, 0, 10);
        await silos.WaitForQuiescenceAsync();

        // The next checkpoint flushes both sensors; the write of the first does not finish.
        using var releaseAtEnd = new ReleaseOnDispose(held); // the silos stop promptly when an assertion fails
        held.Arm();
        await silos.Inbox.AppendTelemetryAsync(Input.Second(10), null, CancellationToken.None);
        await held.Started.WaitAsync(TimeSpan.FromSeconds(30));

        // Readings of the other sensor are applied one by one meanwhile, for many checkpoint intervals (a due checkpoint
        // must not stop the reader), and the position is not stored past what the first sensor holds.
        var freeSensor = Input.SensorId(1);
        var holding = System.Diagnostics.Stopwatch.StartNew();
        for (var k = 11; k <= 20 || holding.Elapsed < 10 * silos.Options.CheckpointInterval; k++)
        {
            await silos.Inbox.AppendTelemetryAsync(Input.Second(k).Where(r => r.SensorId == freeSensor).ToArray(), null, CancellationToken.None);
            var status = await Waiting.Value(async () => (await silos.StatusesAsync()).Single() is { } s && s.AppliedOffset == s.EndOffset ? s : null,
                TimeSpan.FromSeconds(10), $"second {k} applied while the checkpoint waits");
            Assert.Equal(k + 1, status.EndOffset);
            Assert.True(status.CommittedOffset <= 10, $"stored offset {status.CommittedOffset} while second 10 of {Input.SensorId(0)} is unstored");
        }

        Assert.False(held.Released);

        // Once the write goes through, everything is committed.
        held.Release();
        await silos.WaitForQuiescenceAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Holds the first state write of one sensor, once armed, until released.</summary>
    private sealed class HeldWrites(string sensorId)
    {
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _armed;

        public Task Started => _started.Task;

        public bool Released => _release.Task.IsCompleted;

        public void Arm() => Volatile.Write(ref _armed, 1);

        public void Release() => _release.TrySetResult();

        public Task BeforeWriteAsync(string stateName, GrainId grainId)
        {
            if (stateName != "sensor" || grainId.Key.ToString() != sensorId || Interlocked.CompareExchange(ref _armed, 0, 1) != 1)
            {
                return Task.CompletedTask;
            }

            _started.TrySetResult();
            return _release.Task;
        }
    }

    private sealed class ReleaseOnDispose(HeldWrites held) : IDisposable
    {
        public void Dispose() => held.Release();
    }

    private sealed class HoldingStorage(IGrainStorage inner, HeldWrites held) : IGrainStorage
    {
        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ReadStateAsync(stateName, grainId, grainState);

        public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            await held.BeforeWriteAsync(stateName, grainId);
            await inner.WriteStateAsync(stateName, grainId, grainState);
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ClearStateAsync(stateName, grainId, grainState);
    }
}
