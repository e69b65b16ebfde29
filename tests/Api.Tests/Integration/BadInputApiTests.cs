using Api;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// Issue 2 item 9: each kind of bad input gets a clear error for that item, nothing of it is stored, good items of
/// the same request are stored, and the node keeps serving.
/// </summary>
public sealed class BadInputApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    private async Task<JsonElement> PostAsync(HttpContent content, HttpStatusCode expected = HttpStatusCode.Accepted) =>
        await (await _operator.PostAsync("/api/v1/telemetry", content)).ExpectAsync(expected);

    /// <summary>After everything posted is applied and checkpointed: only <paramref name="stored"/> exist among the sensors named <paramref name="prefix"/>*.</summary>
    private async Task AssertOnlyStoredAsync(string prefix, string[] stored, string[] notStored)
    {
        foreach (var id in stored)
        {
            await Eventually.Until(async () => (await _operator.GetAsync($"/api/v1/sensors/{id}")).StatusCode == HttpStatusCode.OK, what: $"sensor {id}");
        }
        await factory.SettledAsync();
        var list = await (await _operator.GetAsync($"/api/v1/sensors?search={prefix}")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(stored.Order(StringComparer.Ordinal), list.GetProperty("items").EnumerateArray().Select(s => s.GetProperty("id").GetString()!));
        foreach (var id in notStored)
        {
            var response = await _operator.GetAsync($"/api/v1/sensors/{Uri.EscapeDataString(id)}");
            if (SensorIds.IsValid(id))
            {
                await response.ExpectProblemAsync(HttpStatusCode.NotFound, "Sensor not found", $"No reading of sensor '{id}' has been received.");
            }
            else
            {
                await response.ExpectProblemAsync(HttpStatusCode.BadRequest, "Invalid sensor id", null); // no such sensor can exist
            }
        }
    }

    [Fact]
    public async Task EachBadItem_IsRejectedByIndex_WhileGoodItemsAreStored()
    {
        var t = factory.NextWindow() + 1_000;
        var p = Ids.New("bad");
        var tooLongId = p + new string('x', 129 - p.Length);
        var manyMetrics = string.Join(",", Enumerable.Range(1, 65).Select(i => $"\"m{i}\":{i}"));
        var futureSeconds = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 3_600;

        var body = await PostAsync(Json($$$"""
            [
              {"id":"{{{p}}}-good","timestamp":{{{t}}},"temp":21.5},
              {"id":"{{{p}}}-type","timestamp":{{{t}}},"metrics":{"temp":"hot"}},
              {"id":"{{{p}}}-inf","timestamp":{{{t}}},"temp":1e400},
              {"id":"{{{p}}}-neginf","timestamp":{{{t}}},"metrics":{"temp":-1e400}},
              {"id":"{{{p}}}-nan","timestamp":{{{t}}},"metrics":{"temp":"NaN"}},
              {"timestamp":{{{t}}},"temp":1},
              {"id":"{{{tooLongId}}}","timestamp":{{{t}}},"temp":1},
              {"id":"{{{p}}}-many","timestamp":{{{t}}},{{{manyMetrics}}}},
              {"id":"{{{p}}}-future","timestamp":{{{futureSeconds}}},"temp":1},
              {"sensor":true,"timestamp":{{{t}}},"temp":1},
              {"id":"{{{p}}}-ts","timestamp":true,"temp":1},
              {"id":"{{{p}}}-meta","timestamp":{{{t}}},"temp":1,"metadata":5},
              {"id":"{{{p}}}-metrics","timestamp":{{{t}}},"metrics":[1]},
              {"id":"{{{p}}} space","timestamp":{{{t}}},"temp":1},
              42,
              {"id":"{{{p}}}-good2","timestamp":{{{t + 1_000}}},"temp":22}
            ]
            """));

        Assert.Equal(2, body.GetProperty("accepted").GetInt32());
        var rejected = body.GetProperty("rejected").EnumerateArray().ToArray();
        var future = rejected.Single(r => r.GetProperty("index").GetInt32() == 8).GetProperty("error").GetString()!;
        var match = Regex.Match(future, @"^timestamp is (\d+) s in the future \(at most 300 s allowed\)$");
        Assert.True(match.Success, future);
        Assert.InRange(long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 3_590, 3_601);
        JsonAssert.Equal(new object[]
        {
            new { index = 1, error = "metric 'temp' must be a number" },
            new { index = 2, error = "metric 'temp' is not a finite number" },
            new { index = 3, error = "metric 'temp' is not a finite number" },
            new { index = 4, error = "metric 'temp' must be a number" },
            new { index = 5, error = "missing sensor id: expected one of id, sensor, sensorId, deviceId, nodo" },
            new { index = 6, error = "sensor id is longer than 128 characters" },
            new { index = 7, error = "too many metrics: 65 (at most 64)" },
            new { index = 8, error = future },
            new { index = 9, error = "sensor id field 'sensor' must be a string or an integer" },
            new { index = 10, error = "timestamp must be epoch seconds, epoch milliseconds or an ISO-8601 string" },
            new { index = 11, error = "metadata must be an object" },
            new { index = 12, error = "metrics must be an object" },
            new { index = 13, error = "sensor id contains U+0020: a sensor id is 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'" },
            new { index = 14, error = "item must be a JSON object" },
        }, body.GetProperty("rejected"));

        await AssertOnlyStoredAsync(p, [$"{p}-good", $"{p}-good2"],
            [$"{p}-type", $"{p}-inf", $"{p}-neginf", $"{p}-nan", tooLongId, $"{p}-many", $"{p}-future", $"{p}-ts", $"{p}-meta", $"{p}-metrics", $"{p} space"]);

        // The good items are whole and the stream time was not pushed to the future by the rejected item.
        var good = await (await _operator.GetAsync($"/api/v1/sensors/{p}-good")).ExpectAsync(HttpStatusCode.OK);
        JsonAssert.Equal(new Dictionary<string, double> { ["temp"] = 21.5 }, good.GetProperty("latest"));
        var next = factory.NextWindow();
        await PostAsync(Json($$$"""{"id":"{{{p}}}-good","timestamp":{{{next}}},"temp":23}"""));
        var after = await Eventually.Json(async () =>
        {
            var s = await (await _operator.GetAsync($"/api/v1/sensors/{p}-good")).ExpectAsync(HttpStatusCode.OK);
            return s.GetProperty("lastReadings").GetArrayLength() == 2 ? s : null;
        });
        Assert.Equal(0, after.GetProperty("lateCount").GetInt64());
    }

    [Fact]
    public async Task MalformedNdJsonLines_AreRejectedPerLine_WithLineAndPosition()
    {
        var t = factory.NextWindow() + 1_000;
        var p = Ids.New("ndbad");
        var nanLine = $$$"""{"id":"{{{p}}}-nan","timestamp":{{{t}}},"temp":NaN}""";
        var infinityLine = $$$"""{"id":"{{{p}}}-infinity","timestamp":{{{t}}},"temp":-Infinity}""";
        var slideLine = $$$"""{"sensor":"{{{p}}}-slide","temperature":22,"timestamp":{{{t / 1000}}},"metadata":{"model":"HW-MD202","version": 1.0.0}}""";
        var twoLine = $$$"""{"id":"{{{p}}}-good","timestamp":{{{t + 1_000}}},"temp":21} {"id":"{{{p}}}-two","temp":1}""";
        var truncatedLine = $$$"""{"id":"{{{p}}}-cut","timestamp":{{{t}}},"temp":""";
        var body = string.Join("\n",
            $$$"""{"id":"{{{p}}}-good","timestamp":{{{t}}},"temp":20}""",
            nanLine,
            "",
            slideLine,
            infinityLine,
            truncatedLine,
            twoLine,
            $$$"""{"id":"{{{p}}}-good","timestamp":{{{t + 2_000}}},"temp":22}""");

        var result = await PostAsync(NdJson(body));
        JsonAssert.Equal(new
        {
            accepted = 2,
            rejected = new object[]
            {
                new { index = 1, error = $"malformed JSON at line 2, position {nanLine.IndexOf("NaN", StringComparison.Ordinal)}: 'N' is an invalid start of a value." },
                new { index = 2, error = $"malformed JSON at line 4, position {slideLine.IndexOf("1.0.0", StringComparison.Ordinal) + 3}: '.' is an invalid end of a number. Expected 'E' or 'e'." },
                new { index = 3, error = $"malformed JSON at line 5, position {infinityLine.IndexOf("Infinity", StringComparison.Ordinal)}: 'I' is invalid within a number, immediately after a sign character ('+' or '-'). Expected a digit ('0'-'9')." },
                new { index = 4, error = $"malformed JSON at line 6, position {truncatedLine.Length}: Expected depth to be zero at the end of the JSON payload. There is an open JSON object or array that should be closed." },
                new { index = 5, error = $"malformed JSON at line 7, position {twoLine.IndexOf(" {", StringComparison.Ordinal) + 1}: '{{' is invalid after a single JSON value. Expected end of data." },
            },
        }, result);

        await AssertOnlyStoredAsync(p, [$"{p}-good"], [$"{p}-nan", $"{p}-slide", $"{p}-infinity", $"{p}-cut", $"{p}-two"]);
        var good = await (await _operator.GetAsync($"/api/v1/sensors/{p}-good")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(2, good.GetProperty("lastReadings").GetArrayLength());
    }

    [Fact]
    public async Task NaNInAJsonArray_MakesTheWholeBodyMalformed_AndNothingIsStored()
    {
        var t = factory.NextWindow() + 1_000;
        var p = Ids.New("arrnan");
        var first = $$$"""{"id":"{{{p}}}-good","timestamp":{{{t}}},"temp":20},""";
        var body = await (await _operator.PostAsync("/api/v1/telemetry", Json("[\n" + first + "\n" + $$$"""{"id":"{{{p}}}-nan","timestamp":{{{t}}},"temp":NaN}""" + "\n]")))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body", null);
        var position = $$$"""{"id":"{{{p}}}-nan","timestamp":{{{t}}},"temp":""".Length;
        Assert.Equal($"malformed JSON at line 3, position {position}: 'N' is an invalid start of a value.", body.GetProperty("detail").GetString());
        Assert.Equal(3, body.GetProperty("line").GetInt64());
        Assert.Equal(position, body.GetProperty("position").GetInt64());
        Assert.False(body.TryGetProperty("rejected", out _));

        await AssertOnlyStoredAsync(p, [], [$"{p}-good", $"{p}-nan"]);
    }

    [Fact]
    public async Task TooManyReadings_MakeTheBodyMalformed()
    {
        var items = string.Join(",", Enumerable.Repeat("{}", 10_001));
        var body = await (await _operator.PostAsync("/api/v1/telemetry", Json("[" + items + "]")))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body", "too many readings: at most 10000 per request");
        Assert.Equal(1, body.GetProperty("line").GetInt64());
        Assert.Equal(1 + 10_000 * 3, body.GetProperty("position").GetInt64());
    }

    [Fact]
    public async Task AfterBadInput_TheNodeKeepsServing()
    {
        var t = factory.NextWindow() + 1_000;
        var bad = new[]
        {
            "{", "}", "[", "[{]", "null", "\"text\"", "{\"id\":\"x\",\"v\":1}garbage", "\u0000", "{\"id\":\"x\",\"v\":1e999999}",
            new string('[', 100) + new string(']', 100),
        };
        foreach (var text in bad)
        {
            var response = await _operator.PostAsync("/api/v1/telemetry", Json(text));
            var status = response.StatusCode;
            Assert.True(status == HttpStatusCode.BadRequest, $"{text}: {status} {await response.Content.ReadAsStringAsync()}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
        var invalidUtf8 = new ByteArrayContent([.. "{\"id\":\"x\",\"name\":\""u8.ToArray(), 0xC3, 0x28, .. "\",\"v\":1}"u8.ToArray()]);
        invalidUtf8.Headers.ContentType = new("application/json");
        await (await _operator.PostAsync("/api/v1/telemetry", invalidUtf8)).ExpectAsync(HttpStatusCode.BadRequest);

        var live = await factory.Client(null).GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        var id = Ids.New("alive");
        await PostAsync(Json($$$"""{"id":"{{{id}}}","timestamp":{{{t}}},"v":1}"""));
        await Eventually.Until(async () => (await _operator.GetAsync($"/api/v1/sensors/{id}")).StatusCode == HttpStatusCode.OK);
        await (await factory.Client(null).GetAsync("/health/ready")).ExpectAsync(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("/api/v1/alerts?limit=abc", "limit", "limit must be a whole number; 'abc' is not")]
    [InlineData("/api/v1/sensors?offset=99999999999999999999", "offset", "offset must be a whole number; '99999999999999999999' is not")]
    [InlineData("/api/v1/sensors/s-1/commands?limit=1.5", "limit", "limit must be a whole number; '1.5' is not")]
    public async Task QueryValuesOfTheWrongKind_Are400_NamingTheValue_InEveryEnvironment(string url, string name, string problem)
    {
        // Without the handler the framework answers these with a 500 in Development (as here) and an empty 400 elsewhere.
        await (await _operator.GetAsync(url)).ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]> { [name] = [problem] });
        await (await _operator.GetAsync("/health/ready")).ExpectAsync(HttpStatusCode.OK);
    }

    /// <summary>
    /// One sensor-id rule in paths, query filters and live subscriptions (issue 10 item 2): an id no sensor can have is a
    /// 400 naming the character, never a lookup; a well-formed unknown id stays a 404.
    /// </summary>
    [Theory]
    [InlineData("/api/v1/sensors/{0}")]
    [InlineData("/api/v1/sensors/{0}/metrics")]
    [InlineData("/api/v1/sensors/{0}/commands")]
    [InlineData("/api/v1/devices/{0}/commands")]
    public async Task A_path_with_a_look_alike_sensor_id_is_a_400(string template)
    {
        var lookAlike = Uri.EscapeDataString("s\u0430nsor-1"); // Cyrillic a
        await (await _operator.GetAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, template, lookAlike)))
            .ExpectValidationProblemAsync("Invalid sensor id", new Dictionary<string, string[]>
            {
                ["id"] = ["sensor id contains '\u0430' (U+0430): a sensor id is 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"],
            });
        await (await _operator.GetAsync($"/api/v1/alerts?sensorId={lookAlike}"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]>
            {
                ["sensorId"] = ["sensor id contains '\u0430' (U+0430): a sensor id is 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'"],
            });
    }

    [Fact]
    public async Task A_live_subscription_to_a_look_alike_id_is_refused_and_a_connection_follows_at_most_100()
    {
        await using var hub = await LiveHubConnection.ConnectAsync(factory.Server, ApiFactory.OperatorKey);
        var refused = await Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => hub.InvokeAsync("SubscribeSensor", "caf\u00e9"));
        Assert.Equal("An unexpected error occurred invoking 'SubscribeSensor' on the server. HubException: Not a sensor id: it contains 'é' "
            + "(U+00E9): a sensor id is 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'.", refused.Message);

        for (var i = 0; i < 100; i++)
        {
            await hub.InvokeAsync("SubscribeSensor", $"follow-{i}");
        }
        await hub.InvokeAsync("SubscribeSensor", "follow-7"); // already followed: no more room needed
        var full = await Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => hub.InvokeAsync("SubscribeDevice", "follow-100"));
        Assert.Equal("An unexpected error occurred invoking 'SubscribeDevice' on the server. HubException: This connection already follows "
            + "100 sensors and devices, its limit (Live:MaxSubscriptionsPerConnection); unsubscribe from one first.", full.Message);
        await hub.InvokeAsync("UnsubscribeSensor", "follow-3");
        await hub.InvokeAsync("SubscribeDevice", "follow-100");
    }
}
