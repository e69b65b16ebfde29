using Grains.Abstractions;
using Runtime.InMemory;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// A sensor's flush takes its outputs and state as they are and writes them outside the grain's turn: while the read
/// models are slow (a fleet's minute close being written, say), readings for the sensor are applied, and the flush stores
/// what it took, not what came after it.
/// </summary>
public sealed class SensorFlushTests
{
    [Fact]
    public async Task A_sensor_applies_readings_while_its_flush_waits_for_the_read_models_and_stores_what_the_flush_took()
    {
        var store = new InMemoryStore(TimeProvider.System);
        var writer = new HeldWriter(store);
        await using var silos = await TestSilos.StartAsync(1, writer: writer);
        // A sensor no partition feeds (the test is its partition): readings at log offsets 1 to 3, then 4 to 6.
        var sensor = silos.Grains.GetGrain<ISensorGrain>("flush-held");
        Assert.Equal(LogPosition.Of(3, 0), (await sensor.ApplyAsync(DirectWork.Of(-1, "flush-held", 1, 2, 3))).AppliedPosition);

        writer.Hold();
        Assert.Equal(LogPosition.Of(3, 0), await sensor.FlushAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        var stored = sensor.StoredAsync();
        await Waiting.Until(() => writer.Held == 1, TimeSpan.FromSeconds(10), "the flush's outputs are being written");

        // The write is held, and the next readings are applied all the same (a flush holding the turn would time this out).
        var progress = await sensor.ApplyAsync(DirectWork.Of(LogPosition.Of(3, 0), "flush-held", 4, 5, 6)).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(LogPosition.Of(6, 0), progress.AppliedPosition);
        Assert.False(stored.IsCompleted);
        Assert.Null(await store.GetSensorAsync("flush-held", CancellationToken.None));

        // Released: the flush stored what it took at offset 3, and the sensor's summary is that of offset 3.
        writer.Release();
        Assert.Equal(LogPosition.Of(3, 0), await stored.WaitAsync(TimeSpan.FromSeconds(10)));
        var summary = await store.GetSensorAsync("flush-held", CancellationToken.None);
        Assert.Equal((LogPosition.Of(3, 0), 3.0), (summary!.AppliedPosition, summary.Latest["t"]));

        // The next flush stores the rest.
        Assert.Equal(LogPosition.Of(6, 0), await sensor.FlushAsync());
        Assert.Equal(LogPosition.Of(6, 0), await sensor.StoredAsync());
        summary = await store.GetSensorAsync("flush-held", CancellationToken.None);
        Assert.Equal((LogPosition.Of(6, 0), 6.0), (summary!.AppliedPosition, summary.Latest["t"]));
    }
}
