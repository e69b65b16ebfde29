using System.Collections.Immutable;
using System.Text.Json.Serialization;

namespace Grains.Abstractions;

[JsonConverter(typeof(JsonStringEnumConverter<Severity>))]
[GenerateSerializer, Alias("oiot.Severity")]
public enum Severity { Critical, Major, Minor, Warning, Info }

[JsonConverter(typeof(JsonStringEnumConverter<TargetKind>))]
[GenerateSerializer, Alias("oiot.TargetKind")]
public enum TargetKind { All, Sensors, Location, Model }

[JsonConverter(typeof(JsonStringEnumConverter<ConditionKind>))]
[GenerateSerializer, Alias("oiot.ConditionKind")]
public enum ConditionKind { Threshold, Offline }

/// <summary>What a threshold compares: the raw reading, or a statistic of the closed minute.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ConditionSource>))]
[GenerateSerializer, Alias("oiot.ConditionSource")]
public enum ConditionSource { Raw, Avg, Min, Max, Sum, Count, Last }

[JsonConverter(typeof(JsonStringEnumConverter<ComparisonOperator>))]
[GenerateSerializer, Alias("oiot.ComparisonOperator")]
public enum ComparisonOperator { Equal, NotEqual, Less, LessOrEqual, Greater, GreaterOrEqual }

/// <summary>A validated alert rule. Every change increases <see cref="Version"/>.</summary>
[GenerateSerializer, Immutable, Alias("oiot.RuleDefinition")]
public sealed record RuleDefinition
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required string Name { get; init; }
    [Id(2)] public required bool Enabled { get; init; }
    [Id(3)] public required Severity Severity { get; init; }
    [Id(4)] public required RuleTarget Target { get; init; }
    [Id(5)] public required RuleCondition Condition { get; init; }

    /// <summary>Time after a resolution before the same (rule, sensor) may open again.</summary>
    [Id(6)] public int CooldownSeconds { get; init; }
    [Id(7)] public ControlAction? ControlAction { get; init; }
    [Id(8)] public required long Version { get; init; }

    public bool Targets(string sensorId, SensorMetadata? metadata) => Target.Kind switch
    {
        TargetKind.All => true,
        TargetKind.Sensors => Target.SensorIds is { } ids && ids.Contains(sensorId),
        TargetKind.Location => metadata?.Location is { } l && string.Equals(l, Target.Location, StringComparison.Ordinal),
        TargetKind.Model => metadata?.Model is { } m && string.Equals(m, Target.Model, StringComparison.Ordinal),
        _ => false,
    };
}

[GenerateSerializer, Immutable, Alias("oiot.RuleTarget")]
public sealed record RuleTarget
{
    [Id(0)] public required TargetKind Kind { get; init; }
    [Id(1)] public ImmutableArray<string>? SensorIds { get; init; }
    [Id(2)] public string? Location { get; init; }
    [Id(3)] public string? Model { get; init; }
}

[GenerateSerializer, Immutable, Alias("oiot.RuleCondition")]
public sealed record RuleCondition
{
    [Id(0)] public required ConditionKind Kind { get; init; }

    // Threshold
    [Id(1)] public string? Metric { get; init; }
    [Id(2)] public ConditionSource Source { get; init; }
    [Id(3)] public ComparisonOperator Operator { get; init; }
    [Id(4)] public double Value { get; init; }

    /// <summary>Threshold only: the condition must hold this long before an alert opens (0: at once).</summary>
    [Id(5)] public int ForMinutes { get; init; }

    // Offline
    /// <summary>Offline only: minutes of stream time without data from the sensor.</summary>
    [Id(6)] public int Minutes { get; init; }

    /// <summary>
    /// Threshold on a minute statistic only: the condition compares the statistic minus this outside metric of the
    /// sensor's location, as joined into the minute (e.g. inside temperature − outside temperature &gt; 10); a minute
    /// without that outside value leaves the condition as it was.
    /// </summary>
    [Id(7)] public string? OutsideMetric { get; init; }

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
[GenerateSerializer, Immutable, Alias("oiot.ControlAction")]
public sealed record ControlAction
{
    [Id(0)] public required string Command { get; init; }
    [Id(1)] public Dictionary<string, string>? Parameters { get; init; }

    /// <summary>The device to command; null means the sensor the alert is about.</summary>
    [Id(2)] public string? DeviceId { get; init; }
}

/// <summary>
/// The rule definitions a partition knows, as of its position in the log. Immutable: Orleans passes it to the sensor
/// grains of the partition's silo by reference, and serializes it as its list of rules for other silos.
/// <see cref="Stamp"/> identifies the content (rule ids, versions and enabled flags), so a grain sees that a catalog is
/// the one it already applied without comparing the rules.
/// </summary>
[Immutable]
public sealed class RuleCatalog
{
    public static readonly RuleCatalog Empty = new(ImmutableSortedDictionary<string, RuleDefinition>.Empty.WithComparers(StringComparer.Ordinal));

    private readonly ImmutableSortedDictionary<string, RuleDefinition> _rules;
    private readonly RuleDefinition[] _enabled;

    private RuleCatalog(ImmutableSortedDictionary<string, RuleDefinition> rules)
    {
        _rules = rules;
        _enabled = rules.Values.Where(r => r.Enabled).ToArray();
        Stamp = StampOf(rules.Values);
    }

    public IEnumerable<RuleDefinition> All => _rules.Values;

    public int Count => _rules.Count;

    /// <summary>Identifies the catalog's content: equal for catalogs with the same rule ids, versions and enabled flags.</summary>
    public ulong Stamp { get; }

    /// <summary>Enabled rules in id order (a stable order, so evaluation order is deterministic).</summary>
    public ReadOnlySpan<RuleDefinition> Enabled => _enabled;

    public RuleDefinition? Find(string ruleId) => _rules.TryGetValue(ruleId, out var rule) ? rule : null;

    public RuleCatalog With(RuleDefinition rule) => new(_rules.SetItem(rule.Id, rule));

    public RuleCatalog Without(string ruleId) => _rules.ContainsKey(ruleId) ? new(_rules.Remove(ruleId)) : this;

    public static RuleCatalog From(IEnumerable<RuleDefinition> rules) =>
        new(rules.Aggregate(Empty._rules, (d, r) => d.SetItem(r.Id, r)));

    /// <summary>FNV-1a 64 over each rule's id, version and enabled flag, in id order.</summary>
    private static ulong StampOf(IEnumerable<RuleDefinition> rules)
    {
        var hash = 14695981039346656037UL;
        foreach (var rule in rules)
        {
            foreach (var c in rule.Id)
            {
                hash = (hash ^ c) * 1099511628211UL;
            }
            hash = (hash ^ 1) * 1099511628211UL;
            hash = (hash ^ (ulong)rule.Version) * 1099511628211UL;
            hash = (hash ^ (rule.Enabled ? 2UL : 3UL)) * 1099511628211UL;
        }
        return hash;
    }
}

/// <summary>How a <see cref="RuleCatalog"/> travels to another silo: its rules.</summary>
[GenerateSerializer, Immutable, Alias("oiot.RuleCatalog")]
public readonly record struct RuleCatalogSurrogate([property: Id(0)] RuleDefinition[] Rules);

[RegisterConverter]
public sealed class RuleCatalogConverter : IConverter<RuleCatalog, RuleCatalogSurrogate>
{
    public RuleCatalog ConvertFromSurrogate(in RuleCatalogSurrogate surrogate) => RuleCatalog.From(surrogate.Rules ?? []);

    public RuleCatalogSurrogate ConvertToSurrogate(in RuleCatalog value) => new(value.All.ToArray());
}
