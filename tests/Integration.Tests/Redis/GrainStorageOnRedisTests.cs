using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Storage;
using Runtime.Hosting;
using StackExchange.Redis;
using Tests.Shared;

namespace Integration.Tests.Redis;

/// <summary>
/// Grain states in Redis as the durable cluster keeps them: Orleans' Redis provider configured by
/// <see cref="ClusterHosting.AddOrleansIotRedisStorage"/> (states in binary form, <see cref="BinaryGrainStorageSerializer"/>).
/// A state keeps every double and every string exactly, and a writer holding an old ETag (a silo paused past failure
/// detection while another took its grains over) cannot overwrite the newer state.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class GrainStorageOnRedisTests(RedisServer redis)
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>Every kind of double a reading can carry through the log (whose JSON has one NaN: a NaN's payload bits are not kept).</summary>
    private static readonly double[] Doubles =
    [
        double.NaN, double.PositiveInfinity, double.NegativeInfinity, -0.0, 0.0, double.Epsilon, -double.Epsilon, double.MaxValue,
        double.MinValue, 0.1, 1.0 / 3, 1e-300, -123.456e10, Math.PI, BitConverter.Int64BitsToDouble(0x000F_FFFF_FFFF_FFFF), 21.5,
    ];

    private static readonly string[] Strings =
    [
        "", "\u0000", "a\u0000b", "line1\nline2\r\nline3\rend", "\t\u0001\u0002\u001f\u007f", "\u001b[31mred\u001b[0m",
        "é à ü ñ ß", "Jardín", "日本語テキスト", "😀👍🏽🇨🇴", "\u2028\u2029", "\uFEFFbom", "\uFFFE\uFFFF", "'\"\\/<>&%{}",
        "AAAA==", "{\"json\":true}", new string('x', 5000) + "é",
    ];

    private static readonly string[] MetricNames = ["temperature", "température", "湿度", "metric with spaces", "m\u0001"];

    /// <summary>The durable cluster's grain storage on this server (each test cluster has its own Orleans service id, so keys never collide).</summary>
    private static Action<ISiloBuilder> Storage(RedisServer server) => silo => silo.AddOrleansIotRedisStorage(ConfigurationOptions.Parse(server.ConnectionString));

    [Fact]
    public async Task A_sensor_state_keeps_every_double_and_string_exactly_when_its_grain_reactivates_from_redis()
    {
        await using var silos = await TestSilos.StartAsync(2, grains: new SensorGrainOptions { LastReadingsCount = 100 },
            storage: Storage(redis));
        var sensorId = $"capteur-é-{Guid.NewGuid():N}";
        var readings = Readings(sensorId);
        foreach (var reading in readings)
        {
            await silos.Inbox.AppendTelemetryAsync([reading], null, None);
        }
        await silos.WaitForQuiescenceAsync();
        var grain = silos.Grains.GetGrain<ISensorGrain>(sensorId);
        var before = await grain.GetViewAsync();
        AssertHolds(readings, before);

        // Stored in Redis under the cluster's service id, in the binary form (base64 text), not JSON.
        await using var connection = await redis.ConnectAsync();
        // The provider's key: {ServiceId}/state/{grain id}/{state name}.
        var key = $"{silos.Cluster.Options.ServiceId}/state/sensor/{sensorId}/sensor";
        var data = (string?)await connection.GetDatabase().HashGetAsync(key, "data");
        Assert.NotNull(data);
        Assert.NotEmpty(Convert.FromBase64String(data));

        await silos.Cluster.DeactivateAsync(grain);
        var after = await grain.GetViewAsync();

        AssertHolds(readings, after);
        Postgres.Canonical.AssertSame("the view after reactivation", before, after);
        // The reactivated grain read its state from Redis: without the key, it knows nothing of the sensor.
        Assert.True(await connection.GetDatabase().KeyDeleteAsync(key));
        await silos.Cluster.DeactivateAsync(grain);
        Assert.Null(await grain.GetViewAsync());
    }

    [Fact]
    public async Task A_write_with_a_stale_etag_is_refused_and_the_newer_state_stays()
    {
        await using var silos = await TestSilos.StartAsync(2, storage: Storage(redis));
        // Each silo's own provider instance, with its own Redis connection: two silos writing one grain's state.
        var paused = silos.Cluster.Silos[0].ServiceProvider.GetRequiredKeyedService<IGrainStorage>(GrainStorage.Name);
        var taker = silos.Cluster.Silos[1].ServiceProvider.GetRequiredKeyedService<IGrainStorage>(GrainStorage.Name);
        var id = GrainId.Create("sensor", $"etag-{Guid.NewGuid():N}");
        const string name = "sensor";

        var first = new GrainState<SensorView>(View("first"));
        await paused.WriteStateAsync(name, id, first);
        var held = new GrainState<SensorView>();
        await paused.ReadStateAsync(name, id, held);
        Assert.Equal(first.ETag, held.ETag);

        // The grain moves on to another silo, which loads the state and writes a newer one.
        var newer = new GrainState<SensorView>();
        await taker.ReadStateAsync(name, id, newer);
        Postgres.Canonical.AssertSame("the state read by the other silo", View("first"), newer.State);
        newer.State = View("newer");
        await taker.WriteStateAsync(name, id, newer);
        Assert.NotEqual(first.ETag, newer.ETag);

        // The paused silo resumes and writes with the ETag it read: refused. So is a writer that thinks no state exists.
        held.State = View("stale");
        await Assert.ThrowsAsync<InconsistentStateException>(() => paused.WriteStateAsync(name, id, held));
        await Assert.ThrowsAsync<InconsistentStateException>(() => paused.WriteStateAsync(name, id, new GrainState<SensorView>(View("blind"))));
        await Assert.ThrowsAsync<InconsistentStateException>(() => paused.ClearStateAsync(name, id, held));

        var stored = new GrainState<SensorView>();
        await paused.ReadStateAsync(name, id, stored);
        Assert.Equal(newer.ETag, stored.ETag);
        Assert.True(stored.RecordExists);
        Postgres.Canonical.AssertSame("the stored state", View("newer"), stored.State);
        AssertExact(View("newer"), stored.State);

        // With the current ETag, the paused silo may write again (it reloaded).
        stored.State = View("after reload");
        await paused.WriteStateAsync(name, id, stored);
        var last = new GrainState<SensorView>();
        await taker.ReadStateAsync(name, id, last);
        AssertExact(View("after reload"), last.State);
    }

    /// <summary>Readings that carry every special double and every awkward string, a few seconds apart over two minutes.</summary>
    private static List<Reading> Readings(string sensorId) => Enumerable.Range(0, Math.Max(Doubles.Length, Strings.Length)).Select(k => new Reading
    {
        SensorId = sensorId,
        TimestampMs = KnownInput.T0 + k * 7_000L,
        Metrics = MetricNames.Select((name, m) => new MetricValue(name, Doubles[(k + m) % Doubles.Length])).ToArray(),
        Attributes = [new AttributeValue("note", Strings[k % Strings.Length]), new AttributeValue("clé\u0007", Strings[(k + 3) % Strings.Length])],
        Metadata = new SensorMetadata
        {
            Location = Strings[(k + 7) % Strings.Length],
            Model = "HW\u0000MD",
            Extra = new Dictionary<string, string> { ["välue\u007f"] = Strings[(k + 1) % Strings.Length] },
        },
    }).ToList();

    /// <summary>The view shows the readings exactly: each value to the bit, each string to the character.</summary>
    private static void AssertHolds(List<Reading> readings, SensorView? view)
    {
        Assert.NotNull(view);
        Assert.Equal(readings.Count, view.LastReadings.Count);
        foreach (var (reading, shown) in readings.Zip(Enumerable.Reverse(view.LastReadings)))
        {
            Assert.Equal(reading.TimestampMs, shown.TimestampMs);
            Assert.Equal(reading.Metrics.Select(m => (m.Name, BitConverter.DoubleToInt64Bits(m.Value))).Order(),
                shown.Metrics.Select(m => (m.Key, BitConverter.DoubleToInt64Bits(m.Value))).Order());
            Assert.Equal(reading.Attributes!.Select(a => (a.Name, a.Value)).Order(), shown.Attributes!.Select(a => (a.Key, a.Value)).Order());
        }
        Assert.Equal(readings[^1].Metadata!.Location, view.Metadata!.Location);
        Assert.Equal("HW\u0000MD", view.Metadata.Model);
        Assert.Equal(readings[^1].Metadata!.Extra, view.Metadata.Extra);
        Assert.NotEmpty(view.Windows);
    }

    private static void AssertExact(SensorView expected, SensorView? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.Latest.Select(l => (l.Key, BitConverter.DoubleToInt64Bits(l.Value.Value), l.Value.TimeMs)),
            actual.Latest.Select(l => (l.Key, BitConverter.DoubleToInt64Bits(l.Value.Value), l.Value.TimeMs)));
        Assert.Equal(expected.Attributes.Select(a => (a.Key, a.Value.Value)), actual.Attributes.Select(a => (a.Key, a.Value.Value)));
        Assert.Equal(expected.Metadata!.Location, actual.Metadata!.Location);
    }

    /// <summary>A state of some size with every special double and every awkward string, tagged so that versions differ.</summary>
    private static SensorView View(string tag) => new()
    {
        SensorId = $"sensor {tag}",
        Metadata = new SensorMetadata { Location = $"{tag} {Strings[9]}", Model = Strings[2], Extra = new() { ["k\u0000"] = Strings[4] } },
        LastSeenMs = KnownInput.T0,
        Latest = Doubles.Select((d, i) => (d, i)).ToDictionary(x => $"{MetricNames[x.i % MetricNames.Length]}#{x.i}", x => new TimedValue { Value = x.d, TimeMs = x.i }),
        Attributes = Strings.Select((s, i) => (s, i)).ToDictionary(x => $"{tag}/{x.i}", x => new TimedAttribute { Value = x.s, TimeMs = -x.i }),
        LastReadings = [new ReadingRecord { TimestampMs = 1, Metrics = new() { ["nan"] = double.NaN, ["neg0"] = -0.0 }, Attributes = new() { [Strings[8]] = Strings[5] } }],
        Windows = new() { [KnownInput.T0] = new() { ["t"] = new RunningAggregate { Count = 3, Min = double.NegativeInfinity, Max = double.NaN, Sum = -0.0 } } },
        ClockMs = long.MinValue,
        LateCount = long.MaxValue,
    };
}
