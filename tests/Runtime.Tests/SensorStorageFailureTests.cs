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
/// The sensor grain reads and writes its state through the storage provider itself: a provider's own failure (Redis
/// unreachable, say) reaches its callers as an <see cref="OrleansException"/> naming the sensor and the operation, as
/// Orleans' persistent state wraps it, so that the Api treats it as transient; the sensor drops what it did not store
/// and the next activation answers the stored position. The read's failure is asserted exactly; the write's, which the
/// in-memory storage reports within the flush's turn, only when the wait for it sees it before the activation is gone
/// (the same wrapping serves both).
/// </summary>
public sealed class SensorStorageFailureTests
{
    private sealed class FailingStorage(IGrainStorage inner) : IGrainStorage
    {
        public volatile bool ReadsDown;
        public volatile bool WritesDown;

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
            ReadsDown ? Task.FromException(new IOException("storage unreachable (test)")) : inner.ReadStateAsync(stateName, grainId, grainState);

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
            WritesDown ? Task.FromException(new IOException("storage unreachable (test)")) : inner.WriteStateAsync(stateName, grainId, grainState);

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ClearStateAsync(stateName, grainId, grainState);
    }

    [Fact]
    public async Task A_providers_own_failure_reaches_the_caller_as_an_Orleans_storage_failure_and_the_stored_state_stays()
    {
        FailingStorage? storage = null;
        await using var silos = await TestSilos.StartAsync(1, storage: silo => silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Name, (sp, _) =>
            storage = new FailingStorage(new InMemoryGrainStorage(new InMemoryGrainStorage.Store(), sp.GetRequiredService<Serializer>()))));
        var sensor = silos.Grains.GetGrain<ISensorGrain>("store-fails");
        Assert.Equal(LogPosition.Of(2, 0), (await sensor.ApplyAsync(DirectWork.Of(-1, "store-fails", 1, 2))).AppliedPosition);
        await sensor.FlushAsync();
        Assert.Equal(LogPosition.Of(2, 0), await sensor.StoredAsync());
        Assert.Equal(LogPosition.Of(4, 0), (await sensor.ApplyAsync(DirectWork.Of(LogPosition.Of(2, 0), "store-fails", 3, 4))).AppliedPosition);

        // The write fails. The wait for it fails with the provider's failure inside an Orleans one or, once the dropped
        // activation is gone, a new one answers the stored position: either way offsets 3 and 4 are not stored.
        storage!.WritesDown = true;
        await sensor.FlushAsync();
        try
        {
            Assert.Equal(LogPosition.Of(2, 0), await sensor.StoredAsync());
        }
        catch (OrleansException e)
        {
            Assert.Equal("Sensor store-fails: writing its state in the grain storage failed: storage unreachable (test)", e.Message);
            Assert.IsType<IOException>(e.InnerException);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("is reloading", StringComparison.Ordinal))
        {
        }

        storage.WritesDown = false;

        // A sensor activated while the storage cannot be read fails with the same kind of failure, for the read.
        var unread = silos.Grains.GetGrain<ISensorGrain>("read-fails");
        storage.ReadsDown = true;
        var readFailed = await Assert.ThrowsAsync<OrleansException>(() => unread.StoredAsync());
        Assert.Equal("Sensor read-fails: reading its state in the grain storage failed: storage unreachable (test)", readFailed.Message);
        Assert.IsType<IOException>(readFailed.InnerException);

        // Once it can read, the sensor answers what was stored: offsets 3 and 4 were never stored.
        storage.ReadsDown = false;
        await Waiting.Until(async () =>
        {
            try
            {
                return await sensor.StoredAsync() == LogPosition.Of(2, 0);
            }
            catch (InvalidOperationException e) when (e.Message.Contains("is reloading", StringComparison.Ordinal))
            {
                return false; // the activation dropped after the failed write, until Orleans has deactivated it
            }
        }, TimeSpan.FromSeconds(10), "the stored position answered");
        Assert.Equal(2, (await sensor.GetViewAsync())!.CurrentMinute!.Metrics.Single().Count);
    }
}
