using System.Globalization;
using Grains.Abstractions;

namespace Bench;

/// <summary>
/// Sensor ids and readings of the in-process benchmarks, shaped like the simulator's slide format and the design's seed
/// format: 5 metrics (temperature, humidity, heat_index, solar_radiation, volume_control), one string attribute (light
/// on/off) and metadata (model, location). Every string of a reading is a fresh instance, as when readings are
/// deserialized from the log or a request body.
/// </summary>
public static class BenchFleet
{
    public static readonly string[] MetricNames = ["temperature", "humidity", "heat_index", "solar_radiation", "volume_control"];
    private static readonly string[] Locations = ["garden", "greenhouse", "warehouse", "office"];
    private static readonly string[] Models = ["HW-MD202", "TH-100", "SR-7"];

    /// <summary>A UTC minute start (2023-11-14T22:14:00Z), the time base of benchmarks that drive time themselves.</summary>
    public const long M0 = 1_700_000_040_000;

    /// <summary>The id of sensor <paramref name="sensor"/> ({location}-{n:00}, as the simulator names them), a fresh instance.</summary>
    public static string Id(int sensor) =>
        string.Create(CultureInfo.InvariantCulture, $"{Locations[sensor % Locations.Length]}-{sensor / Locations.Length + 1:00}");

    /// <summary>Reading number <paramref name="round"/> of a sensor at event time <paramref name="timeMs"/>.</summary>
    public static Reading NewReading(string id, int sensor, long timeMs, int round)
    {
        var metrics = new MetricValue[MetricNames.Length];
        for (var m = 0; m < metrics.Length; m++)
        {
            metrics[m] = new MetricValue(Fresh(MetricNames[m]), Math.Round(10 + (sensor % 97) * 0.25 + m * 7.5 + round * 0.1, 2));
        }

        return new Reading
        {
            SensorId = Fresh(id),
            TimestampMs = timeMs,
            Metrics = metrics,
            Attributes = [new AttributeValue(Fresh("light"), Fresh(round % 2 == 0 ? "on" : "off"))],
            Metadata = new SensorMetadata { Model = Fresh(Models[sensor % Models.Length]), Location = Fresh(Locations[sensor % Locations.Length]) },
        };
    }

    /// <summary>
    /// Rule definitions targeting every sensor: <paramref name="count"/> temperature thresholds that the benchmark's
    /// readings never cross (each sensor tracks the rules without signalling).
    /// </summary>
    public static RuleCatalog ThresholdRules(int count) => RuleCatalog.From(Enumerable.Range(1, count).Select(r => new RuleDefinition
    {
        Id = string.Create(CultureInfo.InvariantCulture, $"rule-{r:00}"),
        Name = "temperature above 100",
        Enabled = true,
        Severity = Severity.Major,
        Target = new RuleTarget { Kind = TargetKind.All },
        Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "temperature", Operator = ComparisonOperator.Greater, Value = 100 },
        Version = 1,
    }));

    private static string Fresh(string s) => new(s.AsSpan());
}
