using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using Grains.Abstractions;

namespace Api.Rules;

/// <summary>
/// Turns a <see cref="RuleRequest"/> into a validated <see cref="RuleDefinition"/>, or reports every
/// problem keyed by the JSON path of the field (for example "condition.operator" or
/// "target.sensorIds[2]"), in the shape ValidationProblemDetails expects.
/// </summary>
public static class RuleValidator
{
    public const int MaxIdLength = 64;
    public const int MaxNameLength = 200;
    public const int MaxSensorIds = 1000;
    public const int MaxTargetValueLength = 128;
    public const int MaxMetricLength = 64;
    public const int MaxForMinutes = 1440;
    public const int MaxOfflineMinutes = 10080;
    public const int MaxCooldownSeconds = 86400;
    public const int MaxCommandLength = 64;
    public const int MaxParameters = 20;
    public const int MaxParameterNameLength = 64;
    public const int MaxParameterValueLength = 256;

    private static readonly (string Name, Severity Value)[] _severities =
    [
        ("critical", Severity.Critical), ("major", Severity.Major), ("minor", Severity.Minor),
        ("warning", Severity.Warning), ("info", Severity.Info),
    ];

    private static readonly (string Name, TargetKind Value)[] _targetKinds =
    [
        ("all", TargetKind.All), ("sensors", TargetKind.Sensors), ("location", TargetKind.Location), ("model", TargetKind.Model),
    ];

    private static readonly (string Name, ConditionKind Value)[] _conditionKinds =
    [
        ("threshold", ConditionKind.Threshold), ("offline", ConditionKind.Offline),
    ];

    private static readonly (string Name, ConditionSource Value)[] _sources =
    [
        ("raw", ConditionSource.Raw), ("avg", ConditionSource.Avg), ("min", ConditionSource.Min), ("max", ConditionSource.Max),
        ("sum", ConditionSource.Sum), ("count", ConditionSource.Count), ("last", ConditionSource.Last),
    ];

    private static readonly ComparisonOperator[] _operators =
    [
        ComparisonOperator.Equal, ComparisonOperator.NotEqual, ComparisonOperator.Less,
        ComparisonOperator.LessOrEqual, ComparisonOperator.Greater, ComparisonOperator.GreaterOrEqual,
    ];

    private static readonly string _operatorList = string.Join(", ", _operators.Select(RuleCondition.Symbol));

    public static IReadOnlyList<string> SeverityNames { get; } = [.. _severities.Select(s => s.Name)];
    public static IReadOnlyList<string> TargetKindNames { get; } = [.. _targetKinds.Select(s => s.Name)];
    public static IReadOnlyList<string> ConditionKindNames { get; } = [.. _conditionKinds.Select(s => s.Name)];
    public static IReadOnlyList<string> SourceNames { get; } = [.. _sources.Select(s => s.Name)];
    public static IReadOnlyList<string> OperatorSymbols { get; } = [.. _operators.Select(RuleCondition.Symbol)];

    public static bool TryCreate(
        RuleRequest request,
        string? idFromRoute,
        long version,
        [NotNullWhen(true)] out RuleDefinition? rule,
        out Dictionary<string, string[]> errors)
    {
        ArgumentNullException.ThrowIfNull(request);
        var bag = new ErrorBag();

        var name = ValidateName(request.Name, bag);
        var id = ValidateId(request.Id, idFromRoute, name, bag);
        var severity = ParseRequired(request.Severity, "severity", _severities, bag);
        var target = ValidateTarget(request.Target, bag);
        var condition = ValidateCondition(request.Condition, bag);
        var cooldown = request.CooldownSeconds ?? 0;
        if (cooldown is < 0 or > MaxCooldownSeconds)
        {
            bag.Add("cooldownSeconds", $"cooldownSeconds must be between 0 and {MaxCooldownSeconds}");
        }

        var controlAction = ValidateControlAction(request.ControlAction, bag);

        errors = bag.ToDictionary();
        if (errors.Count > 0)
        {
            rule = null;
            return false;
        }

        rule = new RuleDefinition
        {
            Id = id!,
            Name = name!,
            Enabled = request.Enabled ?? true,
            Severity = severity!.Value,
            Target = target!,
            Condition = condition!,
            CooldownSeconds = cooldown,
            ControlAction = controlAction,
            Version = version,
        };
        return true;
    }

