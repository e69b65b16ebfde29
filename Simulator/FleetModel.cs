// The value model of a simulated fleet. Compiled into the Simulator and, as a linked file, into the Api's demo
// fleet: it must depend on nothing but the BCL.
namespace Simulator;

/// <summary>The weather outside the fleet's site (<see cref="FleetModel.Outside"/>).</summary>
public readonly record struct OutsideWeather(double Temperature, double Humidity);

/// <summary>Who a sensor is: its id (<c>{location}-{nn}</c>), location and model.</summary>
public readonly record struct SensorInfo(int Index, string Id, string Location, string Model);

/// <summary>One reading's values, rounded as a device would send them.</summary>
public readonly record struct SensorValues(double Temperature, double Humidity, double HeatIndex, double SolarRadiation, bool LightOn);

/// <summary>
/// Anomalies that break typical rules. Every schedule runs from the model's anomaly origin on (no anomaly before
/// it): overheating sensors read 38–39 °C for the first <see cref="OverheatSecondsPerMinute"/> seconds of every
/// minute; silent sensors send nothing for the last <see cref="SilentMinutes"/> of every
/// <see cref="SilenceCycleMinutes"/> minutes; a humidity spike (92–99 %) lasts one whole minute of one sensor.
/// </summary>
public sealed record AnomalyOptions
{
    /// <summary>Fraction (0–1) of the sensors, chosen from the seed, that overheat.</summary>
    public double OverheatFraction { get; init; }

    /// <summary>Sensors that overheat, by id (ids outside the fleet are ignored).</summary>
    public IReadOnlyList<string> OverheatSensors { get; init; } = [];

    public int OverheatSecondsPerMinute { get; init; } = 20;

    /// <summary>Fraction (0–1) of the sensors, chosen from the seed, that go silent.</summary>
    public double SilenceFraction { get; init; }

    /// <summary>Sensors that go silent, by id (ids outside the fleet are ignored).</summary>
    public IReadOnlyList<string> SilentSensors { get; init; } = [];

    public int SilentMinutes { get; init; } = 3;

    public int SilenceCycleMinutes { get; init; } = 6;

    /// <summary>Probability (0–1) that a given minute of a given sensor is a humidity spike.</summary>
    public double HumiditySpikeProbability { get; init; }

    public static AnomalyOptions None { get; } = new();

    /// <summary>The Api's demo: greenhouse-01 overheats 20 s of every minute, warehouse-01 is silent 3 of every 6 minutes.</summary>
    public static AnomalyOptions Demo { get; } = new()
    {
        OverheatSensors = ["greenhouse-01"],
        SilentSensors = ["warehouse-01"],
    };

    /// <summary>
    /// The simulator's "typical": the demo's two sensors plus 1 % of the fleet overheat (breaks <c>temperature &gt; 35</c>),
    /// plus 1 % go silent (breaks offline rules of 2 minutes or less), and 0.2 % of sensor-minutes are humidity spikes.
    /// </summary>
    public static AnomalyOptions Typical { get; } = Demo with
    {
        OverheatFraction = 0.01,
        SilenceFraction = 0.01,
        HumiditySpikeProbability = 0.002,
    };
}

/// <summary>
/// A fleet of sensors in a garden, a greenhouse, a warehouse and an office. Every value is a pure function of the
/// seed, the sensor and the time (epoch milliseconds): the same seed and time always give the same values.
/// Temperature follows a daily curve per location (coolest at 05:00 UTC, warmest at 17:00) with a per-sensor offset
/// and noise; relative humidity falls as temperature rises; the heat index is computed from both; solar radiation
/// follows the sun (06:00–18:00 UTC) through each location's glass or walls; lights are on at night outdoors and
/// during working hours indoors.
/// </summary>
public sealed class FleetModel
{
    public static IReadOnlyList<string> Locations { get; } = ["garden", "greenhouse", "warehouse", "office"];

    public static IReadOnlyList<string> Models { get; } = ["HW-MD202", "TH-100", "SR-7"];

    // Per location: mean temperature, daily swing, humidity base, share of the sun's radiation, light hours (indoors).
    private static readonly double[] MeanTemperature = [18, 22, 16, 21.5];
    private static readonly double[] DailySwing = [7, 8, 4, 1.5];
    private static readonly double[] HumidityBase = [60, 72, 50, 45];
    private static readonly double[] SunShare = [1, 0.7, 0.05, 0.15];
    private static readonly int[] LightsOnHour = [-1, -1, 6, 7];
    private static readonly int[] LightsOffHour = [-1, -1, 22, 19];

