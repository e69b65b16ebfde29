using System.Collections.Immutable;
using System.Diagnostics;
using System.Text.Json;
using Grains.Abstractions;
using Microsoft.Extensions.Logging;
using Runtime;
using Runtime.RabbitMq;
using Xunit.Abstractions;

namespace Integration.Tests.RabbitMq;

/// <summary>Waiting on conditions with a deadline, reading exact record counts, sample entries, test logging.</summary>
internal static class RmqTest
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout} waiting for: {what}");
            }
            await Task.Delay(25);
        }
    }

    /// <summary>Reads until <paramref name="count"/> records arrived (failing after <paramref name="timeout"/>), then checks that no more follow.</summary>
    public static async Task<List<LogRecord>> ReadExactlyAsync(IInboxReader reader, int count, TimeSpan? timeout = null, bool checkNoMore = true)
    {
        var records = new List<LogRecord>();
        var clock = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(20);
        while (records.Count < count)
        {
            if (clock.Elapsed > limit)
            {
                throw new TimeoutException($"Read {records.Count} of {count} records in {limit}");
            }
            await reader.ReadAsync(records, count - records.Count, TimeSpan.FromMilliseconds(200), CancellationToken.None);
        }
        if (checkNoMore)
        {
            var extra = new List<LogRecord>();
            await reader.ReadAsync(extra, 100, TimeSpan.FromMilliseconds(300), CancellationToken.None);
            Assert.Empty(extra);
        }
        return records;
    }

    /// <summary>Reads records until they hold <paramref name="readings"/> readings (appends of telemetry may share a record).</summary>
    public static async Task<List<LogRecord>> ReadReadingsAsync(IInboxReader reader, int readings, TimeSpan timeout)
    {
        var records = new List<LogRecord>();
        var clock = Stopwatch.StartNew();
        var read = 0;
        while (read < readings)
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Read {read} of {readings} readings in {timeout}");
            }
            var from = records.Count;
            await reader.ReadAsync(records, 1000, TimeSpan.FromMilliseconds(200), CancellationToken.None);
            read += records.Skip(from).Sum(r => Telemetry(r.Entry).Sum(t => t.Readings.Length));
        }
        return records;
    }

    /// <summary>The telemetry entries of a record: itself, or those of a group.</summary>
    public static TelemetryEntry[] Telemetry(InboxEntry entry) => entry switch
    {
        TelemetryEntry telemetry => [telemetry],
        TelemetryGroupEntry group => group.Entries,
        _ => [],
    };

    public static string Json(InboxEntry entry) => JsonSerializer.Serialize(entry, RabbitMqJsonContext.Default.InboxEntry);

    public static Reading Reading(string sensor, long timestampMs, double temperature) => new()
    {
        SensorId = sensor,
        TimestampMs = timestampMs,
        Metrics = [new MetricValue("temperature", temperature), new MetricValue("humidity", 50.5)],
    };

    public static TelemetryEntry Telemetry(int readings, string sensorPrefix = "s") =>
        new(Enumerable.Range(0, readings).Select(i => Reading($"{sensorPrefix}{i % 50}", 1_700_000_000_000 + i, 20 + i % 7)).ToArray(), null, 1_700_000_001_000);

    public static RuleDefinition Rule(string id) => new()
    {
        Id = id,
        Name = "Too hot",
        Enabled = true,
        Severity = Severity.Major,
        Target = new RuleTarget { Kind = TargetKind.Sensors, SensorIds = ImmutableArray.Create("a", "b") },
        Condition = new RuleCondition
        {
            Kind = ConditionKind.Threshold,
            Metric = "temperature",
            Source = ConditionSource.Avg,
            Operator = ComparisonOperator.Greater,
            Value = 30.5,
            ForMinutes = 2,
        },
        CooldownSeconds = 60,
        ControlAction = new ControlAction { Command = "fan", Parameters = new() { ["speed"] = "high" }, DeviceId = "dev-1" },
        Version = 7,
    };

    /// <summary>One entry of every kind, with every optional field set somewhere.</summary>
    public static InboxEntry[] EveryKind() =>
    [
        new TelemetryEntry([
            new Reading
            {
                SensorId = "AAAA",
                TimestampMs = 1_700_000_000_123,
                Metrics = [new MetricValue("temperature", 22.25), new MetricValue("volume_control", 0.5), new MetricValue("neg", -1e-9)],
                Attributes = [new AttributeValue("light", "on"), new AttributeValue("door", "false")],
                Metadata = new SensorMetadata
                {
                    Model = "HW-MD202", Location = "garden", Owner = "ana", Version = "1.2",
                    Extra = new() { ["firmware"] = "3.1", ["ñandú"] = "ü <&> \"q\"" },
                },
            },
            Reading("BBBB", 1_700_000_000_456, 19),
        ], "key-\u00f1-1", 1_700_000_000_500),
        new TelemetryEntry([Reading("CCCC", 1_700_000_000_789, 18.5)], null, 1_700_000_000_800),
        new TickEntry(1_700_000_200_000),
        new RuleChangeEntry("r2", Rule("r2"), 1_700_000_100_000),
        new RuleChangeEntry("r3", Rule("r3") with { Condition = new RuleCondition { Kind = ConditionKind.Offline, Minutes = 5 }, ControlAction = null }, 1_700_000_100_001),
        new RuleChangeEntry("r4", null, 1_700_000_100_002),
        new SensorMetadataEntry("AAAA", new OperatorMetadata
        {
            Location = "roof", Model = "HW-MD300", Owner = "ops", Tags = new() { ["team"] = "ñ <&> \"q\"", ["floor"] = "2" },
        }, 1_700_000_100_003),
        new SensorMetadataEntry("BBBB", new OperatorMetadata(), 1_700_000_100_004),
        new OutsideConditionsEntry("garden ñ", [
            new OutsideObservation { TimestampMs = 1_700_000_000_000, Metrics = [new MetricValue("humidity", 81.5), new MetricValue("temperature", -2.25)] },
            new OutsideObservation { TimestampMs = 1_700_000_060_000, Metrics = [new MetricValue("temperature", -2)] },
        ], 1_700_000_100_005),
        new RuleChangeEntry("r5", Rule("r5") with { Condition = Rule("r5").Condition with { Source = ConditionSource.Avg, OutsideMetric = "temperature" } }, 1_700_000_100_006),
    ];
}

internal sealed class XunitLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(output, categoryName);

    public void Dispose()
    {
    }

    public static ILoggerFactory Factory(ITestOutputHelper output) =>
        LoggerFactory.Create(b => b.AddProvider(new XunitLoggerProvider(output)).SetMinimumLevel(LogLevel.Information));

    private sealed class Logger(ITestOutputHelper output, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception.Message)}");
            }
            catch (InvalidOperationException)
            {
                // The test has finished.
            }
        }
    }
}
