using Grains.Abstractions;
using Orleans.Runtime;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// Time on Orleans silos: every sensor has its own clock (one device's timestamps never make another's readings late
/// nor fire another's offline rule), idle sensors are deactivated by Orleans and their state kept, and an offline rule
/// fires for silent and deactivated sensors, also after a silo failure, without activating every sensor when it is
/// created. Receipt time is driven by the test: entries are appended with the receipt time they say.
/// </summary>
public sealed class ScheduleTests
{
    private const long Minute = 60_000;
    private static readonly long R0 = DateTimeOffset.Parse("2026-03-02T08:00:00Z").ToUnixTimeMilliseconds();

    private static Task AppendAsync(TestSilos silos, long receivedAtMs, params Reading[] readings) =>
        Task.WhenAll(readings.GroupBy(r => Partitioner.PartitionOf(r.SensorId, silos.Options.Partitions)).Select(g =>
            silos.Log.AppendAsync(g.Key, [new TelemetryEntry([.. g], null, receivedAtMs)], CancellationToken.None).AsTask()));

    private static Task DefineAsync(TestSilos silos, RuleDefinition rule, long atMs) =>
        Task.WhenAll(Enumerable.Range(0, silos.Options.Partitions).Select(p =>
            silos.Log.AppendAsync(p, [new RuleChangeEntry(rule.Id, rule, atMs)], CancellationToken.None).AsTask()));

    private static Reading Reading(string sensor, long timeMs, double value) =>
        new() { SensorId = sensor, TimestampMs = timeMs, Metrics = [new MetricValue("t", value)] };

    private static RuleDefinition Offline(string id, int minutes, RuleTarget target) => new()
    {
        Id = id,
        Name = id,
        Enabled = true,
        Severity = Severity.Critical,
        Target = target,
        Condition = new RuleCondition { Kind = ConditionKind.Offline, Minutes = minutes },
        Version = 1,
    };

    private static async Task<int> SensorActivationsAsync(TestSilos silos) =>
        (await silos.Grains.GetGrain<IManagementGrain>(0).GetSimpleGrainStatistics())
            .Where(s => s.GrainType.Contains("SensorGrain", StringComparison.Ordinal) || s.GrainType == "sensor")
            .Sum(s => s.ActivationCount);

    [Fact]
    public async Task One_devices_clock_ahead_never_makes_anothers_readings_late_nor_fires_its_offline_rule()
    {
        await using var silos = await TestSilos.StartAsync(1);
        // Both sensors in one partition, as the worst case for a shared clock.
        var ahead = "clock-ahead-1";
        var steady = Enumerable.Range(0, 1000).Select(i => $"clock-steady-{i}")
            .First(id => Partitioner.PartitionOf(id, silos.Options.Partitions) == Partitioner.PartitionOf(ahead, silos.Options.Partitions));
        await DefineAsync(silos, Offline("steady-offline", 2, new RuleTarget { Kind = TargetKind.Sensors, SensorIds = [steady] }), R0);

        // Four minutes of readings, one per 10 s each; the first device's timestamps run 4 min 50 s ahead (within the skew).
        for (var k = 0; k < 24; k++)
        {
            var received = R0 + k * 10_000;
            await AppendAsync(silos, received, Reading(ahead, received + 290_000, k), Reading(steady, received, k));
        }

        await silos.TickAsync(R0 + 4 * Minute + 30_000);
        await silos.WaitForQuiescenceAsync();

        // The steady device: no reading late, its four minutes closed (the tick 40 s after its last reading closed the
        // last one) with all six readings each.
        var view = (await silos.Grains.GetGrain<ISensorGrain>(steady).GetViewAsync())!;
        Assert.Equal(0, view.LateCount);
        var minutes = await silos.Store.GetAggregatesAsync(steady, R0, R0 + 10 * Minute, null, CancellationToken.None);
        Assert.Equal([R0, R0 + Minute, R0 + 2 * Minute, R0 + 3 * Minute], minutes.Select(m => m.MinuteMs));
        Assert.All(minutes, m => Assert.Equal(6, m.Metrics.Single().Count));
        // Its offline rule (2 min without data) never fired: its own clock never saw 2 minutes of silence.
        Assert.Empty(await silos.Store.QueryAlertsAsync(new AlertQuery(null, "steady-offline", null, null, null, 10), CancellationToken.None));
        // The device ahead has a clock of its own, bounded by receipt time: its minutes, 4 min 50 s ahead, are still open.
        var aheadView = (await silos.Grains.GetGrain<ISensorGrain>(ahead).GetViewAsync())!;
        Assert.Equal(0, aheadView.LateCount);
        Assert.True(aheadView.ClockMs <= R0 + 4 * Minute + 30_000, "a device's clock never runs past receipt time");
        Assert.Empty(await silos.Store.GetAggregatesAsync(ahead, R0, R0 + 20 * Minute, null, CancellationToken.None));
    }

