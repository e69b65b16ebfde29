using System.Net;
using System.Text.Json;
using Api.IotEngine;
using Api.Tests.Integration;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.IotEngine;

/// <summary>The Kafka Streams iot-engine's REST routes (its README's examples) on the Api, with its request and response shapes.</summary>
public sealed class IotEngineApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    /// <summary>The iot-engine's MessageResponse, its null errorMessage written out.</summary>
    private static JsonElement Message(string status, string? error = null) =>
        JsonDocument.Parse(JsonSerializer.Serialize(new Dictionary<string, string?> { ["status"] = status, ["errorMessage"] = error })).RootElement;

    private static string ReadmeRules(string sensor) => $$"""
        {
          "id": "{{sensor}}",
          "rules": [
            { "ruleName": "max_temperature", "metricName": "temp", "metricValue": 22, "condition": ">" },
            { "ruleName": "min_humidity", "metricName": "hum", "metricValue": 50, "condition": "<" }
          ]
        }
        """;

    [Fact]
    public async Task The_readme_rules_are_created_once_read_back_fire_on_the_readme_reading_and_are_replaced_and_deleted()
    {
        var sensor = Ids.New("A");
        JsonAssert.Equal(Message("OK"),
            await (await _operator.PostAsync("/iot-engine/query/rules", Json(ReadmeRules(sensor)))).ExpectAsync(HttpStatusCode.OK));
        JsonAssert.Equal(Message("ALREADY_EXISTS", $"The sensor {sensor} has rule defined"),
            await (await _operator.PostAsync("/iot-engine/query/rules", Json(ReadmeRules(sensor)))).ExpectAsync(HttpStatusCode.Conflict));
        JsonAssert.Equal(new
        {
            id = sensor,
            rules = new[]
            {
                new { ruleName = "max_temperature", metricName = "temp", metricValue = 22.0, condition = ">" },
                new { ruleName = "min_humidity", metricName = "hum", metricValue = 50.0, condition = "<" },
            },
        }, await (await _operator.GetAsync($"/iot-engine/query/rules/{sensor}")).ExpectAsync(HttpStatusCode.OK));

        // They are rules of this Api: one per rule of the sensor, on each raw reading of it.
        var prefix = IotEngineEndpoints.RuleIdPrefix(sensor);
        var rule = await (await _operator.GetAsync($"/api/v1/rules/{prefix}0")).ExpectAsync(HttpStatusCode.OK);
        JsonAssert.Equal(new
        {
            id = prefix + "0",
            name = "max_temperature",
            enabled = true,
            severity = "major",
            target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "threshold", metric = "temp", on = "raw", @operator = ">", value = 22.0, forMinutes = 0 },
            cooldownSeconds = 0,
            version = rule.GetProperty("version").GetInt64(),
        }, rule);

        // The README's reading, in the iot-engine's format: both rules open an alert.
        var window = factory.NextWindow();
        await (await factory.Device().PostAsync("/api/v1/telemetry", Json($$$"""
            [{"id":"{{{sensor}}}","timestamp":{{{window + 1_000}}},"metrics":{"hum":49,"temp":34}},
             {"id":"{{{sensor}}}","timestamp":{{{window + 2_000}}},"metrics":{"hum":52,"temp":35}}]
            """))).ExpectAsync(HttpStatusCode.Accepted);
        var alerts = await Eventually.Json(async () =>
        {
            var body = await (await _operator.GetAsync($"/api/v1/alerts?sensorId={sensor}")).ExpectAsync(HttpStatusCode.OK);
            return body.GetArrayLength() == 2 ? body : null;
        }, what: "two alerts");
        Assert.Equal(["34 > 22", "49 < 50"], alerts.EnumerateArray().Select(a => a.GetProperty("message").GetString()).Order());

        // Its metrics query: each closed minute whose start is in [start, end], each metric's average.
        await factory.CloseMinuteAsync(window);
        var metrics = await Eventually.Json(async () =>
        {
            var body = await (await _operator.GetAsync($"/iot-engine/query/metrics/{sensor}/{Iso(window)}/{Iso(window)}")).ExpectAsync(HttpStatusCode.OK);
            return body.GetArrayLength() == 1 ? body : null;
        }, what: "the closed minute");
        JsonAssert.Equal(new[] { new { timestamp = window, id = sensor, metrics = new Dictionary<string, double> { ["hum"] = 50.5, ["temp"] = 34.5 } } }, metrics);
        JsonAssert.Equal(Array.Empty<object>(),
            await (await _operator.GetAsync($"/iot-engine/query/metrics/{sensor}/{Iso(window + 60_000)}/{Iso(window + 120_000)}")).ExpectAsync(HttpStatusCode.OK));

        // PUT replaces the set: one rule now, the second deleted.
        JsonAssert.Equal(Message("OK"), await (await _operator.PutAsync($"/iot-engine/query/rules/{sensor}", Json("""
            {"rules":[{"ruleName":"max_temperature","metricName":"temp","metricValue":40,"condition":">=","controlAction":"fan_on"}]}
            """))).ExpectAsync(HttpStatusCode.OK));
        JsonAssert.Equal(new
        {
            id = sensor,
            rules = new[] { new { ruleName = "max_temperature", metricName = "temp", metricValue = 40.0, condition = ">=", controlAction = "fan_on" } },
        }, await (await _operator.GetAsync($"/iot-engine/query/rules/{sensor}")).ExpectAsync(HttpStatusCode.OK));
        await (await _operator.GetAsync($"/api/v1/rules/{prefix}1")).ExpectAsync(HttpStatusCode.NotFound);

        // DELETE removes them; then the sensor has none.
        JsonAssert.Equal(Message("OK"),
            await (await _operator.DeleteAsync($"/iot-engine/query/rules/{sensor}")).ExpectAsync(HttpStatusCode.OK));
        var none = Message("NOT_FOUND");
        JsonAssert.Equal(none, await (await _operator.GetAsync($"/iot-engine/query/rules/{sensor}")).ExpectAsync(HttpStatusCode.NotFound));
        JsonAssert.Equal(none, await (await _operator.DeleteAsync($"/iot-engine/query/rules/{sensor}")).ExpectAsync(HttpStatusCode.NotFound));
        JsonAssert.Equal(none, await (await _operator.PutAsync($"/iot-engine/query/rules/{sensor}", Json(ReadmeRules(sensor)))).ExpectAsync(HttpStatusCode.NotFound));
        await (await _operator.GetAsync($"/api/v1/rules/{prefix}0")).ExpectAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Bad_rules_and_times_are_refused_naming_the_iot_engine_field_and_nothing_is_stored()
    {
        var sensor = Ids.New("B");
        var response = await _operator.PostAsync("/iot-engine/query/rules", Json($$"""
            {"id":"{{sensor}}","rules":[{"ruleName":"ok","metricName":"temp","metricValue":1,"condition":">"},
                                        {"ruleName":"bad","metricValue":1,"condition":"=<"}, null]}
            """));
        var problem = await response.ExpectAsync(HttpStatusCode.BadRequest);
        Assert.Equal("The rules are not valid", problem.GetProperty("title").GetString());
        Assert.Equal(["rules[1].condition", "rules[1].metricName", "rules[2]"],
            problem.GetProperty("errors").EnumerateObject().Select(e => e.Name).Order(StringComparer.Ordinal));
        JsonAssert.Equal(Message("NOT_FOUND"),
            await (await _operator.GetAsync($"/iot-engine/query/rules/{sensor}")).ExpectAsync(HttpStatusCode.NotFound));

        await (await _operator.PostAsync("/iot-engine/query/rules", Json("""{"id":"a b","rules":[]}""")))
            .ExpectValidationProblemAsync("The rules are not valid", new Dictionary<string, string[]>
            {
                ["id"] = ["id is the sensor's id: it contains U+0020: a sensor id is 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"],
            });
        await (await _operator.PostAsync("/iot-engine/query/rules", Json($$"""{"id":"{{sensor}}","rules":[]}""")))
            .ExpectValidationProblemAsync("The rules are not valid", new Dictionary<string, string[]> { ["rules"] = ["rules must hold at least one rule"] });
        await (await _operator.GetAsync($"/iot-engine/query/metrics/{sensor}/yesterday/2026-01-01T00:00:00Z"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]>
            {
                ["start"] = ["start must be an ISO-8601 instant such as 2026-11-30T10:15:30Z, not 'yesterday'"],
            });
        await (await factory.Device().PostAsync("/iot-engine/query/rules", Json(ReadmeRules(sensor)))).ExpectAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Instances_are_the_active_silos_with_the_partitions_they_read()
    {
        await factory.SettledAsync();
        var instances = await (await _operator.GetAsync("/iot-engine/instances")).ExpectAsync(HttpStatusCode.OK);
        var only = Assert.Single(instances.EnumerateArray());
        Assert.Equal("127.0.0.1", only.GetProperty("host").GetString());
        Assert.InRange(only.GetProperty("port").GetInt32(), 1, 65535);
        Assert.Equal(["partition-0", "partition-1"], only.GetProperty("storeNames").EnumerateArray().Select(n => n.GetString()));
    }
}
