using System.Collections.Immutable;
using System.Text.Json;
using Api.Rules;
using Grains.Abstractions;

namespace Api.Tests;

public sealed class RuleValidatorTests
{
    private const string SampleJson = """
        {"id":"hot-garden","name":"Too hot in the garden","enabled":true,"severity":"major",
         "target":{"kind":"location","location":"garden"},
         "condition":{"kind":"threshold","metric":"temperature","on":"raw","operator":">","value":30,"forMinutes":2},
         "cooldownSeconds":60,
         "controlAction":{"command":"fan","parameters":{"speed":"high"},"deviceId":null}}
        """;

    private static readonly RuleDefinition _sampleRule = new()
    {
        Id = "hot-garden",
        Name = "Too hot in the garden",
        Enabled = true,
        Severity = Severity.Major,
        Target = new RuleTarget { Kind = TargetKind.Location, Location = "garden" },
        Condition = new RuleCondition
        {
            Kind = ConditionKind.Threshold,
            Metric = "temperature",
            Source = ConditionSource.Raw,
            Operator = ComparisonOperator.Greater,
            Value = 30,
            ForMinutes = 2,
        },
        CooldownSeconds = 60,
        ControlAction = new ControlAction { Command = "fan", Parameters = new() { ["speed"] = "high" } },
        Version = 7,
    };

    /// <summary>A minimal valid request: threshold on a location.</summary>
    private static RuleRequest Valid() => new()
    {
        Name = "Too hot",
        Severity = "major",
        Target = new RuleTargetDto { Kind = "location", Location = "garden" },
        Condition = new RuleConditionDto { Kind = "threshold", Metric = "temperature", Operator = ">", Value = 30 },
    };

    private static readonly RuleTargetDto _sensors = new() { Kind = "sensors", SensorIds = ["a", "b"] };
    private static readonly RuleConditionDto _offline = new() { Kind = "offline", Minutes = 5 };

    // ---- valid rules -------------------------------------------------------------------------

    [Fact]
    public void Sample_rule_maps_to_exact_definition()
    {
        var request = Deserialize(SampleJson);

        var rule = Create(request, null, 7);

        AssertSameRule(_sampleRule, rule);
    }

    [Fact]
    public void Minimal_rule_gets_defaults_and_an_id_from_the_name()
    {
        var rule = Create(Valid(), null, 1);

        AssertSameRule(new RuleDefinition
        {
            Id = "too-hot",
            Name = "Too hot",
            Enabled = true,
            Severity = Severity.Major,
            Target = new RuleTarget { Kind = TargetKind.Location, Location = "garden" },
            Condition = new RuleCondition
            {
                Kind = ConditionKind.Threshold,
                Metric = "temperature",
                Source = ConditionSource.Raw,
                Operator = ComparisonOperator.Greater,
                Value = 30,
                ForMinutes = 0,
            },
            CooldownSeconds = 0,
            ControlAction = null,
            Version = 1,
        }, rule);
    }

    [Fact]
    public void Target_all_maps()
    {
        var rule = Create(Valid() with { Target = new RuleTargetDto { Kind = "all" } });

        AssertSameTarget(new RuleTarget { Kind = TargetKind.All }, rule.Target);
    }

    [Fact]
    public void Target_sensors_maps_in_order()
    {
        var rule = Create(Valid() with { Target = new RuleTargetDto { Kind = "sensors", SensorIds = ["s-2", "dev:1@site.a", "s_1"] } });

        AssertSameTarget(new RuleTarget { Kind = TargetKind.Sensors, SensorIds = ["s-2", "dev:1@site.a", "s_1"] }, rule.Target);
    }

    [Fact]
    public void Target_location_maps()
    {
        var rule = Create(Valid() with { Target = new RuleTargetDto { Kind = "location", Location = "north field" } });

        AssertSameTarget(new RuleTarget { Kind = TargetKind.Location, Location = "north field" }, rule.Target);
    }

    [Fact]
    public void Target_model_maps()
    {
        var rule = Create(Valid() with { Target = new RuleTargetDto { Kind = "model", Model = "HW-MD202" } });

        AssertSameTarget(new RuleTarget { Kind = TargetKind.Model, Model = "HW-MD202" }, rule.Target);
    }