    public static RuleResponse ToResponse(RuleDefinition rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var c = rule.Condition;
        return new RuleResponse
        {
            Id = rule.Id,
            Name = rule.Name,
            Enabled = rule.Enabled,
            Severity = NameOf(rule.Severity, _severities),
            Target = new RuleTargetDto
            {
                Kind = NameOf(rule.Target.Kind, _targetKinds),
                SensorIds = rule.Target.SensorIds is { } ids ? ids.ToArray() : null,
                Location = rule.Target.Location,
                Model = rule.Target.Model,
            },
            Condition = c.Kind == ConditionKind.Threshold
                ? new RuleConditionDto
                {
                    Kind = NameOf(c.Kind, _conditionKinds),
                    Metric = c.Metric,
                    On = NameOf(c.Source, _sources),
                    Operator = RuleCondition.Symbol(c.Operator),
                    Value = c.Value,
                    ForMinutes = c.ForMinutes,
                    OutsideMetric = c.OutsideMetric,
                }
                : new RuleConditionDto
                {
                    Kind = NameOf(c.Kind, _conditionKinds),
                    Minutes = c.Minutes,
                },
            CooldownSeconds = rule.CooldownSeconds,
            ControlAction = rule.ControlAction is { } a
                ? new ControlActionDto
                {
                    Command = a.Command,
                    Parameters = a.Parameters?.ToDictionary(p => p.Key, p => (string?)p.Value, StringComparer.Ordinal),
                    DeviceId = a.DeviceId,
                }
                : null,
            Version = rule.Version,
        };
    }

    /// <summary>
    /// The id POST derives from a name when the body has none: lower-case ASCII letters and digits,
    /// every other run of characters becomes one '-', no leading or trailing '-', at most 64 characters.
    /// Empty when the name has no ASCII letter or digit.
    /// </summary>
    public static string Slugify(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var sb = new StringBuilder(Math.Min(name.Length, MaxIdLength));
        foreach (var ch in name)
        {
            if (sb.Length == MaxIdLength)
            {
                break;
            }

            if (char.IsAsciiLetterOrDigit(ch))
            {
                sb.Append(char.ToLowerInvariant(ch));
            }
            else if (sb.Length > 0 && sb[^1] != '-')
            {
                sb.Append('-');
            }
        }

        while (sb.Length > 0 && sb[^1] == '-')
        {
            sb.Length--;
        }

        return sb.ToString();
    }

    /// <summary>1..64 ASCII letters, digits, '-', '_', '.'; not "." or "..", which cannot appear as a URL segment.</summary>
    public static bool IsValidRuleId(string? id) =>
        id is { Length: > 0 and <= MaxIdLength } && id is not ("." or "..") && id.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.');

    /// <summary>1..128 ASCII letters, digits, '-', '_', '.', ':', '@'.</summary>

    private const string RuleIdSyntax = "1 to 64 characters: letters, digits, '-', '_', '.' (and not '.' or '..')";

    private static string? ValidateName(string? name, ErrorBag bag)
    {
        if (name is null)
        {
            bag.Add("name", "name is required");
            return null;
        }

        if (string.IsNullOrWhiteSpace(name))
        {
            bag.Add("name", "name must not be empty or whitespace");
            return null;
        }

        if (name.Length > MaxNameLength)
        {
            bag.Add("name", $"name must be at most {MaxNameLength} characters");
            return null;
        }

        if (TextRules.Problem(name) is { } problem)
        {
            bag.Add("name", $"name contains {problem}");
            return null;
        }

        return name;
    }

    private static string? ValidateId(string? bodyId, string? routeId, string? validName, ErrorBag bag)
    {
        if (routeId is not null)
        {
            if (bodyId is not null && !string.Equals(bodyId, routeId, StringComparison.Ordinal))
            {
                bag.Add("id", $"id in the body ({bodyId}) differs from the id in the URL ({routeId})");
                return null;
            }

            return CheckIdSyntax(routeId, bag);
        }

        if (bodyId is not null)
        {
            return CheckIdSyntax(bodyId, bag);
        }

        if (validName is null)
        {
            return null; // the name error says it all; no id can be derived from it
        }

        var slug = Slugify(validName);
        if (slug.Length == 0)
        {
            bag.Add("id", "id cannot be derived from the name (it has no letters or digits); give an id: " + RuleIdSyntax);
            return null;
        }

        return slug;
    }

