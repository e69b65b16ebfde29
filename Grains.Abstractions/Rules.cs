using System.Collections.Immutable;
using System.Text.Json.Serialization;

namespace Grains.Abstractions;

[JsonConverter(typeof(JsonStringEnumConverter<Severity>))]
public enum Severity { Critical, Major, Minor, Warning, Info }

[JsonConverter(typeof(JsonStringEnumConverter<TargetKind>))]
public enum TargetKind { All, Sensors, Location, Model }

[JsonConverter(typeof(JsonStringEnumConverter<ConditionKind>))]
public enum ConditionKind { Threshold, Offline }

/// <summary>What a threshold compares: the raw reading, or a statistic of the closed minute.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ConditionSource>))]
public enum ConditionSource { Raw, Avg, Min, Max, Sum, Count, Last }

[JsonConverter(typeof(JsonStringEnumConverter<ComparisonOperator>))]
public enum ComparisonOperator { Equal, NotEqual, Less, LessOrEqual, Greater, GreaterOrEqual }

/// <summary>A validated alert rule. Every change increases <see cref="Version"/>.</summary>
public sealed record RuleDefinition
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required bool Enabled { get; init; }
    public required Severity Severity { get; init; }
    public required RuleTarget Target { get; init; }
    public required RuleCondition Condition { get; init; }

    /// <summary>Time after a resolution before the same (rule, sensor) may open again.</summary>
    public int CooldownSeconds { get; init; }
    public ControlAction? ControlAction { get; init; }
    public required long Version { get; init; }

    public bool Targets(string sensorId, SensorMetadata? metadata) => Target.Kind switch
    {
        TargetKind.All => true,
        TargetKind.Sensors => Target.SensorIds is { } ids && ids.Contains(sensorId),
        TargetKind.Location => metadata?.Location is { } l && string.Equals(l, Target.Location, StringComparison.Ordinal),
        TargetKind.Model => metadata?.Model is { } m && string.Equals(m, Target.Model, StringComparison.Ordinal),
        _ => false,
    };
}

public sealed record RuleTarget
{
    public required TargetKind Kind { get; init; }
    public ImmutableArray<string>? SensorIds { get; init; }
    public string? Location { get; init; }
    public string? Model { get; init; }
}

public sealed record RuleCondition
{
    public required ConditionKind Kind { get; init; }

    // Threshold
    public string? Metric { get; init; }
    public ConditionSource Source { get; init; }
    public ComparisonOperator Operator { get; init; }
    public double Value { get; init; }

    /// <summary>Threshold only: the condition must hold this long before an alert opens (0: at once).</summary>
    public int ForMinutes { get; init; }

    // Offline
    /// <summary>Offline only: minutes of stream time without data from the sensor.</summary>
    public int Minutes { get; init; }

    public bool Holds(double value) => Operator switch
    {
        ComparisonOperator.Equal => value == Value,
        ComparisonOperator.NotEqual => value != Value,
        ComparisonOperator.Less => value < Value,
        ComparisonOperator.LessOrEqual => value <= Value,
        ComparisonOperator.Greater => value > Value,
        ComparisonOperator.GreaterOrEqual => value >= Value,
        _ => false,
    };

    public static string Symbol(ComparisonOperator op) => op switch
    {
        ComparisonOperator.Equal => "==",
        ComparisonOperator.NotEqual => "!=",
        ComparisonOperator.Less => "<",
        ComparisonOperator.LessOrEqual => "<=",
        ComparisonOperator.Greater => ">",
        ComparisonOperator.GreaterOrEqual => ">=",
        _ => "?",
    };

    public static bool TryParseSymbol(string? text, out ComparisonOperator op)
    {
        switch (text)
        {
            case "==": op = ComparisonOperator.Equal; return true;
            case "!=": op = ComparisonOperator.NotEqual; return true;
            case "<": op = ComparisonOperator.Less; return true;
            case "<=": op = ComparisonOperator.LessOrEqual; return true;
            case ">": op = ComparisonOperator.Greater; return true;
            case ">=": op = ComparisonOperator.GreaterOrEqual; return true;
            default: op = default; return false;
        }
    }
}

/// <summary>A command sent to the device when the rule opens an alert.</summary>
public sealed record ControlAction
{
    public required string Command { get; init; }
    public Dictionary<string, string>? Parameters { get; init; }

    /// <summary>The device to command; null means the sensor the alert is about.</summary>
    public string? DeviceId { get; init; }
}

/// <summary>The rule definitions a partition knows, as of its position in the log. Immutable.</summary>
public sealed class RuleCatalog
{
    public static readonly RuleCatalog Empty = new(ImmutableSortedDictionary<string, RuleDefinition>.Empty.WithComparers(StringComparer.Ordinal));

    private readonly ImmutableSortedDictionary<string, RuleDefinition> _rules;
    private readonly RuleDefinition[] _enabled;

    private RuleCatalog(ImmutableSortedDictionary<string, RuleDefinition> rules)
    {
        _rules = rules;
        _enabled = rules.Values.Where(r => r.Enabled).ToArray();
    }

    public IEnumerable<RuleDefinition> All => _rules.Values;

    /// <summary>Enabled rules in id order (a stable order, so evaluation order is deterministic).</summary>
    public ReadOnlySpan<RuleDefinition> Enabled => _enabled;

    public RuleDefinition? Find(string ruleId) => _rules.TryGetValue(ruleId, out var rule) ? rule : null;

    public RuleCatalog With(RuleDefinition rule) => new(_rules.SetItem(rule.Id, rule));

    public RuleCatalog Without(string ruleId) => _rules.ContainsKey(ruleId) ? new(_rules.Remove(ruleId)) : this;

    public static RuleCatalog From(IEnumerable<RuleDefinition> rules) =>
        new(rules.Aggregate(Empty._rules, (d, r) => d.SetItem(r.Id, r)));
}