    private const long MsPerMinute = 60_000;
    private const long MsPerDay = 86_400_000;

    private readonly ulong _seed;
    private readonly string[] _ids;
    private readonly double[] _offsets;
    private readonly bool[] _overheats;
    private readonly bool[] _silences;
    private readonly long _overheatMs;
    private readonly long _silenceCycleMs;
    private readonly long _silentFromMs;
    private readonly double _spikeProbability;

    /// <param name="sensors">Fleet size (1 to 1,000,000).</param>
    /// <param name="seed">Chooses noise, per-sensor offsets and which sensors misbehave.</param>
    /// <param name="anomalies">Anomalies; <see cref="AnomalyOptions.None"/> for none.</param>
    /// <param name="anomalyOriginMs">Epoch milliseconds from which the anomaly schedules run.</param>
    public FleetModel(int sensors, int seed, AnomalyOptions anomalies, long anomalyOriginMs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sensors, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sensors, 1_000_000);
        ArgumentOutOfRangeException.ThrowIfNegative(anomalies.OverheatSecondsPerMinute);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(anomalies.OverheatSecondsPerMinute, 60);
        ArgumentOutOfRangeException.ThrowIfLessThan(anomalies.SilenceCycleMinutes, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(anomalies.SilentMinutes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(anomalies.SilentMinutes, anomalies.SilenceCycleMinutes);

        Count = sensors;
        Anomalies = anomalies;
        AnomalyOriginMs = anomalyOriginMs;
        _seed = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL;
        _overheatMs = anomalies.OverheatSecondsPerMinute * 1000L;
        _silenceCycleMs = anomalies.SilenceCycleMinutes * MsPerMinute;
        _silentFromMs = (anomalies.SilenceCycleMinutes - anomalies.SilentMinutes) * MsPerMinute;
        _spikeProbability = anomalies.HumiditySpikeProbability;

        _ids = new string[sensors];
        _offsets = new double[sensors];
        _overheats = new bool[sensors];
        _silences = new bool[sensors];
        var byId = new Dictionary<string, int>(sensors, StringComparer.Ordinal);
        for (var i = 0; i < sensors; i++)
        {
            _ids[i] = $"{Locations[i % Locations.Count]}-{i / Locations.Count + 1:00}";
            byId[_ids[i]] = i;
            _offsets[i] = (Uniform(i, 0, Channel.Offset) - 0.5) * 2;
            _overheats[i] = Uniform(i, 0, Channel.OverheatChoice) < anomalies.OverheatFraction;
            _silences[i] = Uniform(i, 0, Channel.SilenceChoice) < anomalies.SilenceFraction;
        }
        foreach (var id in anomalies.OverheatSensors)
        {
            if (byId.TryGetValue(id, out var i))
            {
                _overheats[i] = true;
            }
        }
        foreach (var id in anomalies.SilentSensors)
        {
            if (byId.TryGetValue(id, out var i))
            {
                _silences[i] = true;
            }
        }
        HasSilentSensors = anomalies.SilentMinutes > 0 && Array.IndexOf(_silences, true) >= 0;
    }

    public int Count { get; }

    public AnomalyOptions Anomalies { get; }

    public long AnomalyOriginMs { get; }

    /// <summary>True when some sensor of the fleet has a silence schedule.</summary>
    public bool HasSilentSensors { get; }

    public string Id(int sensor) => _ids[sensor];

    public static string LocationOf(int sensor) => Locations[sensor % Locations.Count];

    public static string ModelOf(int sensor) => Models[sensor % Models.Count];

    public SensorInfo Sensor(int sensor) => new(sensor, _ids[sensor], LocationOf(sensor), ModelOf(sensor));

    /// <summary>Whether the sensor sends nothing at this time.</summary>
    public bool IsSilent(int sensor, long timeMs)
    {
        if (!_silences[sensor] || timeMs < AnomalyOriginMs)
        {
            return false;
        }
        return (timeMs - AnomalyOriginMs) % _silenceCycleMs >= _silentFromMs;
    }

    public bool IsOverheating(int sensor, long timeMs) =>
        _overheats[sensor] && timeMs >= AnomalyOriginMs && (timeMs - AnomalyOriginMs) % MsPerMinute < _overheatMs;

    public bool IsHumiditySpike(int sensor, long timeMs) =>
        _spikeProbability > 0 && timeMs >= AnomalyOriginMs
        && Uniform(sensor, (timeMs - AnomalyOriginMs) / MsPerMinute, Channel.Spike) < _spikeProbability;

    /// <summary>The values of a sensor at a time (also for a silent sensor: the caller decides whether to send).</summary>
    public SensorValues Read(int sensor, long timeMs)
    {
        var location = sensor % Locations.Count;
        var hour = (double)(((timeMs % MsPerDay) + MsPerDay) % MsPerDay) / 3_600_000;
        var daily = Math.Sin((hour - 11) / 24 * 2 * Math.PI);
        var temperature = MeanTemperature[location] + DailySwing[location] * daily + _offsets[sensor]
            + Uniform(sensor, timeMs, Channel.Temperature) - 0.5;
        if (IsOverheating(sensor, timeMs))
        {
            temperature = 38 + Uniform(sensor, timeMs, Channel.Overheat);
        }
        var humidity = HumidityBase[location] - (temperature - 18) * 2 + Uniform(sensor, timeMs, Channel.Humidity) * 4;
        if (IsHumiditySpike(sensor, timeMs))
        {
            humidity = 92 + Uniform(sensor, timeMs, Channel.Humidity) * 7;
        }
        humidity = Math.Clamp(humidity, 5, 100);
        var sun = Math.Sin((hour - 6) / 12 * Math.PI);
        var radiation = sun > 0 ? SunShare[location] * (900 * sun + Uniform(sensor, timeMs, Channel.Radiation) * 10) : 0;
        var lightOn = LightsOnHour[location] < 0 ? radiation < 50 : hour >= LightsOnHour[location] && hour < LightsOffHour[location];
        return new SensorValues(
            Math.Round(temperature, 2),
            Math.Round(humidity, 1),
            Math.Round(Simulator.HeatIndex.Celsius(temperature, humidity), 2),
            Math.Round(radiation, 1),
            lightOn);
    }

    /// <summary>
    /// The weather outside the fleet's site at a time, the same for every location: a daily curve (coolest at 05:00 UTC)
    /// around 12 °C, humidity falling as it warms. A pure function of the time, rounded to what a weather service reports.
    /// </summary>
    public static OutsideWeather Outside(long timeMs)
    {
        var hour = (double)(((timeMs % MsPerDay) + MsPerDay) % MsPerDay) / 3_600_000;
        var temperature = 12 + 6 * Math.Sin((hour - 11) / 24 * 2 * Math.PI);
        return new OutsideWeather(Math.Round(temperature, 1), Math.Round(Math.Clamp(80 - (temperature - 12) * 3, 20, 100), 0));
    }

    private enum Channel : ulong
    {
        Offset = 1, OverheatChoice, SilenceChoice, Temperature, Overheat, Humidity, Radiation, Spike,
    }

    /// <summary>A uniform number in [0, 1) from (seed, sensor, time, channel): SplitMix64 finalizer over the mix.</summary>
    private double Uniform(int sensor, long time, Channel channel)
    {
        var z = _seed ^ ((ulong)sensor * 0xD1B54A32D192ED03UL) ^ ((ulong)time * 0x9E3779B97F4A7C15UL) ^ ((ulong)channel << 56);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}

/// <summary>
/// The heat index (apparent temperature) from temperature and relative humidity: NOAA's simple formula below
/// 80 °F, else the Rothfusz regression with NOAA's adjustments for low and high humidity.
/// </summary>
public static class HeatIndex
{
    public static double Celsius(double celsius, double humidity)
    {
        var f = celsius * 9 / 5 + 32;
        var simple = 0.5 * (f + 61 + (f - 68) * 1.2 + humidity * 0.094);
        var hi = simple;
        if ((simple + f) / 2 >= 80)
        {
            hi = -42.379 + 2.04901523 * f + 10.14333127 * humidity - 0.22475541 * f * humidity - 0.00683783 * f * f
                - 0.05481717 * humidity * humidity + 0.00122874 * f * f * humidity + 0.00085282 * f * humidity * humidity
                - 0.00000199 * f * f * humidity * humidity;
            if (humidity < 13 && f is >= 80 and <= 112)
            {
                hi -= (13 - humidity) / 4 * Math.Sqrt((17 - Math.Abs(f - 95)) / 17);
            }
            else if (humidity > 85 && f is >= 80 and <= 87)
            {
                hi += (humidity - 85) / 10 * ((87 - f) / 5);
            }
        }
        return (hi - 32) * 5 / 9;
    }
}