    [Theory]
    [InlineData("raw", ConditionSource.Raw)]
    [InlineData("avg", ConditionSource.Avg)]
    [InlineData("min", ConditionSource.Min)]
    [InlineData("max", ConditionSource.Max)]
    [InlineData("sum", ConditionSource.Sum)]
    [InlineData("count", ConditionSource.Count)]
    [InlineData("last", ConditionSource.Last)]
    [InlineData("AVG", ConditionSource.Avg)]
    public void Threshold_source_maps(string on, ConditionSource expected)
    {
        var rule = Create(Valid() with { Condition = Valid().Condition! with { On = on } });

        Assert.Equal(expected, rule.Condition.Source);
    }

    [Theory]
    [InlineData("==", ComparisonOperator.Equal)]
    [InlineData("!=", ComparisonOperator.NotEqual)]
    [InlineData("<", ComparisonOperator.Less)]
    [InlineData("<=", ComparisonOperator.LessOrEqual)]
    [InlineData(">", ComparisonOperator.Greater)]
    [InlineData(">=", ComparisonOperator.GreaterOrEqual)]
    public void Threshold_operator_maps(string symbol, ComparisonOperator expected)
    {
        var rule = Create(Valid() with { Condition = Valid().Condition! with { Operator = symbol } });

        Assert.Equal(expected, rule.Condition.Operator);
    }

    [Fact]
    public void Threshold_condition_maps()
    {
        var rule = Create(Valid() with
        {
            Condition = new RuleConditionDto { Kind = "threshold", Metric = "hum", On = "avg", Operator = "<=", Value = -2.5, ForMinutes = 1440 },
        });

        Assert.Equal(new RuleCondition
        {
            Kind = ConditionKind.Threshold,
            Metric = "hum",
            Source = ConditionSource.Avg,
            Operator = ComparisonOperator.LessOrEqual,
            Value = -2.5,
            ForMinutes = 1440,
        }, rule.Condition);
    }

    [Fact]
    public void Offline_condition_maps()
    {
        var rule = Create(Valid() with { Condition = new RuleConditionDto { Kind = "offline", Minutes = 10080 } });

        Assert.Equal(new RuleCondition { Kind = ConditionKind.Offline, Minutes = 10080 }, rule.Condition);
    }

    [Theory]
    [InlineData("critical", Severity.Critical)]
    [InlineData("major", Severity.Major)]
    [InlineData("minor", Severity.Minor)]
    [InlineData("warning", Severity.Warning)]
    [InlineData("info", Severity.Info)]
    [InlineData("Critical", Severity.Critical)]
    public void Severity_maps(string text, Severity expected)
    {
        Assert.Equal(expected, Create(Valid() with { Severity = text }).Severity);
    }

    [Fact]
    public void Disabled_rule_with_cooldown_and_control_action_maps()
    {
        var rule = Create(Valid() with
        {
            Enabled = false,
            CooldownSeconds = 86400,
            ControlAction = new ControlActionDto { Command = "valve", DeviceId = "pump:7" },
        });

        Assert.False(rule.Enabled);
        Assert.Equal(86400, rule.CooldownSeconds);
        Assert.Equal(new ControlAction { Command = "valve", Parameters = null, DeviceId = "pump:7" }, rule.ControlAction);
    }

    // ---- ids ---------------------------------------------------------------------------------

    [Fact]
    public void Post_uses_the_body_id()
    {
        Assert.Equal("my.rule_1", Create(Valid() with { Id = "my.rule_1" }).Id);
    }

    [Fact]
    public void Put_uses_the_route_id()
    {
        Assert.Equal("r1", Create(Valid(), "r1").Id);
    }

    [Fact]
    public void Put_accepts_a_body_id_equal_to_the_route_id()
    {
        Assert.Equal("r1", Create(Valid() with { Id = "r1" }, "r1").Id);
    }

    [Theory]
    [InlineData("Too hot", "too-hot")]
    [InlineData("  --Too   HOT!! in the   Garden (2)--  ", "too-hot-in-the-garden-2")]
    [InlineData("Température > 30°C", "temp-rature-30-c")]
    [InlineData("a_b.c", "a-b-c")]
    public void Post_without_id_derives_a_slug_from_the_name(string name, string expectedId)
    {
        Assert.Equal(expectedId, Create(Valid() with { Name = name }).Id);
    }

    [Fact]
    public void Slug_is_cut_to_64_characters_without_a_trailing_dash()
    {
        var name = new string('a', 63) + " bcd";

        var id = Create(Valid() with { Name = name }).Id;

        Assert.Equal(new string('a', 63), id);
    }

