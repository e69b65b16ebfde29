using System.Collections.Immutable;
using System.Buffers;
using System.Text.Json;
using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace Grains.Tests;

internal static class TestData
{
    /// <summary>A UTC minute start (2023-11-14T22:14:00Z).</summary>
    public const long M0 = 1_700_000_040_000;

    public const long Minute = 60_000;

    public static Reading Reading(string sensorId, long timeMs, params (string Name, double Value)[] metrics) => new()
    {
        SensorId = sensorId,
        TimestampMs = timeMs,
        Metrics = metrics.Select(m => new MetricValue(m.Name, m.Value)).ToArray(),
    };

    public static RuleDefinition Threshold(
        string id,
        string metric,
        ComparisonOperator op,
        double value,
        ConditionSource source = ConditionSource.Raw,
        long version = 1,
        int forMinutes = 0,
        int cooldownSeconds = 0,
        bool enabled = true,
        ControlAction? action = null,
        RuleTarget? target = null) => new()
        {
            Id = id,
            Name = "Rule " + id,
            Enabled = enabled,
            Severity = Severity.Major,
            Target = target ?? new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition
            {
                Kind = ConditionKind.Threshold,
                Metric = metric,
                Source = source,
                Operator = op,
                Value = value,
                ForMinutes = forMinutes,
            },
            CooldownSeconds = cooldownSeconds,
            ControlAction = action,
            Version = version,
        };

    public static RuleDefinition Offline(string id, int minutes, long version = 1) => new()
    {
        Id = id,
        Name = "Rule " + id,
        Enabled = true,
        Severity = Severity.Critical,
        Target = new RuleTarget { Kind = TargetKind.Sensors, SensorIds = ImmutableArray.Create("s1") },
        Condition = new RuleCondition { Kind = ConditionKind.Offline, Minutes = minutes },
        Version = version,
    };

    public static ConditionSignal Signal(string ruleId, long version, string sensorId, bool holding, long timeMs, double? value, string message, long sequence = 0) => new()
    {
        Sequence = sequence,
        RuleId = ruleId,
        RuleVersion = version,
        SensorId = sensorId,
        Holding = holding,
        EventTimeMs = timeMs,
        Value = value,
        Message = message,
    };

    /// <summary>Outputs as polymorphic JSON, for exact comparison of records holding arrays or dictionaries.</summary>
    public static string Json(IEnumerable<GrainOutput> outputs) => JsonSerializer.Serialize(outputs.ToArray());

    public static string Json(GrainOutput output) => JsonSerializer.Serialize(output);

    /// <summary>Orleans' serializer, as the silo's grain storage uses it (<see cref="BinaryGrainStorageSerializer"/>).</summary>
    public static Serializer Serializer { get; } =
        new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();

    /// <summary>A state in its stored (binary) form.</summary>
    public static byte[] Bytes<T>(T value)
    {
        var writer = new ArrayBufferWriter<byte>(256);
        Serializer.Serialize(value, writer);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>A state written and read back as the grain storage does: a new object graph with strings of its own.</summary>
    public static T RoundTrip<T>(T value) => Serializer.Deserialize<T>(Bytes(value))!;
}
