using System.Collections.Immutable;
using Grains.Abstractions;
using Runtime;

namespace Api.Demo;

/// <summary>Settings of section "Demo": an in-process simulated fleet for a first look at the system.</summary>
public sealed class DemoOptions
{
    public bool Enabled { get; set; }

    public int Sensors { get; set; } = 24;

    public int IntervalMs { get; set; } = 1000;
}

public static class DemoServiceCollectionExtensions
{
    public static IServiceCollection AddDemoFleet(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DemoOptions>().Bind(configuration.GetSection("Demo"))
            .Validate(o => o.Sensors is >= 1 and <= 100_000, "Demo:Sensors must be between 1 and 100000")
            .Validate(o => o.IntervalMs is >= 10 and <= 60_000, "Demo:IntervalMs must be between 10 and 60000")
            .ValidateOnStart();
        if (configuration.GetValue<bool>("Demo:Enabled"))
        {
            services.AddHostedService<DemoFleet>();
        }
        return services;
    }
}

/// <summary>
/// Plays a small fleet: sensors in a garden, a greenhouse, a warehouse and an office post temperature, humidity,
/// heat index and solar radiation every interval, with a light attribute, after posting ten minutes of history.
/// The greenhouse's first sensor overheats for 20 s of every minute and the warehouse's first sensor goes silent
/// for 3 of every 6 minutes, so the demo rules open and resolve alerts from the first seconds on.
/// </summary>
public sealed partial class DemoFleet(GrainGateway gateway, IRuleStore rules, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<DemoOptions> options, ILogger<DemoFleet> logger) : BackgroundService
{
    private static readonly string[] Locations = ["garden", "greenhouse", "warehouse", "office"];
    private static readonly string[] Models = ["HW-MD202", "TH-100", "SR-7"];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await CreateRulesAsync(stoppingToken);
        var count = options.Value.Sensors;
        var random = new Random(42);
        var start = time.GetUtcNow();
        LogStarted(logger, count, options.Value.IntervalMs);

        // Ten minutes of history first, so that closed minutes are there to look at from the first second.
        for (var t = start.AddMinutes(-10); t < start; t = t.AddSeconds(10))
        {
            await gateway.AppendTelemetryAsync(Fleet(count, t, start, random), stoppingToken);
        }
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.Value.IntervalMs), time);
        do
        {
            var readings = Fleet(count, time.GetUtcNow(), start, random);
            if (readings.Count > 0)
            {
                await gateway.AppendTelemetryAsync(readings, stoppingToken);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private static List<Reading> Fleet(int count, DateTimeOffset now, DateTimeOffset start, Random random)
    {
        var elapsed = (now - start).TotalSeconds;
        var readings = new List<Reading>(count);
        for (var i = 0; i < count; i++)
        {
            var location = Locations[i % Locations.Length];
            var id = $"{location}-{i / Locations.Length + 1:00}";
            if (id == "warehouse-01" && elapsed >= 0 && elapsed % 360 >= 180)
            {
                continue; // silent for 3 of every 6 minutes: the offline rule fires after 2 of them
            }
            // The greenhouse's first sensor overheats for the first 20 s of every minute from start.
            var overheating = id == "greenhouse-01" && elapsed >= 0 && elapsed % 60 < 20;
            readings.Add(Read(id, location, Models[i % Models.Length], now, overheating, random));
        }
        return readings;
    }

    private static Reading Read(string id, string location, string model, DateTimeOffset now, bool overheating, Random random)
    {
        // A daily curve: coolest at 05:00 UTC, warmest at 17:00, plus noise.
        var hour = now.TimeOfDay.TotalHours;
        var temperature = 18 + 7 * Math.Sin((hour - 11) / 24 * 2 * Math.PI) + random.NextDouble() - 0.5;
        if (overheating)
        {
            temperature = 38 + random.NextDouble();
        }
        var humidity = Math.Clamp(60 - (temperature - 18) * 2 + random.NextDouble() * 4, 5, 100);
        var radiation = Math.Max(0, 900 * Math.Sin((hour - 6) / 12 * Math.PI)) + random.NextDouble() * 10;
        return new Reading
        {
            SensorId = id,
            TimestampMs = now.ToUnixTimeMilliseconds(),
            Metrics =
            [
                new MetricValue("temperature", Math.Round(temperature, 2)),
                new MetricValue("humidity", Math.Round(humidity, 1)),
                new MetricValue("heat_index", Math.Round(HeatIndex.Celsius(temperature, humidity), 2)),
                new MetricValue("solar_radiation", Math.Round(radiation, 1)),
            ],
            Attributes = [new AttributeValue("light", radiation < 50 ? "on" : "off")],
            Metadata = new SensorMetadata { Location = location, Model = model, Owner = "demo" },
        };
    }

    private async Task CreateRulesAsync(CancellationToken ct)
    {
        RuleDefinition[] demo =
        [
            new()
            {
                Id = "demo-greenhouse-hot", Name = "Greenhouse too hot", Enabled = true, Severity = Severity.Major, Version = 0,
                Target = new RuleTarget { Kind = TargetKind.Location, Location = "greenhouse" },
                Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "temperature", Source = ConditionSource.Raw, Operator = ComparisonOperator.Greater, Value = 35 },
                CooldownSeconds = 10,
                ControlAction = new ControlAction { Command = "ventilation", Parameters = new() { ["mode"] = "max" } },
            },
            new()
            {
                Id = "demo-humid-minute", Name = "Humid minute", Enabled = true, Severity = Severity.Warning, Version = 0,
                Target = new RuleTarget { Kind = TargetKind.All },
                Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "humidity", Source = ConditionSource.Avg, Operator = ComparisonOperator.Greater, Value = 70 },
            },
            new()
            {
                Id = "demo-offline", Name = "Sensor offline", Enabled = true, Severity = Severity.Critical, Version = 0,
                Target = new RuleTarget { Kind = TargetKind.Sensors, SensorIds = ImmutableArray.Create("warehouse-01") },
                Condition = new RuleCondition { Kind = ConditionKind.Offline, Minutes = 2 },
            },
        ];
        foreach (var rule in demo)
        {
            var versioned = rule with { Version = await rules.NextVersionAsync(ct) };
            if (await rules.TryCreateAsync(versioned, ct))
            {
                await gateway.BroadcastRuleChangeAsync(versioned.Id, versioned, ct);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Demo fleet of {Sensors} sensors posting every {IntervalMs} ms")]
    private static partial void LogStarted(ILogger logger, int sensors, int intervalMs);
}

/// <summary>The heat index (apparent temperature) from temperature and relative humidity (NOAA's Rothfusz regression).</summary>
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
        }
        return (hi - 32) * 5 / 9;
    }
}