    [Fact]
    public void Slug_of_a_long_name_is_64_characters()
    {
        var id = Create(Valid() with { Name = new string('x', 200) }).Id;

        Assert.Equal(new string('x', 64), id);
    }

    [Fact]
    public void Missing_name_without_id_reports_only_the_name()
    {
        AssertErrors(Valid() with { Name = null }, null, ("name", "name is required"));
    }

    // ---- one error per case: exact key and message -------------------------------------------

    private static readonly Dictionary<string, (RuleRequest Request, string? RouteId, string Key, string Message)> _cases = new()
    {
        ["id: no slug from name"] = (Valid() with { Name = "!!! ???" }, null,
            "id", "id cannot be derived from the name (it has no letters or digits); give an id: 1 to 64 characters: letters, digits, '-', '_', '.' (and not '.' or '..')"),
        ["id: empty"] = (Valid() with { Id = "" }, null,
            "id", "id must be 1 to 64 characters: letters, digits, '-', '_', '.' (and not '.' or '..')"),
        ["id: too long"] = (Valid() with { Id = new string('a', 65) }, null,
            "id", "id must be 1 to 64 characters: letters, digits, '-', '_', '.' (and not '.' or '..')"),
        ["id: bad character"] = (Valid() with { Id = "a/b" }, null,
            "id", "id must be 1 to 64 characters: letters, digits, '-', '_', '.' (and not '.' or '..')"),
        ["id: dot-dot"] = (Valid() with { Id = ".." }, null,
            "id", "id must be 1 to 64 characters: letters, digits, '-', '_', '.' (and not '.' or '..')"),
        ["id: bad route id"] = (Valid(), "a b",
            "id", "id must be 1 to 64 characters: letters, digits, '-', '_', '.' (and not '.' or '..')"),
        ["id: body differs from route"] = (Valid() with { Id = "x" }, "y",
            "id", "id in the body (x) differs from the id in the URL (y)"),
        ["name: missing"] = (Valid() with { Name = null, Id = "r" }, null, "name", "name is required"),
        ["name: empty"] = (Valid() with { Name = "", Id = "r" }, null, "name", "name must not be empty or whitespace"),
        ["name: whitespace"] = (Valid() with { Name = " \t ", Id = "r" }, null, "name", "name must not be empty or whitespace"),
        ["name: too long"] = (Valid() with { Name = new string('n', 201) }, null, "name", "name must be at most 200 characters"),
        ["severity: missing"] = (Valid() with { Severity = null }, null, "severity", "severity is required"),
        ["severity: unknown"] = (Valid() with { Severity = "huge" }, null,
            "severity", "severity must be one of: critical, major, minor, warning, info"),
        ["severity: number"] = (Valid() with { Severity = "1" }, null,
            "severity", "severity must be one of: critical, major, minor, warning, info"),
        ["target: missing"] = (Valid() with { Target = null }, null, "target", "target is required"),
        ["target.kind: missing"] = (Valid() with { Target = new RuleTargetDto() }, null, "target.kind", "kind is required"),
        ["target.kind: unknown"] = (Valid() with { Target = new RuleTargetDto { Kind = "everything" } }, null,
            "target.kind", "kind must be one of: all, sensors, location, model"),
        ["target.sensorIds: missing"] = (Valid() with { Target = new RuleTargetDto { Kind = "sensors" } }, null,
            "target.sensorIds", "sensorIds is required when kind is sensors"),
        ["target.sensorIds: empty"] = (Valid() with { Target = new RuleTargetDto { Kind = "sensors", SensorIds = [] } }, null,
            "target.sensorIds", "sensorIds must contain at least one sensor id"),
        ["target.sensorIds: too many"] = (Valid() with { Target = new RuleTargetDto { Kind = "sensors", SensorIds = Enumerable.Range(0, 1001).Select(i => (string?)$"s{i}").ToArray() } }, null,
            "target.sensorIds", "sensorIds must contain at most 1000 sensor ids"),
        ["target.sensorIds[2]: bad character"] = (Valid() with { Target = new RuleTargetDto { Kind = "sensors", SensorIds = ["a", "b", "c d"] } }, null,
            "target.sensorIds[2]", "sensorIds[2] must be a sensor id of 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"),
        ["target.sensorIds[1]: null"] = (Valid() with { Target = new RuleTargetDto { Kind = "sensors", SensorIds = ["a", null] } }, null,
            "target.sensorIds[1]", "sensorIds[1] must be a sensor id of 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"),
        ["target.sensorIds[0]: too long"] = (Valid() with { Target = new RuleTargetDto { Kind = "sensors", SensorIds = [new string('s', 129)] } }, null,
            "target.sensorIds[0]", "sensorIds[0] must be a sensor id of 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"),
        ["target.sensorIds[2]: duplicate"] = (Valid() with { Target = new RuleTargetDto { Kind = "sensors", SensorIds = ["a", "b", "a"] } }, null,
            "target.sensorIds[2]", "sensorIds[2] repeats 'a' (already at index 0)"),
        ["target.location: missing"] = (Valid() with { Target = new RuleTargetDto { Kind = "location" } }, null,
            "target.location", "location is required when kind is location"),
        ["target.location: blank"] = (Valid() with { Target = new RuleTargetDto { Kind = "location", Location = " " } }, null,
            "target.location", "location must not be empty or whitespace"),
        ["target.location: too long"] = (Valid() with { Target = new RuleTargetDto { Kind = "location", Location = new string('l', 129) } }, null,
            "target.location", "location must be at most 128 characters"),
        ["target.model: missing"] = (Valid() with { Target = new RuleTargetDto { Kind = "model" } }, null,
            "target.model", "model is required when kind is model"),
        ["target.model: empty"] = (Valid() with { Target = new RuleTargetDto { Kind = "model", Model = "" } }, null,
            "target.model", "model must not be empty or whitespace"),
        ["target.model: too long"] = (Valid() with { Target = new RuleTargetDto { Kind = "model", Model = new string('m', 129) } }, null,
            "target.model", "model must be at most 128 characters"),
        ["target.location: with kind all"] = (Valid() with { Target = new RuleTargetDto { Kind = "all", Location = "garden" } }, null,
            "target.location", "location is only allowed when kind is location"),
        ["target.sensorIds: with kind location"] = (Valid() with { Target = new RuleTargetDto { Kind = "location", Location = "g", SensorIds = ["a"] } }, null,
            "target.sensorIds", "sensorIds is only allowed when kind is sensors"),
        ["target.model: with kind sensors"] = (Valid() with { Target = _sensors with { Model = "m" } }, null,
            "target.model", "model is only allowed when kind is model"),
        ["condition: missing"] = (Valid() with { Condition = null }, null, "condition", "condition is required"),
        ["condition.kind: missing"] = (Valid() with { Condition = new RuleConditionDto() }, null, "condition.kind", "kind is required"),
        ["condition.kind: unknown"] = (Valid() with { Condition = new RuleConditionDto { Kind = "rate" } }, null,
            "condition.kind", "kind must be one of: threshold, offline"),
        ["condition.metric: missing"] = (Valid() with { Condition = Valid().Condition! with { Metric = null } }, null,
            "condition.metric", "metric is required when kind is threshold"),
        ["condition.metric: whitespace"] = (Valid() with { Condition = Valid().Condition! with { Metric = "  " } }, null,
            "condition.metric", "metric must not be empty or whitespace"),
        ["condition.metric: too long"] = (Valid() with { Condition = Valid().Condition! with { Metric = new string('m', 65) } }, null,
            "condition.metric", "metric must be at most 64 characters"),
        ["condition.on: unknown"] = (Valid() with { Condition = Valid().Condition! with { On = "median" } }, null,
            "condition.on", "on must be one of: raw, avg, min, max, sum, count, last"),
        ["condition.operator: missing"] = (Valid() with { Condition = Valid().Condition! with { Operator = null } }, null,
            "condition.operator", "operator is required when kind is threshold"),
        ["condition.operator: unknown"] = (Valid() with { Condition = Valid().Condition! with { Operator = "=>" } }, null,
            "condition.operator", "operator must be one of: ==, !=, <, <=, >, >="),
        ["condition.value: missing"] = (Valid() with { Condition = Valid().Condition! with { Value = null } }, null,
            "condition.value", "value is required when kind is threshold"),
        ["condition.value: NaN"] = (Valid() with { Condition = Valid().Condition! with { Value = double.NaN } }, null,
            "condition.value", "value must be a finite number"),
        ["condition.value: infinity"] = (Valid() with { Condition = Valid().Condition! with { Value = double.NegativeInfinity } }, null,
            "condition.value", "value must be a finite number"),
        ["condition.forMinutes: negative"] = (Valid() with { Condition = Valid().Condition! with { ForMinutes = -1 } }, null,
            "condition.forMinutes", "forMinutes must be between 0 and 1440"),
        ["condition.forMinutes: too big"] = (Valid() with { Condition = Valid().Condition! with { ForMinutes = 1441 } }, null,
            "condition.forMinutes", "forMinutes must be between 0 and 1440"),
        ["condition.minutes: with threshold"] = (Valid() with { Condition = Valid().Condition! with { Minutes = 5 } }, null,
            "condition.minutes", "minutes is only allowed when kind is offline"),
        ["condition.minutes: missing"] = (Valid() with { Condition = new RuleConditionDto { Kind = "offline" } }, null,
            "condition.minutes", "minutes is required when kind is offline"),
        ["condition.minutes: zero"] = (Valid() with { Condition = _offline with { Minutes = 0 } }, null,
            "condition.minutes", "minutes must be between 1 and 10080"),
        ["condition.minutes: too big"] = (Valid() with { Condition = _offline with { Minutes = 10081 } }, null,
            "condition.minutes", "minutes must be between 1 and 10080"),
        ["condition.metric: with offline"] = (Valid() with { Condition = _offline with { Metric = "t" } }, null,
            "condition.metric", "metric is only allowed when kind is threshold"),
        ["condition.on: with offline"] = (Valid() with { Condition = _offline with { On = "raw" } }, null,
            "condition.on", "on is only allowed when kind is threshold"),
        ["condition.operator: with offline"] = (Valid() with { Condition = _offline with { Operator = ">" } }, null,
            "condition.operator", "operator is only allowed when kind is threshold"),
        ["condition.value: with offline"] = (Valid() with { Condition = _offline with { Value = 1 } }, null,
            "condition.value", "value is only allowed when kind is threshold"),
        ["condition.forMinutes: with offline"] = (Valid() with { Condition = _offline with { ForMinutes = 0 } }, null,
            "condition.forMinutes", "forMinutes is only allowed when kind is threshold"),
        ["cooldownSeconds: negative"] = (Valid() with { CooldownSeconds = -1 }, null,
            "cooldownSeconds", "cooldownSeconds must be between 0 and 86400"),
        ["cooldownSeconds: too big"] = (Valid() with { CooldownSeconds = 86401 }, null,
            "cooldownSeconds", "cooldownSeconds must be between 0 and 86400"),
        ["controlAction.command: missing"] = (Valid() with { ControlAction = new ControlActionDto() }, null,
            "controlAction.command", "command is required"),
        ["controlAction.command: empty"] = (Valid() with { ControlAction = new ControlActionDto { Command = "" } }, null,
            "controlAction.command", "command must not be empty or whitespace"),
        ["controlAction.command: too long"] = (Valid() with { ControlAction = new ControlActionDto { Command = new string('c', 65) } }, null,
            "controlAction.command", "command must be at most 64 characters"),
        ["controlAction.parameters: too many"] = (Valid() with { ControlAction = new ControlActionDto { Command = "c", Parameters = Enumerable.Range(0, 21).ToDictionary(i => $"p{i}", i => (string?)"v") } }, null,
            "controlAction.parameters", "parameters must have at most 20 entries"),
        ["controlAction.parameters: empty name"] = (Valid() with { ControlAction = new ControlActionDto { Command = "c", Parameters = new Dictionary<string, string?> { [""] = "v" } } }, null,
            "controlAction.parameters", "parameter names must not be empty"),
        ["controlAction.parameters.x: name too long"] = (Valid() with { ControlAction = new ControlActionDto { Command = "c", Parameters = new Dictionary<string, string?> { [new string('k', 65)] = "v" } } }, null,
            "controlAction.parameters." + new string('k', 65), "parameter names must be at most 64 characters"),
        ["controlAction.parameters.x: null value"] = (Valid() with { ControlAction = new ControlActionDto { Command = "c", Parameters = new Dictionary<string, string?> { ["x"] = null } } }, null,
            "controlAction.parameters.x", "parameter 'x' must have a string value, not null"),
        ["controlAction.parameters.x: value too long"] = (Valid() with { ControlAction = new ControlActionDto { Command = "c", Parameters = new Dictionary<string, string?> { ["x"] = new string('v', 257) } } }, null,
            "controlAction.parameters.x", "parameter 'x' must be at most 256 characters"),
        ["controlAction.deviceId: bad"] = (Valid() with { ControlAction = new ControlActionDto { Command = "c", DeviceId = "a b" } }, null,
            "controlAction.deviceId", "deviceId must be a sensor id of 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"),
    };

