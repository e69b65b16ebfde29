namespace Simulator.Tests;

public sealed class FleetModelTests
{
    private static readonly long Origin = new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    [Fact]
    public void Sensors_are_named_by_location_with_a_model_each()
    {
        var model = new FleetModel(24, 1, AnomalyOptions.None, Origin);

        Assert.Equal(["garden-01", "greenhouse-01", "warehouse-01", "office-01", "garden-02"], Enumerable.Range(0, 5).Select(model.Id));
        Assert.Equal("office-06", model.Id(23));
        Assert.Equal(new SensorInfo(5, "greenhouse-02", "greenhouse", "SR-7"), model.Sensor(5));
    }

    [Fact]
    public void The_same_seed_and_time_give_the_same_values_and_another_seed_other_values()
    {
        var a = new FleetModel(100, 42, AnomalyOptions.Typical, Origin);
        var b = new FleetModel(100, 42, AnomalyOptions.Typical, Origin);
        var c = new FleetModel(100, 43, AnomalyOptions.Typical, Origin);

        var times = Enumerable.Range(0, 50).Select(k => Origin + k * 7_919L).ToArray();
        for (var i = 0; i < 100; i++)
        {
            foreach (var t in times)
            {
                Assert.Equal(a.Read(i, t), b.Read(i, t));
                Assert.Equal(a.IsSilent(i, t), b.IsSilent(i, t));
            }
        }
        Assert.Contains(Enumerable.Range(0, 100), i => a.Read(i, Origin) != c.Read(i, Origin));
    }

    [Fact]
    public void Values_are_in_realistic_ranges_over_a_day()
    {
        var model = new FleetModel(40, 3, AnomalyOptions.None, Origin);
        for (var minute = 0; minute < 24 * 60; minute += 7)
        {
            var t = Origin + minute * 60_000L;
            for (var i = 0; i < model.Count; i++)
            {
                var v = model.Read(i, t);
                Assert.InRange(v.Temperature, 8, 32);
                Assert.InRange(v.Humidity, 5, 100);
                Assert.InRange(v.SolarRadiation, 0, 920);
                Assert.Equal(Math.Round(HeatIndex.Celsius(v.Temperature, v.Humidity), 0), Math.Round(v.HeatIndex, 0), 1.0);
            }
        }
        // Warmer at 17:00 UTC than at 05:00, sunny at noon, dark at midnight with the garden's lights on.
        var day = new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        Assert.True(model.Read(0, day + 17 * 3_600_000L).Temperature > model.Read(0, day + 5 * 3_600_000L).Temperature + 10);
        Assert.True(model.Read(0, day + 12 * 3_600_000L).SolarRadiation > 850);
        Assert.Equal(0, model.Read(0, day).SolarRadiation);
        Assert.True(model.Read(0, day).LightOn);
        Assert.False(model.Read(0, day + 12 * 3_600_000L).LightOn);
        Assert.True(model.Read(3, day + 12 * 3_600_000L).LightOn); // the office during working hours
    }

    [Fact]
    public void The_demo_anomalies_overheat_greenhouse_01_for_20_s_of_every_minute_and_silence_warehouse_01_3_of_every_6_minutes()
    {
        var model = new FleetModel(24, 42, AnomalyOptions.Demo, Origin);
        const int greenhouse01 = 1, warehouse01 = 2, garden01 = 0;

        for (var second = -120; second < 12 * 60; second++)
        {
            var t = Origin + second * 1000L;
            var overheating = second >= 0 && second % 60 < 20;
            var silent = second >= 0 && second % 360 >= 180;
            Assert.Equal(overheating, model.IsOverheating(greenhouse01, t));
            Assert.Equal(overheating, model.Read(greenhouse01, t).Temperature > 35);
            Assert.Equal(silent, model.IsSilent(warehouse01, t));
            Assert.False(model.IsOverheating(garden01, t));
            Assert.False(model.IsSilent(garden01, t));
            Assert.False(model.IsHumiditySpike(garden01, t));
        }
    }

    [Fact]
    public void Typical_anomalies_choose_about_one_percent_of_the_sensors_by_the_seed()
    {
        var model = new FleetModel(10_000, 5, AnomalyOptions.Typical, Origin);
        var overheating = Enumerable.Range(0, model.Count).Count(i => model.IsOverheating(i, Origin));
        var silent = Enumerable.Range(0, model.Count).Count(i => model.IsSilent(i, Origin + 4 * 60_000));

        Assert.InRange(overheating, 60, 140);
        Assert.InRange(silent, 60, 140);
        Assert.True(model.IsOverheating(1, Origin));
        Assert.True(model.IsSilent(2, Origin + 4 * 60_000));
        Assert.True(model.HasSilentSensors);
    }

    [Fact]
    public void A_humidity_spike_lasts_a_whole_minute()
    {
        var model = new FleetModel(4, 5, AnomalyOptions.None with { HumiditySpikeProbability = 1 }, Origin);

        Assert.False(model.IsHumiditySpike(0, Origin - 1));
        for (var second = 0; second < 60; second += 5)
        {
            Assert.InRange(model.Read(0, Origin + second * 1000L).Humidity, 92, 99);
        }
    }
}
