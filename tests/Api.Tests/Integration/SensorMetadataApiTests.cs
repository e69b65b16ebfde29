using System.Net;
using System.Text.Json;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// PUT /api/v1/sensors/{id}/metadata (issue 13 item 2): operators set a sensor's metadata; it merges with what the device
/// sends (the operator wins per field and per tag); the detail shows both sides and the list the merge; a sensor can be
/// registered before its first reading; rules by location follow a relocation from that point of the log on.
/// </summary>
public sealed class SensorMetadataApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    private async Task PostAsync(string sensor, long timeMs, double hum, string? metadataJson = null)
    {
        var metadata = metadataJson is null ? "" : $",\"metadata\":{metadataJson}";
        var body = $$"""{"id":"{{sensor}}","timestamp":{{timeMs}},"metrics":{"hum":{{hum}}}{{metadata}}}""";
        var result = await (await factory.Device().PostAsync("/api/v1/telemetry", Json(body))).ExpectAsync(HttpStatusCode.Accepted);
        JsonAssert.Equal(new { accepted = 1, rejected = Array.Empty<object>() }, result);
    }

    private Task<HttpResponseMessage> PutAsync(string sensor, string body) =>
        _operator.PutAsync($"/api/v1/sensors/{sensor}/metadata", Json(body));

    /// <summary>Polls the sensor's detail until <paramref name="ready"/> holds.</summary>
    private Task<JsonElement> DetailAsync(string sensor, Func<JsonElement, bool> ready, string what) =>
        Eventually.Json(async () =>
        {
            var response = await _operator.GetAsync($"/api/v1/sensors/{sensor}");
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
            var detail = await response.ExpectAsync(HttpStatusCode.OK);
            return ready(detail) ? detail : null;
        }, what: $"{sensor}: {what}");

    private static string? Location(JsonElement detail) =>
        detail.TryGetProperty("metadata", out var m) && m.TryGetProperty("location", out var l) ? l.GetString() : null;

    private async Task<JsonElement> ListItemAsync(string sensor)
    {
        await factory.SettledAsync();
        var page = await (await _operator.GetAsync($"/api/v1/sensors?search={sensor}")).ExpectAsync(HttpStatusCode.OK);
        return Assert.Single(page.GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Operator_metadata_merges_with_the_device_s_the_operator_winning_and_an_empty_body_clears_it()
    {
        var t0 = factory.NextWindow() + 5_000;
        var sensor = Ids.New("meta");
        await PostAsync(sensor, t0, 40, """{"location":"garden","model":"HW-MD202","owner":"ana","site":"north"}""");
        await DetailAsync(sensor, d => Location(d) == "garden", "the device's location");

        var put = await PutAsync(sensor, """{"location":"roof","owner":null,"tags":{"site":"south","team":"ops"}}""");
        JsonAssert.Equal(new { location = "roof", tags = new { site = "south", team = "ops" } }, await put.ExpectAsync(HttpStatusCode.Accepted));
        Assert.Equal($"/api/v1/sensors/{sensor}", put.Headers.Location?.OriginalString);

        var detail = await DetailAsync(sensor, d => Location(d) == "roof", "the operator's location");
        JsonAssert.Equal(new { model = "HW-MD202", location = "roof", owner = "ana", extra = new { site = "south", team = "ops" } }, detail.GetProperty("metadata"));
        JsonAssert.Equal(new { model = "HW-MD202", location = "garden", owner = "ana", extra = new { site = "north" } }, detail.GetProperty("deviceMetadata"));
        JsonAssert.Equal(new { location = "roof", tags = new { site = "south", team = "ops" } }, detail.GetProperty("operatorMetadata"));

        var item = await ListItemAsync(sensor);
        JsonAssert.Equal(new
        {
            id = sensor,
            lastSeen = T(t0),
            metadata = new { model = "HW-MD202", location = "roof", owner = "ana", extra = new { site = "south", team = "ops" } },
            latest = new { hum = 40 },
            lateCount = 0,
            operatorMetadata = new { location = "roof", tags = new { site = "south", team = "ops" } },
        }, item);

        // The device moves itself and changes its model: the operator's location stays, the model follows the device.
        await PostAsync(sensor, t0 + 1_000, 41, """{"location":"cellar","model":"HW-MD300","site":"west"}""");
        detail = await DetailAsync(sensor, d => d.GetProperty("metadata").GetProperty("model").GetString() == "HW-MD300", "the device's new model");
        JsonAssert.Equal(new { model = "HW-MD300", location = "roof", owner = "ana", extra = new { site = "south", team = "ops" } }, detail.GetProperty("metadata"));

        // An empty body sets nothing: the device's values show again.
        JsonAssert.Equal(new { }, await (await PutAsync(sensor, "{}")).ExpectAsync(HttpStatusCode.Accepted));
        detail = await DetailAsync(sensor, d => !d.TryGetProperty("operatorMetadata", out _), "no operator metadata");
        JsonAssert.Equal(new { model = "HW-MD300", location = "cellar", owner = "ana", extra = new { site = "west" } }, detail.GetProperty("metadata"));
        item = await ListItemAsync(sensor);
        Assert.False(item.TryGetProperty("operatorMetadata", out _), item.GetRawText());
        Assert.Equal("cellar", item.GetProperty("metadata").GetProperty("location").GetString());
    }

    [Fact]
    public async Task A_sensor_that_never_sent_data_can_be_registered_and_is_listed_without_last_seen()
    {
        var sensor = Ids.New("prereg");
        await (await _operator.GetAsync($"/api/v1/sensors/{sensor}"))
            .ExpectProblemAsync(HttpStatusCode.NotFound, "Sensor not found", $"No reading of sensor '{sensor}' has been received.");

        await (await PutAsync(sensor, """{"location":"roof","model":"X1","owner":"ops"}""")).ExpectAsync(HttpStatusCode.Accepted);

        var detail = await DetailAsync(sensor, _ => true, "registered");
        Assert.False(detail.TryGetProperty("lastSeen", out _), detail.GetRawText());
        Assert.False(detail.TryGetProperty("deviceMetadata", out _), detail.GetRawText());
        JsonAssert.Equal(new { model = "X1", location = "roof", owner = "ops" }, detail.GetProperty("metadata"));
        JsonAssert.Equal(new { location = "roof", model = "X1", owner = "ops" }, detail.GetProperty("operatorMetadata"));
        Assert.Equal(0, detail.GetProperty("lastReadings").GetArrayLength());

        JsonAssert.Equal(new
        {
            id = sensor,
            metadata = new { model = "X1", location = "roof", owner = "ops" },
            latest = new { },
            lateCount = 0,
            operatorMetadata = new { location = "roof", model = "X1", owner = "ops" },
        }, await ListItemAsync(sensor));
        var metrics = await (await _operator.GetAsync($"/api/v1/sensors/{sensor}/metrics")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(0, metrics.GetProperty("points").GetArrayLength());
    }

    [Fact]
    public async Task Bad_bodies_are_400s_naming_the_field_and_store_nothing()
    {
        var sensor = Ids.New("badmeta");
        var longValue = new string('x', 257);
        var longName = new string('n', 65);
        var manyTags = "{" + string.Join(",", Enumerable.Range(0, 65).Select(i => $"\"t{i}\":\"v\"")) + "}";

        await (await PutAsync(sensor, $$$"""{"location":"","model":"{{{longValue}}}","owner":"a\u0001b","tags":{"ok":"fine","bad":null,"ctl":"\u007f"}}"""))
            .ExpectValidationProblemAsync("The metadata is not valid", new Dictionary<string, string[]>
            {
                ["location"] = ["location must not be empty; null (or leaving it out) leaves it to the device"],
                ["model"] = ["model is longer than 256 characters"],
                ["owner"] = ["owner contains the control character U+0001"],
                ["tags.bad"] = ["tags.bad must be a string; leave the tag out to remove it"],
                ["tags.ctl"] = ["tags.ctl contains the control character U+007F"],
            });
        await (await PutAsync(sensor, "{\"tags\":{\"" + longName + "\":\"v\"}}"))
            .ExpectValidationProblemAsync("The metadata is not valid", new Dictionary<string, string[]>
            {
                ["tags"] = ["the tag name is longer than 64 characters"],
            });
        await (await PutAsync(sensor, "{\"tags\":" + manyTags + "}"))
            .ExpectValidationProblemAsync("The metadata is not valid", new Dictionary<string, string[]>
            {
                ["tags"] = ["tags may have at most 64 entries; it has 65"],
            });

        var misspelt = await (await PutAsync(sensor, """{"locaton":"roof"}"""))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body", null);
        Assert.Contains("locaton", misspelt.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var number = await (await PutAsync(sensor, """{"tags":{"floor":3}}"""))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body", null);
        Assert.Equal("$.tags.floor", number.GetProperty("path").GetString());
        var twice = await (await PutAsync(sensor, """{"location":"a","location":"b"}"""))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body", null);
        Assert.Contains("location", twice.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await (await _operator.PutAsync($"/api/v1/sensors/{sensor}/metadata", new StringContent("location=roof")))
            .ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType, "Unsupported media type", "Send the metadata as application/json.");
        var badId = await (await _operator.PutAsync("/api/v1/sensors/caf%C3%A9/metadata", Json("{}"))).ExpectAsync(HttpStatusCode.BadRequest);
        Assert.True(badId.GetProperty("errors").TryGetProperty("id", out _), badId.GetRawText());

        await (await factory.Device().PutAsync($"/api/v1/sensors/{sensor}/metadata", Json("{}")))
            .ExpectProblemAsync(HttpStatusCode.Forbidden, "Forbidden", $"This API key has the role 'device', which may not use PUT /api/v1/sensors/{sensor}/metadata.");
        await (await factory.Client(null).PutAsync($"/api/v1/sensors/{sensor}/metadata", Json("{}")))
            .ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "An API key is required: send it in the X-Api-Key header.");

        // Nothing was registered: a good change of another sensor, applied after them in the same partition or not, shows,
        // and this one is still unknown.
        await factory.SettledAsync();
        await (await _operator.GetAsync($"/api/v1/sensors/{sensor}")).ExpectAsync(HttpStatusCode.NotFound);
    }

    /// <summary>
    /// A relocation by the operator: the readings before it are judged by the old location's rule only (it alerts), the
    /// ones after it by the new location's rule only; the new location's rule never alerts for the readings before the
    /// change, and the old location's alert resolves at the change (the sensor's time then).
    /// </summary>
    [Fact]
    public async Task A_location_rule_follows_an_operator_relocation_from_that_point_on()
    {
        var t0 = factory.NextWindow() + 5_000;
        var sensor = Ids.New("moved");
        var from = Ids.New("garden");
        var to = Ids.New("roof");
        var ruleFrom = Ids.New("dry-from");
        var ruleTo = Ids.New("dry-to");
        foreach (var (rule, location) in new[] { (ruleFrom, from), (ruleTo, to) })
        {
            await (await _operator.PostAsync("/api/v1/rules", Json(new
            {
                id = rule,
                name = "Dry " + location,
                severity = "major",
                target = new { kind = "location", location },
                condition = new { kind = "threshold", metric = "hum", @operator = "<", value = 50 },
            }))).ExpectAsync(HttpStatusCode.Created);
        }

        await PostAsync(sensor, t0, 40, $$"""{"location":"{{from}}"}""");
        await PostAsync(sensor, t0 + 1_000, 41);
        var opened = await AlertsAsync($"ruleId={ruleFrom}", a => a.GetProperty("state").GetString() == "open");
        Assert.Equal((T(t0), 40.0), (opened.GetProperty("startedAt").GetDateTimeOffset(), opened.GetProperty("value").GetDouble()));

        await (await PutAsync(sensor, $$"""{"location":"{{to}}"}""")).ExpectAsync(HttpStatusCode.Accepted);
        // The device still says it is in the old location: the operator's wins.
        await PostAsync(sensor, t0 + 2_000, 42, $$"""{"location":"{{from}}"}""");

        var moved = await AlertsAsync($"ruleId={ruleTo}", a => a.GetProperty("state").GetString() == "open");
        Assert.Equal((sensor, T(t0 + 2_000), T(t0 + 2_000), 42.0, "42 < 50"), (moved.GetProperty("sensorId").GetString(),
            moved.GetProperty("startedAt").GetDateTimeOffset(), moved.GetProperty("openedAt").GetDateTimeOffset(),
            moved.GetProperty("value").GetDouble(), moved.GetProperty("message").GetString()));
        var resolved = await AlertsAsync($"ruleId={ruleFrom}", a => a.GetProperty("state").GetString() == "resolved");
        Assert.Equal((opened.GetProperty("id").GetString(), T(t0 + 1_000), "condition cleared"), (resolved.GetProperty("id").GetString(),
            resolved.GetProperty("resolvedAt").GetDateTimeOffset(), resolved.GetProperty("resolvedReason").GetString()));

        // Later readings alert nothing more under either rule.
        await PostAsync(sensor, t0 + 3_000, 43);
        await factory.SettledAsync();
        var all = await (await _operator.GetAsync($"/api/v1/alerts?sensorId={sensor}")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal([(ruleTo, "open"), (ruleFrom, "resolved")],
            all.EnumerateArray().Select(a => (a.GetProperty("ruleId").GetString()!, a.GetProperty("state").GetString()!)).ToArray());
    }

    /// <summary>Polls GET /alerts?{query} until it returns exactly one alert satisfying <paramref name="ready"/>.</summary>
    private Task<JsonElement> AlertsAsync(string query, Func<JsonElement, bool> ready) =>
        Eventually.Json(async () =>
        {
            var alerts = await (await _operator.GetAsync($"/api/v1/alerts?{query}")).ExpectAsync(HttpStatusCode.OK);
            return alerts.GetArrayLength() == 1 && ready(alerts[0]) ? alerts[0] : null;
        }, what: $"alerts?{query}");
}