    private static string? CheckIdSyntax(string id, ErrorBag bag)
    {
        if (IsValidRuleId(id))
        {
            return id;
        }

        bag.Add("id", "id must be " + RuleIdSyntax);
        return null;
    }

    private static RuleTarget? ValidateTarget(RuleTargetDto? dto, ErrorBag bag)
    {
        if (dto is null)
        {
            bag.Add("target", "target is required");
            return null;
        }

        var kind = ParseRequired(dto.Kind, "target.kind", _targetKinds, bag);
        if (kind is null)
        {
            return null;
        }

        var ok = true;
        ImmutableArray<string>? sensorIds = null;
        string? location = null;
        string? model = null;

        if (kind == TargetKind.Sensors)
        {
            sensorIds = ValidateSensorIds(dto.SensorIds, bag);
            ok &= sensorIds is not null;
        }
        else if (dto.SensorIds is not null)
        {
            ok = NotAllowed(bag, "target.sensorIds", "sensorIds", "kind is sensors");
        }

        if (kind == TargetKind.Location)
        {
            location = RequiredText(dto.Location, "target.location", "location", "kind is location", MaxTargetValueLength, bag);
            ok &= location is not null;
        }
        else if (dto.Location is not null)
        {
            ok = NotAllowed(bag, "target.location", "location", "kind is location");
        }

        if (kind == TargetKind.Model)
        {
            model = RequiredText(dto.Model, "target.model", "model", "kind is model", MaxTargetValueLength, bag);
            ok &= model is not null;
        }
        else if (dto.Model is not null)
        {
            ok = NotAllowed(bag, "target.model", "model", "kind is model");
        }

        return ok ? new RuleTarget { Kind = kind.Value, SensorIds = sensorIds, Location = location, Model = model } : null;
    }

    private static ImmutableArray<string>? ValidateSensorIds(IReadOnlyList<string?>? ids, ErrorBag bag)
    {
        const string key = "target.sensorIds";
        if (ids is null)
        {
            bag.Add(key, "sensorIds is required when kind is sensors");
            return null;
        }

        if (ids.Count == 0)
        {
            bag.Add(key, "sensorIds must contain at least one sensor id");
            return null;
        }

        if (ids.Count > MaxSensorIds)
        {
            bag.Add(key, $"sensorIds must contain at most {MaxSensorIds} sensor ids");
            return null;
        }

        var ok = true;
        var firstIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var builder = ImmutableArray.CreateBuilder<string>(ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            var id = ids[i];
            var itemKey = $"{key}[{i}]";
            if (!SensorIds.IsValid(id))
            {
                bag.Add(itemKey, $"sensorIds[{i}] must be a sensor id of " + SensorIds.Syntax);
                ok = false;
            }
            else if (firstIndex.TryGetValue(id!, out var first))
            {
                bag.Add(itemKey, $"sensorIds[{i}] repeats '{id}' (already at index {first})");
                ok = false;
            }
            else
            {
                firstIndex.Add(id!, i);
                builder.Add(id!);
            }
        }

        return ok ? builder.MoveToImmutable() : null;
    }

    private static RuleCondition? ValidateCondition(RuleConditionDto? dto, ErrorBag bag)
    {
        if (dto is null)
        {
            bag.Add("condition", "condition is required");
            return null;
        }

        var kind = ParseRequired(dto.Kind, "condition.kind", _conditionKinds, bag);
        return kind switch
        {
            ConditionKind.Threshold => ValidateThreshold(dto, bag),
            ConditionKind.Offline => ValidateOffline(dto, bag),
            _ => null,
        };
    }

