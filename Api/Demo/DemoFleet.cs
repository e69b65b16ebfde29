using System.Collections.Immutable;
using Grains.Abstractions;
using Runtime;
using Simulator;

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
/// Plays a small fleet with the simulator's value model (<see cref="FleetModel"/>, linked from Simulator/): sensors
/// in a garden, a greenhouse, a warehouse and an office post temperature, humidity, heat index and solar radiation
/// every interval, with a light attribute, after posting ten minutes of history; the site's outside weather is posted
/// for every location each minute, so closed minutes carry it and a rule compares the greenhouse with it. The greenhouse's first sensor
/// overheats for the first 20 s of every minute from start and the warehouse's first sensor goes silent for 3 of
/// every 6 minutes, so the demo rules open and resolve alerts from the first seconds on.
/// </summary>
public sealed partial class DemoFleet(InboxWriter inbox, IRuleStore rules, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<DemoOptions> options, ILogger<DemoFleet> logger) : BackgroundService
{
    private const int Seed = 42;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await CreateRulesAsync(stoppingToken);
        var count = options.Value.Sensors;
        var start = time.GetUtcNow();
        var fleet = new FleetModel(count, Seed, AnomalyOptions.Demo, start.ToUnixTimeMilliseconds());
        var metadata = new SensorMetadata[count];
        for (var i = 0; i < count; i++)
        {
            metadata[i] = new SensorMetadata { Location = FleetModel.LocationOf(i), Model = FleetModel.ModelOf(i), Owner = "demo" };
        }
        LogStarted(logger, count, options.Value.IntervalMs);

        // Ten minutes of history first, so that closed minutes are there to look at from the first second.
        // Anomalies run from start on, so the history is quiet.
        var weatherMinute = long.MinValue;
        for (var t = start.AddMinutes(-10); t < start; t = t.AddSeconds(10))
        {
            weatherMinute = await PostWeatherAsync(t.ToUnixTimeMilliseconds(), weatherMinute, stoppingToken);
            await inbox.AppendTelemetryAsync(Fleet(fleet, metadata, t.ToUnixTimeMilliseconds()), null, stoppingToken);
        }
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(options.Value.IntervalMs), time);
        do
        {
            weatherMinute = await PostWeatherAsync(time.GetUtcNow().ToUnixTimeMilliseconds(), weatherMinute, stoppingToken);
            var readings = Fleet(fleet, metadata, time.GetUtcNow().ToUnixTimeMilliseconds());
            if (readings.Count > 0)
            {
                await inbox.AppendTelemetryAsync(readings, null, stoppingToken);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>
    /// Posts the site's outside weather (<see cref="FleetModel.Outside"/>) for every location once per minute, as a weather
    /// integration would, at the start of the minute of <paramref name="timeMs"/> unless that minute was posted already.
    /// </summary>
    private async Task<long> PostWeatherAsync(long timeMs, long postedMinute, CancellationToken ct)
    {
        var minute = timeMs - timeMs % 60_000;
        if (minute == postedMinute)
        {
            return postedMinute;
        }
        var weather = FleetModel.Outside(minute);
        OutsideObservation[] observation =
        [
            new() { TimestampMs = minute, Metrics = [new MetricValue("humidity", weather.Humidity), new MetricValue("temperature", weather.Temperature)] },
        ];
        foreach (var location in FleetModel.Locations)
        {
            await inbox.AppendOutsideConditionsAsync(location, observation, ct);
        }
        return minute;
    }

    private static List<Reading> Fleet(FleetModel fleet, SensorMetadata[] metadata, long timeMs)
    {
        var readings = new List<Reading>(fleet.Count);
        for (var i = 0; i < fleet.Count; i++)
        {
            if (fleet.IsSilent(i, timeMs))
            {
                continue;
            }
            var v = fleet.Read(i, timeMs);
            readings.Add(new Reading
            {
                SensorId = fleet.Id(i),
                TimestampMs = timeMs,
                Metrics =
                [
                    new MetricValue("temperature", v.Temperature),
                    new MetricValue("humidity", v.Humidity),
                    new MetricValue("heat_index", v.HeatIndex),
                    new MetricValue("solar_radiation", v.SolarRadiation),
                ],
                Attributes = [new AttributeValue("light", v.LightOn ? "on" : "off")],
                Metadata = metadata[i],
            });
        }
        return readings;
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
                Id = "demo-greenhouse-warm", Name = "Greenhouse 10 °C warmer than outside", Enabled = true, Severity = Severity.Info, Version = 0,
                Target = new RuleTarget { Kind = TargetKind.Location, Location = "greenhouse" },
                Condition = new RuleCondition
                {
                    Kind = ConditionKind.Threshold, Metric = "temperature", Source = ConditionSource.Avg, Operator = ComparisonOperator.Greater, Value = 10,
                    OutsideMetric = "temperature",
                },
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
            if (await rules.CreateAsync(versioned, int.MaxValue, ct) == RuleCreation.Created)
            {
                await inbox.AppendRuleChangeAsync(versioned.Id, versioned, ct);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Demo fleet of {Sensors} sensors posting every {IntervalMs} ms")]
    private static partial void LogStarted(ILogger logger, int sensors, int intervalMs);
}