    [Fact]
    public async Task Idle_sensors_are_deactivated_by_Orleans_and_read_back_from_their_stored_state()
    {
        await using var silos = await TestSilos.StartAsync(1, o => o.IdleDeactivation = TimeSpan.FromSeconds(2));
        var sensors = Enumerable.Range(0, 40).Select(i => $"idle-{i}").ToArray();
        await AppendAsync(silos, R0, sensors.Select((s, i) => Reading(s, R0 - 5_000, i)).ToArray());
        await silos.WaitForQuiescenceAsync();
        Assert.Equal(sensors.Length, await SensorActivationsAsync(silos));

        // No traffic: Orleans deactivates them after the idle time (each writes its state first).
        await Waiting.Until(async () => await SensorActivationsAsync(silos) == 0, TimeSpan.FromSeconds(30), "every sensor grain deactivated");

        // A read activates one from its stored state, with everything it had.
        var view = (await silos.Grains.GetGrain<ISensorGrain>("idle-7").GetViewAsync())!;
        Assert.Equal(7, view.Latest["t"].Value);
        Assert.Equal(R0 - 5_000, view.LastSeenMs);
        Assert.Equal(1, view.CurrentMinute!.Metrics.Single().Count);
        Assert.Equal(1, await SensorActivationsAsync(silos));
    }

    [Fact]
    public async Task An_offline_rule_activates_no_idle_sensor_when_created_and_fires_for_the_silent_ones_also_after_a_silo_dies()
    {
        await using var silos = await TestSilos.StartAsync(2, o => o.IdleDeactivation = TimeSpan.FromSeconds(2));
        var silent = Enumerable.Range(0, 30).Select(i => $"silent-{i}").ToArray();
        var talking = Enumerable.Range(0, 10).Select(i => $"talking-{i}").ToArray();
        await AppendAsync(silos, R0, silent.Concat(talking).Select(s => Reading(s, R0, 1)).ToArray());
        await silos.WaitForQuiescenceAsync();
        await Waiting.Until(async () => await SensorActivationsAsync(silos) == 0, TimeSpan.FromSeconds(30), "every sensor grain deactivated");

        // The rule reaches every partition; the partitions plan it from what they keep of each sensor: no sensor activates.
        await DefineAsync(silos, Offline("silence", 1, new RuleTarget { Kind = TargetKind.All }), R0 + 1_000);
        await silos.WaitForQuiescenceAsync();
        Assert.Equal(0, await SensorActivationsAsync(silos));

        // A silo dies before the deadline: its partitions' schedules come back from their stored state elsewhere.
        await silos.Cluster.KillSiloAsync(silos.Cluster.Silos[1]);
        await silos.WaitForPartitionsAsync();
        await AppendAsync(silos, R0 + 50_000, talking.Select(s => Reading(s, R0 + 50_000, 2)).ToArray());
        await silos.TickAsync(R0 + 65_000);
        await silos.WaitForQuiescenceAsync();

        var alerts = await Waiting.Value(async () =>
        {
            var open = await silos.Store.QueryAlertsAsync(new AlertQuery(AlertState.Open, "silence", null, null, null, 100), CancellationToken.None);
            return open.Count == silent.Length ? open : null;
        }, TimeSpan.FromSeconds(20), "an offline alert for every silent sensor");
        Assert.Equal(silent.Order(StringComparer.Ordinal), alerts.Select(a => a.SensorId).Order(StringComparer.Ordinal));
        Assert.All(alerts, a => Assert.Equal(R0 + 60_000, a.StartedAtMs));
        // Only the silent sensors were activated by the deadline (the talking ones by their readings).
        Assert.True(await SensorActivationsAsync(silos) <= silent.Length + talking.Length);
    }
}