    private static RuleCondition? ValidateThreshold(RuleConditionDto dto, ErrorBag bag)
    {
        const string only = "kind is threshold";
        var ok = true;

        var metric = RequiredText(dto.Metric, "condition.metric", "metric", only, MaxMetricLength, bag);
        ok &= metric is not null;

        var source = ConditionSource.Raw;
        if (dto.On is not null)
        {
            var parsed = Parse(dto.On, "condition.on", _sources, bag);
            ok &= parsed is not null;
            source = parsed ?? source;
        }

        var op = default(ComparisonOperator);
        if (dto.Operator is null)
        {
            ok = Fail(bag, "condition.operator", "operator is required when " + only);
        }
        else if (!RuleCondition.TryParseSymbol(dto.Operator, out op))
        {
            ok = Fail(bag, "condition.operator", "operator must be one of: " + _operatorList);
        }

        if (dto.Value is not { } value)
        {
            value = 0;
            ok = Fail(bag, "condition.value", "value is required when " + only);
        }
        else if (!double.IsFinite(value))
        {
            ok = Fail(bag, "condition.value", "value must be a finite number");
        }

        var forMinutes = dto.ForMinutes ?? 0;
        if (forMinutes is < 0 or > MaxForMinutes)
        {
            ok = Fail(bag, "condition.forMinutes", $"forMinutes must be between 0 and {MaxForMinutes}");
        }

        if (dto.Minutes is not null)
        {
            ok = NotAllowed(bag, "condition.minutes", "minutes", "kind is offline");
        }

        string? outsideMetric = null;
        if (dto.OutsideMetric is not null)
        {
            outsideMetric = RequiredText(dto.OutsideMetric, "condition.outsideMetric", "outsideMetric", only, MaxMetricLength, bag);
            ok &= outsideMetric is not null;
            if (source == ConditionSource.Raw)
            {
                ok = Fail(bag, "condition.outsideMetric",
                    "outsideMetric compares a minute statistic with the outside value joined into the minute: on must be one of "
                    + string.Join(", ", _sources.Where(s => s.Value != ConditionSource.Raw).Select(s => s.Name)));
            }
        }

        return ok
            ? new RuleCondition
            {
                Kind = ConditionKind.Threshold,
                Metric = metric,
                Source = source,
                Operator = op,
                Value = value,
                ForMinutes = forMinutes,
                OutsideMetric = outsideMetric,
            }
            : null;
    }

    private static RuleCondition? ValidateOffline(RuleConditionDto dto, ErrorBag bag)
    {
        const string only = "kind is threshold";
        var ok = true;

        if (dto.Minutes is not { } minutes)
        {
            minutes = 0;
            ok = Fail(bag, "condition.minutes", "minutes is required when kind is offline");
        }
        else if (minutes is < 1 or > MaxOfflineMinutes)
        {
            ok = Fail(bag, "condition.minutes", $"minutes must be between 1 and {MaxOfflineMinutes}");
        }

        if (dto.Metric is not null)
        {
            ok = NotAllowed(bag, "condition.metric", "metric", only);
        }

        if (dto.On is not null)
        {
            ok = NotAllowed(bag, "condition.on", "on", only);
        }

        if (dto.Operator is not null)
        {
            ok = NotAllowed(bag, "condition.operator", "operator", only);
        }

        if (dto.Value is not null)
        {
            ok = NotAllowed(bag, "condition.value", "value", only);
        }

        if (dto.ForMinutes is not null)
        {
            ok = NotAllowed(bag, "condition.forMinutes", "forMinutes", only);
        }

        if (dto.OutsideMetric is not null)
        {
            ok = NotAllowed(bag, "condition.outsideMetric", "outsideMetric", only);
        }

        return ok ? new RuleCondition { Kind = ConditionKind.Offline, Minutes = minutes } : null;
    }

