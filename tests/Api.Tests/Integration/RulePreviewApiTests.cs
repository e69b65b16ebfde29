using System.Globalization;
using System.Net;
using System.Text.Json;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>POST /api/v1/rules/preview: an unsaved rule replayed over stored minute aggregates.</summary>
public sealed class RulePreviewApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private const long M = ApiFactory.MinuteMs;

    /// <summary>
    /// Per-minute averages of the scenario: a one-minute streak (too short for forMinutes 3), a five-minute streak
    /// (opens at its third minute's end, resolves when it breaks), and a last streak still pending at the end.
    /// </summary>
    private static readonly double[] Averages = [50, 70, 50, 71, 72, 73, 74, 75, 50, 70];

    private readonly HttpClient _operator = factory.Operator();

    private static object Rule(string name, string location, string on = "avg", string op = ">", double value = 60, int forMinutes = 3) => new
    {
        name,
        severity = "minor",
        target = new { kind = "location", location },
        condition = new { kind = "threshold", metric = "hum", on, @operator = op, value, forMinutes },
    };

    /// <summary>Two readings per minute (+5 s and +35 s) whose average is the given value.</summary>
    private static string Readings(string sensor, string location, long windowMs, IEnumerable<int> minutes, IReadOnlyList<double> averages) =>
        "[" + string.Join(",", minutes.SelectMany(k => new[] { (5_000, averages[k] - 1), (35_000, averages[k] + 1) }.Select(r =>
            string.Create(CultureInfo.InvariantCulture,
                $$$"""{"id":"{{{sensor}}}","timestamp":{{{windowMs + k * M + r.Item1}}},"metrics":{"hum":{{{r.Item2}}}},"metadata":{"location":"{{{location}}}"}}""")))) + "]";

    private async Task PostAsync(string body) =>
        await (await factory.Device().PostAsync("/api/v1/telemetry", Json(body))).ExpectAsync(HttpStatusCode.Accepted);

    private async Task<JsonElement> PreviewAsync(object body) =>
        await (await _operator.PostAsync("/api/v1/rules/preview", Json(body))).ExpectAsync(HttpStatusCode.OK);

    /// <summary>
    /// Waits until <paramref name="count"/> minutes of the sensor are stored and so is the sensor itself with its location
    /// (the preview picks the sensors a rule targets from the sensor list, which is written at the partition's checkpoint,
    /// after the minutes).
    /// </summary>
    private async Task StoredMinutesAsync(string sensor, long windowMs, int count) =>
        await Eventually.Until(async () =>
        {
            var metrics = await (await _operator.GetAsync($"/api/v1/sensors/{sensor}/metrics?from={Iso(windowMs)}&to={Iso(windowMs + 10 * M)}&metric=hum"))
                .SensorBodyAsync();
            if (metrics is not { } points)
            {
                return false;
            }
            var listed = await (await _operator.GetAsync($"/api/v1/sensors?search={sensor}")).ExpectAsync(HttpStatusCode.OK);
            return points.GetProperty("points").GetArrayLength() == count
                && listed.GetProperty("items").EnumerateArray().Any(i => i.GetProperty("id").GetString() == sensor
                    && i.GetProperty("metadata").ValueKind == JsonValueKind.Object);
        }, what: $"{count} stored minutes of {sensor}, and the sensor listed with its metadata");

    [Fact]
    public async Task Preview_EqualsTheAlertsTheSavedRuleOpens_WhenTheSameDataIsReplayed()
    {
        var location = Ids.New("pv-site");
        var first = Ids.New("pv-a");
        var second = Ids.New("pv-b");
        var w1 = factory.NextWindow();
        await PostAsync(Readings(first, location, w1, Enumerable.Range(0, 10), Averages));
        await factory.TickAsync(w1 + 10 * M + 10_000);
        await StoredMinutesAsync(first, w1, 10);

        var rule = Rule("Humid site", location);
        var preview = await PreviewAsync(new { rule, from = Iso(w1), to = Iso(w1 + 10 * M) });
        JsonAssert.Equal(new
        {
            from = T(w1),
            to = T(w1 + 10 * M),
            total = 1,
            sensorsTargeted = 1,
            sensorsScanned = 1,
            sensors = new[] { new { sensorId = first, alerts = 1 } },
            alerts = new[]
            {
                new { sensorId = first, startedAt = T(w1 + 3 * M), openedAt = T(w1 + 6 * M), resolvedAt = T(w1 + 8 * M), value = 71, message = "avg 71 > 60" },
            },
        }, preview);

        // Save the rule, then the same readings from a second sensor of the site, ten minutes later. Each minute is
        // posted once the previous one was applied everywhere, as a device sending in real time would.
        var created = await (await _operator.PostAsync("/api/v1/rules", Json(rule))).ExpectAsync(HttpStatusCode.Created);
        var ruleId = created.GetProperty("id").GetString()!;
        var w2 = factory.NextWindow();
        for (var k = 0; k < 10; k++)
        {
            await PostAsync(Readings(second, location, w2, [k], Averages));
            await factory.SettledAsync();
            await factory.SettledAsync();
        }
        await factory.TickAsync(w2 + 10 * M + 10_000);
        await StoredMinutesAsync(second, w2, 10);
        await factory.SettledAsync();
        await factory.SettledAsync();

        var alerts = await (await _operator.GetAsync($"/api/v1/alerts?ruleId={ruleId}")).ExpectAsync(HttpStatusCode.OK);
        var shift = w2 - w1;
        Assert.Equal(preview.GetProperty("total").GetInt32(), alerts.GetArrayLength());
        var previewed = preview.GetProperty("alerts").EnumerateArray().Select(a => (
            Opened: a.GetProperty("openedAt").GetDateTimeOffset().AddMilliseconds(shift),
            Started: a.GetProperty("startedAt").GetDateTimeOffset().AddMilliseconds(shift),
            Resolved: a.GetProperty("resolvedAt").GetDateTimeOffset().AddMilliseconds(shift),
            Value: a.GetProperty("value").GetDouble(),
            Message: a.GetProperty("message").GetString()));
        var opened = alerts.EnumerateArray().Select(a => (
            Opened: a.GetProperty("openedAt").GetDateTimeOffset(),
            Started: a.GetProperty("startedAt").GetDateTimeOffset(),
            Resolved: a.GetProperty("resolvedAt").GetDateTimeOffset(),
            Value: a.GetProperty("value").GetDouble(),
            Message: a.GetProperty("message").GetString()));
        Assert.Equal(previewed, opened);
        Assert.All(alerts.EnumerateArray(), a => Assert.Equal(second, a.GetProperty("sensorId").GetString()));

        // Previewing the saved rule over the second window gives what it really opened there (both sensors targeted,
        // only the second has data in that window).
        var again = await PreviewAsync(new { rule, from = Iso(w2), to = Iso(w2 + 10 * M) });
        Assert.Equal(2, again.GetProperty("sensorsTargeted").GetInt32());
        Assert.Equal(alerts.GetArrayLength(), again.GetProperty("total").GetInt32());
        JsonAssert.Equal(new[] { new { sensorId = second, alerts = 1 } }, again.GetProperty("sensors"));
    }

    [Fact]
    public async Task RawCondition_IsReplayedOnTheMinuteMax_AndSaysSo()
    {
        var location = Ids.New("pv-raw");
        var sensor = Ids.New("pv-r");
        var w = factory.NextWindow();
        // Minutes 0 and 2: readings of 59 and 61 (one above 60); minute 1: 50 and 52.
        await PostAsync(Readings(sensor, location, w, [0, 1, 2], [60, 51, 60]));
        await factory.TickAsync(w + 3 * M + 10_000);
        await StoredMinutesAsync(sensor, w, 3);

        var preview = await PreviewAsync(new { rule = Rule("Raw humid", location, on: "raw", forMinutes: 0), from = Iso(w), to = Iso(w + 5 * M) });
        JsonAssert.Equal(new
        {
            from = T(w),
            to = T(w + 5 * M),
            total = 2,
            sensorsTargeted = 1,
            sensorsScanned = 1,
            sensors = new[] { new { sensorId = sensor, alerts = 2 } },
            alerts = new object[]
            {
                new { sensorId = sensor, startedAt = T(w), openedAt = T(w), resolvedAt = T(w + M), value = 61, message = "max 61 > 60" },
                new { sensorId = sensor, startedAt = T(w + 2 * M), openedAt = T(w + 2 * M), value = 61, message = "max 61 > 60" },
            },
            approximation = "raw readings are not stored: the condition was evaluated on each minute's max, so an alert opens at the start of "
                + "the first minute in which some reading held it and resolves at the start of the first minute in which none did; several "
                + "crossings within one minute count as one alert",
        }, preview);
    }

    [Fact]
    public async Task InvalidPreview_Is400_WithFieldErrors_AndChangesNothing()
    {
        var before = (await (await _operator.GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK)).GetProperty("total").GetInt32();
        const string title = "The preview request is not valid";

        await (await _operator.PostAsync("/api/v1/rules/preview", Json("""
            {
              "rule": {
                "name": "Broken",
                "severity": "urgent",
                "target": { "kind": "sensors" },
                "condition": { "kind": "threshold", "operator": "=~", "value": 1, "minutes": 3 },
                "cooldownSeconds": -1
              },
              "from": "yesterday",
              "to": "2026-06-01T00:00:00Z"
            }
            """))).ExpectValidationProblemAsync(title, new Dictionary<string, string[]>
        {
            ["rule.severity"] = ["severity must be one of: critical, major, minor, warning, info"],
            ["rule.target.sensorIds"] = ["sensorIds is required when kind is sensors"],
            ["rule.condition.metric"] = ["metric is required when kind is threshold"],
            ["rule.condition.operator"] = ["operator must be one of: ==, !=, <, <=, >, >="],
            ["rule.condition.minutes"] = ["minutes is only allowed when kind is offline"],
            ["rule.cooldownSeconds"] = ["cooldownSeconds must be between 0 and 86400"],
            ["from"] = ["from must be an ISO-8601 time such as 2026-11-22T10:00:00Z, not 'yesterday'"],
        });

        await (await _operator.PostAsync("/api/v1/rules/preview", Json("""{ "from": "2026-06-02T00:00:00Z", "to": "2026-06-01T00:00:00Z" }""")))
            .ExpectValidationProblemAsync(title, new Dictionary<string, string[]>
            {
                ["rule"] = ["rule is required: the rule to preview, as it would be sent to POST /api/v1/rules"],
                ["from"] = ["from must be before to"],
            });

        await (await _operator.PostAsync("/api/v1/rules/preview", Json(new
            {
                rule = new { name = "Silent", severity = "major", target = new { kind = "all" }, condition = new { kind = "offline", minutes = 5 } },
                from = "2026-06-01T00:00:00Z",
                to = "2026-06-08T00:00:01Z",
            })))
            .ExpectValidationProblemAsync(title, new Dictionary<string, string[]>
            {
                ["rule.condition.kind"] = ["an offline condition cannot be previewed: the times of the readings within a minute are not stored, only its aggregates"],
                ["to"] = ["the range may span at most 7 days"],
            });

        await (await _operator.PostAsync("/api/v1/rules/preview", Json(new { rule = Rule("Exact", "x", on: "raw", op: "==") })))
            .ExpectValidationProblemAsync(title, new Dictionary<string, string[]>
            {
                ["rule.condition.operator"] = ["a raw-reading condition with == cannot be previewed: raw readings are not stored, and a minute's "
                    + "aggregates do not tell whether one reading equalled the value; use a minute statistic (on: avg, min, max, sum, count, last)"],
            });

        await (await _operator.PostAsync("/api/v1/rules/preview", Json("""{ "rule": {}, "range": "1h" }""")))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body", null);
        await (await _operator.PostAsync("/api/v1/rules/preview", new StringContent("x")))
            .ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType, "Unsupported media type", "Send the preview request as application/json.");
        await (await factory.Device().PostAsync("/api/v1/rules/preview", Json(new { rule = Rule("Device", "x") })))
            .ExpectAsync(HttpStatusCode.Forbidden);

        // Nothing was stored.
        Assert.Equal(before, (await (await _operator.GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK)).GetProperty("total").GetInt32());
    }
}