    public static TheoryData<string> CaseNames => new(_cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Invalid_field_reports_exactly_its_key_and_message(string caseName)
    {
        var (request, routeId, key, message) = _cases[caseName];

        AssertErrors(request, routeId, (key, message));
    }

    [Fact]
    public void Boundary_values_are_accepted()
    {
        var rule = Create(Valid() with
        {
            Id = new string('i', 64),
            Name = new string('n', 200),
            Target = new RuleTargetDto
            {
                Kind = "sensors",
                SensorIds = [new string('s', 128), .. Enumerable.Range(0, 999).Select(i => (string?)$"s{i}")],
            },
            Condition = Valid().Condition! with { Metric = new string('m', 64), ForMinutes = 0, Value = double.MaxValue },
            CooldownSeconds = 0,
            ControlAction = new ControlActionDto
            {
                Command = new string('c', 64),
                Parameters = Enumerable.Range(0, 20).ToDictionary(i => i == 0 ? new string('k', 64) : $"p{i}", i => (string?)new string('v', 256)),
                DeviceId = new string('d', 128),
            },
        });

        Assert.Equal(1000, rule.Target.SensorIds!.Value.Length);
        Assert.Equal(20, rule.ControlAction!.Parameters!.Count);
    }

    [Fact]
    public void Several_errors_are_all_reported()
    {
        var request = new RuleRequest
        {
            Id = "bad id",
            Name = " ",
            Severity = "huge",
            Target = new RuleTargetDto { Kind = "sensors", SensorIds = ["ok", "", "ok"], Location = "garden" },
            Condition = new RuleConditionDto { Kind = "threshold", On = "median", Value = double.PositiveInfinity, ForMinutes = 2000, Minutes = 3 },
            CooldownSeconds = -5,
            ControlAction = new ControlActionDto { Parameters = new Dictionary<string, string?> { ["x"] = null }, DeviceId = "" },
        };

        AssertErrors(request, null,
            ("name", "name must not be empty or whitespace"),
            ("id", "id must be 1 to 64 characters: letters, digits, '-', '_', '.' (and not '.' or '..')"),
            ("severity", "severity must be one of: critical, major, minor, warning, info"),
            ("target.sensorIds[1]", "sensorIds[1] must be a sensor id of 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"),
            ("target.sensorIds[2]", "sensorIds[2] repeats 'ok' (already at index 0)"),
            ("target.location", "location is only allowed when kind is location"),
            ("condition.metric", "metric is required when kind is threshold"),
            ("condition.on", "on must be one of: raw, avg, min, max, sum, count, last"),
            ("condition.operator", "operator is required when kind is threshold"),
            ("condition.value", "value must be a finite number"),
            ("condition.forMinutes", "forMinutes must be between 0 and 1440"),
            ("condition.minutes", "minutes is only allowed when kind is offline"),
            ("cooldownSeconds", "cooldownSeconds must be between 0 and 86400"),
            ("controlAction.command", "command is required"),
            ("controlAction.parameters.x", "parameter 'x' must have a string value, not null"),
            ("controlAction.deviceId", "deviceId must be a sensor id of 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"));
    }

    [Fact]
    public void Failed_validation_returns_no_rule()
    {
        Assert.False(RuleValidator.TryCreate(new RuleRequest(), null, 1, out var rule, out var errors));
        Assert.Null(rule);
        Assert.Equal(["condition", "name", "severity", "target"], errors.Keys.Order(StringComparer.Ordinal));
    }

    // ---- responses and JSON ------------------------------------------------------------------

    [Fact]
    public void ToResponse_maps_every_field()
    {
        var response = RuleValidator.ToResponse(_sampleRule);

        Assert.Equal("hot-garden", response.Id);
        Assert.Equal("Too hot in the garden", response.Name);
        Assert.True(response.Enabled);
        Assert.Equal("major", response.Severity);
        Assert.Equal(new RuleTargetDto { Kind = "location", Location = "garden" }, response.Target);
        Assert.Equal(new RuleConditionDto { Kind = "threshold", Metric = "temperature", On = "raw", Operator = ">", Value = 30, ForMinutes = 2 }, response.Condition);
        Assert.Equal(60, response.CooldownSeconds);
        Assert.Equal("fan", response.ControlAction!.Command);
        Assert.Equal(new Dictionary<string, string?> { ["speed"] = "high" }, response.ControlAction.Parameters);
        Assert.Null(response.ControlAction.DeviceId);
        Assert.Equal(7, response.Version);
    }

    [Fact]
    public void ToResponse_serializes_to_the_documented_shape()
    {
        var json = JsonSerializer.Serialize(RuleValidator.ToResponse(_sampleRule), RulesJsonContext.Default.RuleResponse);

        Assert.Equal(
            """{"id":"hot-garden","name":"Too hot in the garden","enabled":true,"severity":"major","target":{"kind":"location","location":"garden"},"condition":{"kind":"threshold","metric":"temperature","on":"raw","operator":"\u003E","value":30,"forMinutes":2},"cooldownSeconds":60,"controlAction":{"command":"fan","parameters":{"speed":"high"}},"version":7}""",
            json);
    }

    public static TheoryData<string> RoundTripRules => new(["sample", "sensors-offline", "all-min", "model-count"]);

    [Theory]
    [MemberData(nameof(RoundTripRules))]
    public void Response_json_read_back_as_a_request_gives_the_same_rule(string which)
    {
        var rule = which switch
        {
            "sample" => _sampleRule,
            "sensors-offline" => _sampleRule with
            {
                Enabled = false,
                Severity = Severity.Critical,
                Target = new RuleTarget { Kind = TargetKind.Sensors, SensorIds = ["a", "b:c"] },
                Condition = new RuleCondition { Kind = ConditionKind.Offline, Minutes = 15 },
                ControlAction = new ControlAction { Command = "reboot", DeviceId = "gw-1" },
            },
            "all-min" => _sampleRule with
            {
                Severity = Severity.Info,
                Target = new RuleTarget { Kind = TargetKind.All },
                Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "t", Source = ConditionSource.Min, Operator = ComparisonOperator.NotEqual, Value = -0.125 },
                CooldownSeconds = 0,
                ControlAction = null,
            },
            _ => _sampleRule with
            {
                Severity = Severity.Warning,
                Target = new RuleTarget { Kind = TargetKind.Model, Model = "HW-MD202" },
                Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "n", Source = ConditionSource.Count, Operator = ComparisonOperator.LessOrEqual, Value = 3, ForMinutes = 5 },
            },
        };