    private static ControlAction? ValidateControlAction(ControlActionDto? dto, ErrorBag bag)
    {
        if (dto is null)
        {
            return null;
        }

        var ok = true;
        string? command = null;
        if (dto.Command is null)
        {
            ok = Fail(bag, "controlAction.command", "command is required");
        }
        else if (string.IsNullOrWhiteSpace(dto.Command))
        {
            ok = Fail(bag, "controlAction.command", "command must not be empty or whitespace");
        }
        else if (dto.Command.Length > MaxCommandLength)
        {
            ok = Fail(bag, "controlAction.command", $"command must be at most {MaxCommandLength} characters");
        }
        else if (TextRules.Problem(dto.Command) is { } commandProblem)
        {
            ok = Fail(bag, "controlAction.command", $"command contains {commandProblem}");
        }
        else
        {
            command = dto.Command;
        }

        Dictionary<string, string>? parameters = null;
        if (dto.Parameters is { } given)
        {
            if (given.Count > MaxParameters)
            {
                ok = Fail(bag, "controlAction.parameters", $"parameters must have at most {MaxParameters} entries");
            }
            else
            {
                parameters = new Dictionary<string, string>(given.Count, StringComparer.Ordinal);
                foreach (var (key, value) in given)
                {
                    if (key.Length == 0)
                    {
                        ok = Fail(bag, "controlAction.parameters", "parameter names must not be empty");
                    }
                    else if (key.Length > MaxParameterNameLength)
                    {
                        ok = Fail(bag, "controlAction.parameters." + key, $"parameter names must be at most {MaxParameterNameLength} characters");
                    }
                    else if (TextRules.Problem(key) is { } keyProblem)
                    {
                        ok = Fail(bag, "controlAction.parameters", $"a parameter name contains {keyProblem}");
                    }
                    else if (value is null)
                    {
                        ok = Fail(bag, "controlAction.parameters." + key, $"parameter '{key}' must have a string value, not null");
                    }
                    else if (value.Length > MaxParameterValueLength)
                    {
                        ok = Fail(bag, "controlAction.parameters." + key, $"parameter '{key}' must be at most {MaxParameterValueLength} characters");
                    }
                    else if (TextRules.Problem(value) is { } valueProblem)
                    {
                        ok = Fail(bag, "controlAction.parameters." + key, $"parameter '{key}' contains {valueProblem}");
                    }
                    else
                    {
                        parameters[key] = value;
                    }
                }
            }
        }

        if (dto.DeviceId is not null && !SensorIds.IsValid(dto.DeviceId))
        {
            ok = Fail(bag, "controlAction.deviceId", "deviceId must be a sensor id of " + SensorIds.Syntax);
        }

        return ok ? new ControlAction { Command = command!, Parameters = parameters, DeviceId = dto.DeviceId } : null;
    }

    /// <summary>A required text field of a particular kind: present, not blank, not too long.</summary>
    private static string? RequiredText(string? text, string key, string field, string when, int maxLength, ErrorBag bag)
    {
        if (text is null)
        {
            bag.Add(key, $"{field} is required when {when}");
            return null;
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            bag.Add(key, $"{field} must not be empty or whitespace");
            return null;
        }

        if (text.Length > maxLength)
        {
            bag.Add(key, $"{field} must be at most {maxLength} characters");
            return null;
        }

        if (TextRules.Problem(text) is { } problem)
        {
            bag.Add(key, $"{field} contains {problem}");
            return null;
        }

        return text;
    }

    private static T? ParseRequired<T>(string? text, string key, (string Name, T Value)[] table, ErrorBag bag)
        where T : struct, Enum
    {
        if (text is null)
        {
            bag.Add(key, $"{LeafName(key)} is required");
            return null;
        }

        return Parse(text, key, table, bag);
    }

    /// <summary>Case-insensitive lookup by name only (unlike Enum.TryParse, no numbers or comma lists).</summary>
    private static T? Parse<T>(string text, string key, (string Name, T Value)[] table, ErrorBag bag)
        where T : struct, Enum
    {
        foreach (var (name, value) in table)
        {
            if (string.Equals(name, text, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        bag.Add(key, $"{LeafName(key)} must be one of: {string.Join(", ", table.Select(e => e.Name))}");
        return null;
    }

    private static string NameOf<T>(T value, (string Name, T Value)[] table)
        where T : struct, Enum
    {
        foreach (var (name, v) in table)
        {
            if (EqualityComparer<T>.Default.Equals(v, value))
            {
                return name;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(value), value, $"Unknown {typeof(T).Name}");
    }

    private static string LeafName(string key) => key[(key.LastIndexOf('.') + 1)..];

    private static bool NotAllowed(ErrorBag bag, string key, string field, string when) =>
        Fail(bag, key, $"{field} is only allowed when {when}");

    private static bool Fail(ErrorBag bag, string key, string message)
    {
        bag.Add(key, message);
        return false;
    }

    private sealed class ErrorBag
    {
        private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

        public void Add(string key, string message)
        {
            if (!_errors.TryGetValue(key, out var list))
            {
                list = [];
                _errors.Add(key, list);
            }

            list.Add(message);
        }

        public Dictionary<string, string[]> ToDictionary() =>
            _errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal);
    }
}
