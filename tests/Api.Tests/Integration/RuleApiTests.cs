using System.Net;
using System.Text;
using System.Text.Json;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>GET/POST /api/v1/rules and GET/PUT/DELETE /api/v1/rules/{id}.</summary>
public sealed class RuleApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    private static object Request(string? id, string sensorId, double value = 50, string severity = "major") => new
    {
        id,
        name = "Humidity low",
        severity,
        target = new { kind = "sensors", sensorIds = new[] { sensorId } },
        condition = new { kind = "threshold", metric = "hum", @operator = "<", value },
    };

    private static object Response(string id, string sensorId, long version, double value = 50, string severity = "major", bool enabled = true,
        object? controlAction = null, int cooldownSeconds = 0) => new
    {
        id,
        name = "Humidity low",
        enabled,
        severity,
        target = new { kind = "sensors", sensorIds = new[] { sensorId } },
        condition = new { kind = "threshold", metric = "hum", on = "raw", @operator = "<", value, forMinutes = 0 },
        cooldownSeconds,
        controlAction,
        version,
    };

    [Fact]
    public async Task Create_Get_List_Update_Delete()
    {
        var id = Ids.New("rule");
        var sensor = Ids.New("s");

        var created = await _operator.PostAsync("/api/v1/rules", Json(Request(id, sensor)));
        var body = await created.ExpectAsync(HttpStatusCode.Created);
        Assert.Equal($"/api/v1/rules/{id}", created.Headers.Location?.OriginalString);
        var version = body.GetProperty("version").GetInt64();
        Assert.True(version >= 1);
        JsonAssert.Equal(Response(id, sensor, version), body);

        JsonAssert.Equal(Response(id, sensor, version), await (await _operator.GetAsync(created.Headers.Location)).ExpectAsync(HttpStatusCode.OK));
        var list = await (await _operator.GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK);
        JsonAssert.Equal(Response(id, sensor, version), Assert.Single(list.GetProperty("items").EnumerateArray(), r => r.GetProperty("id").GetString() == id));

        await (await _operator.PostAsync("/api/v1/rules", Json(Request(id, sensor, value: 10))))
            .ExpectProblemAsync(HttpStatusCode.Conflict, "Rule exists", $"A rule with id '{id}' already exists; use PUT /api/v1/rules/{id} to change it.");

        var update = new
        {
            name = "Humidity low",
            enabled = false,
            severity = "minor",
            target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "threshold", metric = "hum", on = "raw", @operator = "<", value = 40 },
            cooldownSeconds = 30,
            controlAction = new { command = "fan", parameters = new Dictionary<string, string> { ["speed"] = "high" } },
        };
        var updated = await (await _operator.PutAsync($"/api/v1/rules/{id}", Json(update))).ExpectAsync(HttpStatusCode.OK);
        var newVersion = updated.GetProperty("version").GetInt64();
        Assert.True(newVersion > version, $"version {newVersion} after {version}");
        var expected = Response(id, sensor, newVersion, value: 40, severity: "minor", enabled: false, cooldownSeconds: 30,
            controlAction: new { command = "fan", parameters = new Dictionary<string, string> { ["speed"] = "high" } });
        JsonAssert.Equal(expected, updated);
        JsonAssert.Equal(expected, await (await _operator.GetAsync($"/api/v1/rules/{id}")).ExpectAsync(HttpStatusCode.OK));

        await (await _operator.DeleteAsync($"/api/v1/rules/{id}")).ExpectAsync(HttpStatusCode.NoContent);
        await (await _operator.GetAsync($"/api/v1/rules/{id}")).ExpectProblemAsync(HttpStatusCode.NotFound, "Rule not found", $"There is no rule with id '{id}'.");
        await (await _operator.DeleteAsync($"/api/v1/rules/{id}")).ExpectProblemAsync(HttpStatusCode.NotFound, "Rule not found", $"There is no rule with id '{id}'.");
        var after = await (await _operator.GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK);
        Assert.DoesNotContain(after.GetProperty("items").EnumerateArray(), r => r.GetProperty("id").GetString() == id);
    }

    [Fact]
    public async Task Post_WithoutId_DerivesTheIdFromTheName()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var sensor = Ids.New("s");
        var created = await _operator.PostAsync("/api/v1/rules", Json(new
        {
            name = $"Warehouse TEMP high!! {suffix}",
            severity = "critical",
            target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "offline", minutes = 5 },
        }));
        var body = await created.ExpectAsync(HttpStatusCode.Created);
        var id = $"warehouse-temp-high-{suffix}";
        Assert.Equal($"/api/v1/rules/{id}", created.Headers.Location?.OriginalString);
        JsonAssert.Equal(new
        {
            id,
            name = $"Warehouse TEMP high!! {suffix}",
            enabled = true,
            severity = "critical",
            target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "offline", minutes = 5 },
            cooldownSeconds = 0,
            version = body.GetProperty("version").GetInt64(),
        }, body);
    }

    [Fact]
    public async Task Put_UnknownRule_Is404_AndAnIdMismatch_Is400()
    {
        var unknown = Ids.New("nope");
        await (await _operator.PutAsync($"/api/v1/rules/{unknown}", Json(Request(null, "s1"))))
            .ExpectProblemAsync(HttpStatusCode.NotFound, "Rule not found", $"There is no rule with id '{unknown}'.");
        await (await _operator.GetAsync($"/api/v1/rules/{unknown}"))
            .ExpectProblemAsync(HttpStatusCode.NotFound, "Rule not found", $"There is no rule with id '{unknown}'.");

        var id = Ids.New("rule");
        await (await _operator.PostAsync("/api/v1/rules", Json(Request(id, "s1")))).ExpectAsync(HttpStatusCode.Created);
        await (await _operator.PutAsync($"/api/v1/rules/{id}", Json(Request("other-id", "s1"))))
            .ExpectValidationProblemAsync("The rule is not valid", new Dictionary<string, string[]>
            {
                ["id"] = [$"id in the body (other-id) differs from the id in the URL ({id})"],
            });
    }

    [Fact]
    public async Task InvalidRule_Is400_WithAnErrorPerField()
    {
        var response = await _operator.PostAsync("/api/v1/rules", Json("""
            {
              "name": "Broken",
              "severity": "urgent",
              "target": { "kind": "sensors" },
              "condition": { "kind": "threshold", "operator": "=~", "value": 1, "minutes": 3 },
              "cooldownSeconds": -1,
              "controlAction": { "command": " ", "deviceId": "bad id" }
            }
            """));
        await response.ExpectValidationProblemAsync("The rule is not valid", new Dictionary<string, string[]>
        {
            ["severity"] = ["severity must be one of: critical, major, minor, warning, info"],
            ["target.sensorIds"] = ["sensorIds is required when kind is sensors"],
            ["condition.metric"] = ["metric is required when kind is threshold"],
            ["condition.operator"] = ["operator must be one of: ==, !=, <, <=, >, >="],
            ["condition.minutes"] = ["minutes is only allowed when kind is offline"],
            ["cooldownSeconds"] = ["cooldownSeconds must be between 0 and 86400"],
            ["controlAction.command"] = ["command must not be empty or whitespace"],
            ["controlAction.deviceId"] = ["deviceId must be a sensor id of 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"],
        });

        await (await _operator.PostAsync("/api/v1/rules", Json("{}")))
            .ExpectValidationProblemAsync("The rule is not valid", new Dictionary<string, string[]>
            {
                ["name"] = ["name is required"],
                ["severity"] = ["severity is required"],
                ["target"] = ["target is required"],
                ["condition"] = ["condition is required"],
            });

        // Nothing was stored.
        var rules = await (await _operator.GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK);
        Assert.DoesNotContain(rules.GetProperty("items").EnumerateArray(), r => r.GetProperty("id").GetString() == "broken");
    }

    [Fact]
    public async Task MalformedJson_Is400_WithLinePositionAndPath()
    {
        var response = await _operator.PostAsync("/api/v1/rules", Json("""
            {
              "name": "x",
              "severity": major
            }
            """));
        var body = await response.ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body",
            "Invalid JSON at $.severity: 'm' is an invalid start of a value.");
        Assert.Equal(3, body.GetProperty("line").GetInt64());
        Assert.Equal(14, body.GetProperty("position").GetInt64());
        Assert.Equal("$.severity", body.GetProperty("path").GetString());

        var wrongType = await (await _operator.PostAsync("/api/v1/rules", Json("""{"name": 5}""")))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body",
                "Invalid JSON at $.name: The JSON value could not be converted to Api.Rules.RuleRequest.");
        Assert.Equal("$.name", wrongType.GetProperty("path").GetString());

        await (await _operator.PostAsync("/api/v1/rules", Json("null")))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body", "The body must be a JSON object.");
    }

    [Fact]
    public async Task NonJsonBody_Is415()
    {
        var body = JsonSerializer.Serialize(Request(Ids.New("rule"), "s1"), Web);
        await (await _operator.PostAsync("/api/v1/rules", new StringContent(body, Encoding.UTF8, "text/plain")))
            .ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType, "Unsupported media type", "Send the rule as application/json.");
        await (await _operator.PostAsync("/api/v1/rules", new ByteArrayContent(Encoding.UTF8.GetBytes(body))))
            .ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType, "Unsupported media type", "Send the rule as application/json.");
    }
}