        var json = JsonSerializer.Serialize(RuleValidator.ToResponse(rule), RulesJsonContext.Default.RuleResponse);
        var request = Deserialize(json);

        AssertSameRule(rule, Create(request, rule.Id, rule.Version));
    }

    [Fact]
    public void Sample_json_deserializes_to_the_expected_request()
    {
        var request = Deserialize(SampleJson);

        Assert.Equal("hot-garden", request.Id);
        Assert.Equal("Too hot in the garden", request.Name);
        Assert.True(request.Enabled);
        Assert.Equal("major", request.Severity);
        Assert.Equal(new RuleTargetDto { Kind = "location", Location = "garden" }, request.Target);
        Assert.Equal(new RuleConditionDto { Kind = "threshold", Metric = "temperature", On = "raw", Operator = ">", Value = 30, ForMinutes = 2 }, request.Condition);
        Assert.Equal(60, request.CooldownSeconds);
        Assert.NotNull(request.ControlAction);
        Assert.Equal("fan", request.ControlAction.Command);
        Assert.Equal(new Dictionary<string, string?> { ["speed"] = "high" }, request.ControlAction.Parameters);
        Assert.Null(request.ControlAction.DeviceId);
    }

    [Fact]
    public void Sensor_ids_deserialize_in_order()
    {
        var request = Deserialize("""{"target":{"kind":"sensors","sensorIds":["b","a",null]}}""");

        Assert.Equal(["b", "a", null], request.Target!.SensorIds!);
    }

    [Fact]
    public void Unknown_enum_text_is_a_validation_error_not_a_json_error()
    {
        var request = Deserialize("""{"name":"n","severity":"huge","target":{"kind":"all"},"condition":{"kind":"offline","minutes":5}}""");

        AssertErrors(request, null, ("severity", "severity must be one of: critical, major, minor, warning, info"));
    }

    [Fact]
    public void Json_number_too_large_for_a_double_is_reported_as_not_finite()
    {
        var request = Deserialize("""{"name":"n","severity":"info","target":{"kind":"all"},"condition":{"kind":"threshold","metric":"t","operator":">","value":1e400}}""");

        AssertErrors(request, null, ("condition.value", "value must be a finite number"));
    }

    [Fact]
    public void Empty_object_deserializes_and_reports_missing_fields()
    {
        var request = Deserialize("{}");

        AssertErrors(request, null,
            ("name", "name is required"),
            ("severity", "severity is required"),
            ("target", "target is required"),
            ("condition", "condition is required"));
    }

    [Theory]
    [InlineData("""{"name":"a","name":"b"}""")]
    [InlineData("""{"condition":{"value":1,"value":2}}""")]
    public void Duplicate_properties_are_rejected(string json)
    {
        Assert.ThrowsAny<JsonException>(() => Deserialize(json));
    }

    // ---- helpers -----------------------------------------------------------------------------

    private static RuleRequest Deserialize(string json) =>
        JsonSerializer.Deserialize(json, RulesJsonContext.Default.RuleRequest) ?? throw new InvalidOperationException("null request");

    private static RuleDefinition Create(RuleRequest request, string? routeId = null, long version = 1)
    {
        var ok = RuleValidator.TryCreate(request, routeId, version, out var rule, out var errors);

        Assert.True(ok, "unexpected errors: " + string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" | ", e.Value)}")));
        Assert.Empty(errors);
        return rule!;
    }

    [Fact]
    public void Control_characters_and_lone_surrogates_in_any_text_are_refused_with_the_field_named()
    {
        var request = Valid() with
        {
            Name = "Hot\u0000",
            Condition = new RuleConditionDto { Kind = "threshold", Metric = "te\nmp", Operator = ">", Value = 30 },
            ControlAction = new ControlActionDto
            {
                Command = "fan\u0007",
                Parameters = new Dictionary<string, string?> { ["sp\u0001eed"] = "x", ["mode"] = "a\u007fb", ["label"] = "🌡 é 中" },
            },
        };

        AssertErrors(request, "r1",
            ("name", "name contains the control character U+0000"),
            ("condition.metric", "metric contains the control character U+000A"),
            ("controlAction.command", "command contains the control character U+0007"),
            ("controlAction.parameters", "a parameter name contains the control character U+0001"),
            ("controlAction.parameters.mode", "parameter 'mode' contains the control character U+007F"));
        AssertErrors(Valid() with { Name = "x\ud800y" }, "r1", ("name", "name contains the lone surrogate U+D800"));

        // Any other Unicode text is kept as sent.
        var rule = Create(Valid() with { Name = "Chaud 🌡 ☀ 中" }, "r1", 1);
        Assert.Equal("Chaud 🌡 ☀ 中", rule.Name);
    }

    private static void AssertErrors(RuleRequest request, string? routeId, params (string Key, string Message)[] expected)
    {
        var ok = RuleValidator.TryCreate(request, routeId, 1, out var rule, out var errors);

        Assert.False(ok);
        Assert.Null(rule);
        var expectedDictionary = expected
            .GroupBy(e => e.Key)
            .ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray());
        Assert.Equal(
            expectedDictionary.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key}: {string.Join(" | ", e.Value)}"),
            errors.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key}: {string.Join(" | ", e.Value)}"));
    }

    /// <summary>
    /// Record equality compares ImmutableArray and Dictionary by reference, so the collections are
    /// compared by content and then blanked out before comparing the rest of the record.
    /// </summary>
    private static void AssertSameRule(RuleDefinition expected, RuleDefinition actual)
    {
        AssertSameTarget(expected.Target, actual.Target);
        Assert.Equal(expected.ControlAction?.Parameters, actual.ControlAction?.Parameters);
        Assert.Equal(Blank(expected), Blank(actual));

        static RuleDefinition Blank(RuleDefinition r) => r with
        {
            Target = r.Target with { SensorIds = null },
            ControlAction = r.ControlAction is null ? null : r.ControlAction with { Parameters = null },
        };
    }

    private static void AssertSameTarget(RuleTarget expected, RuleTarget actual)
    {
        Assert.Equal(expected.SensorIds.HasValue, actual.SensorIds.HasValue);
        if (expected.SensorIds is { } e && actual.SensorIds is { } a)
        {
            Assert.Equal<string>(e, a);
        }

        Assert.Equal(expected with { SensorIds = null }, actual with { SensorIds = null });
    }
}
