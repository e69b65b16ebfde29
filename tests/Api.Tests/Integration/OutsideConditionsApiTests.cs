using System.Net;
using Grains.Abstractions;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// Outside conditions of a location (issue 13 item 3) through the API: posted per location, joined into the closed minute
/// aggregates of its sensors (the metrics API and the output stream return them), usable in a rule on inside − outside.
/// </summary>
public sealed class OutsideConditionsApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    private async Task PostConditionsAsync(string location, string body, int accepted) =>
        JsonAssert.Equal(new { location, accepted },
            await (await _operator.PostAsync($"/api/v1/locations/{Uri.EscapeDataString(location)}/conditions", Json(body))).ExpectAsync(HttpStatusCode.Accepted));

    private async Task PostReadingAsync(string sensor, string location, long timeMs, double temperature) =>
        await (await _operator.PostAsync("/api/v1/telemetry", Json(
            $$$"""{"id":"{{{sensor}}}","timestamp":{{{timeMs}}},"metrics":{"temperature":{{{temperature}}}},"metadata":{"location":"{{{location}}}"}}""")))
            .ExpectAsync(HttpStatusCode.Accepted);

    [Fact]
    public async Task Closed_minutes_carry_the_outside_values_of_their_location_and_a_rule_compares_inside_with_outside()
    {
        var window = factory.NextWindow();
        var location = Ids.New("greenhouse");
        var sensor = Ids.New("inside");
        var rule = Ids.New("warmer-inside");
        var created = await (await _operator.PostAsync("/api/v1/rules", Json(new
        {
            id = rule,
            name = "Warmer inside",
            severity = "warning",
            target = new { kind = "location", location },
            condition = new { kind = "threshold", metric = "temperature", on = "avg", @operator = ">", value = 10, outsideMetric = "temperature" },
        }))).ExpectAsync(HttpStatusCode.Created);
        Assert.Equal("temperature", created.GetProperty("condition").GetProperty("outsideMetric").GetString());
        var version = created.GetProperty("version").GetInt64();

        // The weather at the minute: one observation before it, one inside it (the latest before the minute's end counts).
        await PostConditionsAsync(location, $$$"""[{"timestamp":"{{{Iso(window - 120_000)}}}","metrics":{"temperature":9,"humidity":85}},{"timestamp":{{{window + 30_000}}},"metrics":{"temperature":12}}]""", 2);
        await PostReadingAsync(sensor, location, window + 1_000, 21);
        await PostReadingAsync(sensor, location, window + 40_000, 25);
        await factory.CloseMinuteAsync(window);

        var metrics = await Eventually.Json(async () =>
        {
            var body = await (await _operator.GetAsync($"/api/v1/sensors/{sensor}/metrics?from={Iso(window)}&to={Iso(window + 60_000)}"))
                .SensorBodyAsync();
            return body is { } b && b.GetProperty("points").GetArrayLength() > 0 ? b : null;
        }, what: "the closed minute");
        JsonAssert.Equal(new[]
        {
            new { minute = T(window), metric = "humidity", value = 85 },
            new { minute = T(window), metric = "temperature", value = 12 },
        }, metrics.GetProperty("outside"));

        // avg 23 − outside 12 = 11 > 10: the rule opens for the minute.
        var alerts = await Eventually.Json(async () =>
        {
            var body = await (await _operator.GetAsync($"/api/v1/alerts?ruleId={rule}")).ExpectAsync(HttpStatusCode.OK);
            return body.GetArrayLength() > 0 ? body : null;
        }, what: "the alert");
        var alert = alerts[0];
        Assert.Equal(AlertIds.For(rule, version, sensor, window), alert.GetProperty("id").GetString());
        Assert.Equal("avg 23 - outside 12 = 11 > 10", alert.GetProperty("message").GetString());
        Assert.Equal(11, alert.GetProperty("value").GetDouble());

        // The output stream's aggregate carries them too.
        var page = await (await _operator.GetAsync("/api/v1/outputs/aggregates?limit=1000")).ExpectAsync(HttpStatusCode.OK);
        var record = page.GetProperty("records").EnumerateArray().Single(r => r.GetProperty("id").GetString() == $"{sensor}@{window}");
        JsonAssert.Equal(new { humidity = 85, temperature = 12 }, record.GetProperty("body").GetProperty("outside"));
    }

    [Fact]
    public async Task Bad_conditions_are_400_naming_the_field_and_devices_are_refused()
    {
        var location = Ids.New("yard");
        var url = $"/api/v1/locations/{location}/conditions";
        var future = Iso(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 3_600_000);
        await (await _operator.PostAsync(url, Json($$$"""[{"timestamp":"{{{future}}}","metrics":{"t":1}},{"metrics":{"t":"warm"}},{"metrics":{}},{"metrics":{"t":1},"wind":3}]""")))
            .ExpectValidationProblemAsync("The outside conditions are not valid", new Dictionary<string, string[]>
            {
                ["[0].timestamp"] = ["timestamp is 3600 s in the future (at most 300 s allowed)"],
                ["[1].metrics.t"] = ["must be a number of magnitude at most 1e15"],
                ["[2].metrics"] = ["metrics must have at least one value"],
                ["[3].wind"] = ["unknown property 'wind': an observation has timestamp and metrics"],
            });
        await (await _operator.PostAsync(url, Json("""{"timestamp":"yesterday","metrics":{"t":1}}""")))
            .ExpectValidationProblemAsync("The outside conditions are not valid", new Dictionary<string, string[]>
            {
                ["timestamp"] = ["timestamp must be epoch seconds, epoch milliseconds or an ISO-8601 string"],
            });
        await (await _operator.PostAsync(url, Json("[]")))
            .ExpectValidationProblemAsync("The outside conditions are not valid", new Dictionary<string, string[]> { ["$"] = ["the array has no observation"] });
        await (await _operator.PostAsync("/api/v1/locations/%01x/conditions", Json("""{"metrics":{"t":1}}""")))
            .ExpectValidationProblemAsync("Invalid location", new Dictionary<string, string[]> { ["location"] = ["location contains the control character U+0001"] });
        await (await _operator.PostAsync(url, Json("""{"metrics":""")))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body", null);
        await (await _operator.PostAsync(url, new StringContent("t=1")))
            .ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType, "Unsupported media type", "Send the outside conditions as application/json.");
        await (await factory.Device().PostAsync(url, Json("""{"metrics":{"t":1}}"""))).ExpectAsync(HttpStatusCode.Forbidden);

        // A rule may compare with outside values only on a minute statistic.
        await (await _operator.PostAsync("/api/v1/rules", Json(new
        {
            name = "Raw outside",
            severity = "info",
            target = new { kind = "all" },
            condition = new { kind = "threshold", metric = "t", @operator = ">", value = 1, outsideMetric = "t" },
        }))).ExpectValidationProblemAsync("The rule is not valid", new Dictionary<string, string[]>
        {
            ["condition.outsideMetric"] = ["outsideMetric compares a minute statistic with the outside value joined into the minute: on must be one of avg, min, max, sum, count, last"],
        });
    }
}
