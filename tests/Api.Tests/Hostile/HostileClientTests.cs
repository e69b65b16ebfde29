using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Api.Tests.Integration;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Hostile;

/// <summary>
/// What a hostile device or a careless client sends, one class of issue 10 per test, against the Api on a real Kestrel
/// listener: the exact status and body, nothing of a rejected item stored, and afterwards the node healthy, no
/// error-level log entry, and the neighbour sensor's stored data exactly as before.
/// </summary>
public sealed class HostileClientTests(HostileApiFactory factory) : IClassFixture<HostileApiFactory>
{
    private const string IdRule = "a sensor id is 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'";

    private HttpClient Device => factory.Raw(ApiFactory.DeviceKey);

    private HttpClient Operator => factory.Raw(ApiFactory.OperatorKey);

    /// <summary>The node answers ready, logged no error, and the neighbour's detail and minutes are unchanged.</summary>
    private async Task AssertUnharmedAsync((string Id, string Detail, string Metrics) neighbour)
    {
        await factory.SettledAsync();
        await (await factory.Raw(null).GetAsync("/health/ready")).ExpectAsync(HttpStatusCode.OK);
        Assert.True(factory.Errors.IsEmpty, string.Join("\n", factory.Errors));
        Assert.Equal(neighbour.Detail, await factory.DetailAsync(neighbour.Id));
        Assert.Equal(neighbour.Metrics, await factory.MetricsAsync(neighbour.Id));
    }

    private async Task AssertNotStoredAsync(params string[] sensorIds)
    {
        foreach (var id in sensorIds)
        {
            await (await Operator.GetAsync($"/api/v1/sensors/{Uri.EscapeDataString(id)}"))
                .ExpectProblemAsync(HttpStatusCode.NotFound, "Sensor not found", $"No reading of sensor '{id}' has been received.");
        }
    }

    private static async Task<JsonElement> RejectedAsync(HttpResponseMessage response) =>
        (await response.ExpectProblemAsync(HttpStatusCode.BadRequest, "No valid reading", null)).GetProperty("rejected");

    [Fact]
    public async Task Values_no_read_can_fail_on_are_refused_at_ingest()
    {
        var neighbour = await factory.NeighbourAsync();
        var p = Ids.New("hv");
        var t = factory.NextWindow() + 1_000;
        var response = await Device.PostAsync("/api/v1/telemetry", Json($$$"""
            [{"id":"{{{p}}}-max","timestamp":{{{t}}},"v":1e308},
             {"id":"{{{p}}}-neg","timestamp":{{{t}}},"v":-1e16},
             {"id":"{{{p}}}-inf","timestamp":{{{t}}},"v":1e999},
             {"id":"{{{p}}}-str","timestamp":{{{t}}},"metrics":{"v":"NaN"}}]
            """));

        JsonAssert.Equal(new object[]
        {
            new { index = 0, error = "metric 'v' is 1E+308: values must be between -1e15 and 1e15" },
            new { index = 1, error = "metric 'v' is -10000000000000000: values must be between -1e15 and 1e15" },
            new { index = 2, error = "metric 'v' is not a finite number" },
            new { index = 3, error = "metric 'v' must be a number" },
        }, await RejectedAsync(response));
        await AssertNotStoredAsync($"{p}-max", $"{p}-neg", $"{p}-inf", $"{p}-str");
        await AssertUnharmedAsync(neighbour);
    }

    [Fact]
    public async Task Strings_that_cannot_be_stored_or_shown_and_look_alike_ids_are_refused_with_the_field_named()
    {
        var neighbour = await factory.NeighbourAsync();
        var p = Ids.New("hs");
        var t = factory.NextWindow() + 1_000;
        var response = await Device.PostAsync("/api/v1/telemetry", Json($$$"""
            [{"id":"{{{p}}}-nul","timestamp":{{{t}}},"metrics":{"te\u0000mp":1}},
             {"id":"{{{p}}}-esc","timestamp":{{{t}}},"v":1,"label":"\u001b[31mred"},
             {"id":"{{{p}}}-sur","timestamp":{{{t}}},"v":1,"label":"\ud800"},
             {"id":"{{{p}}}-meta","timestamp":{{{t}}},"v":1,"metadata":{"location":"hall\u0085"}},
             {"id":"{{{p}}}-\u0430","timestamp":{{{t}}},"v":1}]
            """));

        JsonAssert.Equal(new object[]
        {
            new { index = 0, error = "metric name contains the control character U+0000" },
            new { index = 1, error = "attribute 'label' contains the control character U+001B" },
            new { index = 2, error = "attribute 'label' is not valid text (invalid UTF-8 or a lone surrogate)" },
            new { index = 3, error = "metadata.location contains the control character U+0085" },
            new { index = 4, error = $"sensor id contains 'а' (U+0430): {IdRule}" },
        }, await RejectedAsync(response));
        await AssertNotStoredAsync($"{p}-nul", $"{p}-esc", $"{p}-sur", $"{p}-meta");

        // An operator's rule with a control character in its name is refused the same way, and not stored.
        await (await Operator.PostAsync("/api/v1/rules", Json(new
        {
            id = p, name = "bad\u0007name", severity = "minor", target = new { kind = "all" },
            condition = new { kind = "threshold", metric = "v", @operator = ">", value = 1 },
        }))).ExpectValidationProblemAsync("The rule is not valid", new Dictionary<string, string[]>
        {
            ["name"] = ["name contains the control character U+0007"],
        });
        await (await Operator.GetAsync($"/api/v1/rules/{p}")).ExpectAsync(HttpStatusCode.NotFound);
        await AssertUnharmedAsync(neighbour);
    }

    /// <summary>Any other text (every script, emoji, invisible and non-characters, markup, escapes) comes back exactly as sent.</summary>
    [Fact]
    public async Task Every_other_text_round_trips_exactly_through_the_api()
    {
        var neighbour = await factory.NeighbourAsync();
        var sensor = Ids.New("text");
        var t = factory.NextWindow() + 1_000;
        string[] texts = ["température", "湿度", "😀👍🏽", "\u2028x\u2029", "\uFEFFbom", "\uFFFE", "'\"\\/<>&%{}", "e\u0301", "שלום", "a\u200Bb", " spaced "];
        var reading = new Dictionary<string, object>
        {
            ["id"] = sensor,
            ["timestamp"] = t,
            ["metrics"] = texts.Take(4).Select((text, i) => (text, i)).ToDictionary(x => x.text, x => (object)x.i), // 4: this node's name limit
            ["metadata"] = new Dictionary<string, string> { ["location"] = texts[1], ["model"] = texts[2] },
        };
        foreach (var (text, i) in texts.Select((text, i) => (text, i)))
        {
            reading["attr" + i] = text;
        }
        await (await Device.PostAsync("/api/v1/telemetry", Json(reading))).ExpectAsync(HttpStatusCode.Accepted);
        await factory.CloseMinuteAsync(t);
        await factory.SettledAsync();

        var detail = await (await Operator.GetAsync($"/api/v1/sensors/{sensor}")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(texts.Take(4).Order(StringComparer.Ordinal), detail.GetProperty("latest").EnumerateObject().Select(m => m.Name).Order(StringComparer.Ordinal));
        Assert.Equal(texts, Enumerable.Range(0, texts.Length).Select(i => detail.GetProperty("attributes").GetProperty("attr" + i).GetString()));
        Assert.Equal((texts[1], texts[2]), (detail.GetProperty("metadata").GetProperty("location").GetString(), detail.GetProperty("metadata").GetProperty("model").GetString()));
        var minute = await (await Operator.GetAsync($"/api/v1/sensors/{sensor}/metrics?from={Iso(t - 1_000)}&to={Iso(t + 59_000)}&metric={Uri.EscapeDataString(texts[2])}"))
            .ExpectAsync(HttpStatusCode.OK);
        Assert.Equal((texts[2], 2.0), (minute.GetProperty("points")[0].GetProperty("metric").GetString(), minute.GetProperty("points")[0].GetProperty("sum").GetDouble()));
        var listed = await (await Operator.GetAsync($"/api/v1/sensors?search={Uri.EscapeDataString(texts[1])}")).ExpectAsync(HttpStatusCode.OK);
        Assert.Contains(listed.GetProperty("items").EnumerateArray(), i => i.GetProperty("id").GetString() == sensor);
        await AssertUnharmedAsync(neighbour);
    }

    [Fact]
    public async Task Client_errors_are_4xx_problems_gzip_is_decoded_and_a_stalled_body_times_out_as_408()
    {
        var neighbour = await factory.NeighbourAsync();
        var p = Ids.New("hc");
        var t = factory.NextWindow() + 1_000;

        // Query values of the wrong kind or range.
        await (await Operator.GetAsync("/api/v1/sensors?limit=abc")).ExpectValidationProblemAsync("Invalid query",
            new Dictionary<string, string[]> { ["limit"] = ["limit must be a whole number; 'abc' is not"] });
        await (await Operator.GetAsync("/api/v1/alerts?limit=99999999999")).ExpectValidationProblemAsync("Invalid query",
            new Dictionary<string, string[]> { ["limit"] = ["limit must be a whole number; '99999999999' is not"] });

        // Encodings: another Content-Encoding and another charset are 415; a gzip body is decoded and stored.
        var body = Encoding.UTF8.GetBytes($$$"""{"id":"{{{p}}}-gz","timestamp":{{{t}}},"v":7}""");
        var zstd = new ByteArrayContent(body);
        zstd.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        zstd.Headers.ContentEncoding.Add("zstd");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await Device.PostAsync("/api/v1/telemetry", zstd)).StatusCode);
        var utf16 = new ByteArrayContent(Encoding.Unicode.GetBytes($$$"""{"id":"{{{p}}}-16","timestamp":{{{t}}},"v":7}"""));
        utf16.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json; charset=utf-16");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await Device.PostAsync("/api/v1/telemetry", utf16)).StatusCode);
        using var gzipped = new MemoryStream();
        await using (var gzip = new GZipStream(gzipped, CompressionLevel.Fastest, leaveOpen: true))
        {
            await gzip.WriteAsync(body);
        }
        var gz = new ByteArrayContent(gzipped.ToArray());
        gz.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        gz.Headers.ContentEncoding.Add("gzip");
        await (await Device.PostAsync("/api/v1/telemetry", gz)).ExpectAsync(HttpStatusCode.Accepted);

        // A body that stops short of its Content-Length on a connection left open: 408 with a ProblemDetails body once
        // Kestrel's minimum data rate gives up on it (after its 5 s grace), nothing stored.
        using (var socket = new TcpClient())
        {
            await socket.ConnectAsync(factory.Address.Host, factory.Address.Port);
            var stream = socket.GetStream();
            var head = $"POST /api/v1/telemetry HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: {ApiFactory.DeviceKey}\r\n"
                + $"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"id\":\"{p}-short\",\"timestamp\":{t},";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var answer = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("HTTP/1.1 408 Request Timeout", answer, StringComparison.Ordinal);
            Assert.Contains("\"detail\":\"The request body arrived too slowly or stopped before the length its Content-Length header announced.\"",
                answer, StringComparison.Ordinal);
        }

        await factory.CloseMinuteAsync(t);
        await AssertNotStoredAsync($"{p}-16", $"{p}-short");
        await Eventually.Until(async () => (await Operator.GetAsync($"/api/v1/sensors/{p}-gz")).StatusCode == HttpStatusCode.OK, what: "the gzip reading");
        await AssertUnharmedAsync(neighbour);
    }

    [Fact]
    public async Task Of_ten_concurrent_acknowledgements_of_one_alert_exactly_one_succeeds()
    {
        var neighbour = await factory.NeighbourAsync();
        var sensor = Ids.New("hack");
        var rule = Ids.New("hack-rule");
        var t = factory.NextWindow() + 1_000;
        await (await Operator.PostAsync("/api/v1/rules", Json(new
        {
            id = rule, name = "Hostile ack", severity = "minor", target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "threshold", metric = "v", @operator = ">", value = 10 },
        }))).ExpectAsync(HttpStatusCode.Created);
        try
        {
            await (await Device.PostAsync("/api/v1/telemetry", Json($$$"""{"id":"{{{sensor}}}","timestamp":{{{t}}},"v":50}""")))
                .ExpectAsync(HttpStatusCode.Accepted);
            var alertId = (await Eventually.Json(async () =>
            {
                var alerts = await (await Operator.GetAsync($"/api/v1/alerts?ruleId={rule}")).ExpectAsync(HttpStatusCode.OK);
                return alerts.GetArrayLength() == 1 ? alerts[0] : null;
            }, what: "the alert")).GetProperty("id").GetString()!;

            var acks = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Operator.PostAsync($"/api/v1/alerts/{alertId}/ack", null)));

            Assert.Equal(1, acks.Count(a => a.StatusCode == HttpStatusCode.Accepted));
            Assert.Equal(9, acks.Count(a => a.StatusCode == HttpStatusCode.Conflict));
        }
        finally
        {
            await (await Operator.DeleteAsync($"/api/v1/rules/{rule}")).ExpectAsync(HttpStatusCode.NoContent);
        }
        await AssertUnharmedAsync(neighbour);
    }

    [Fact]
    public async Task Floods_meet_their_bounds_with_clear_4xx_and_store_nothing_past_them()
    {
        var neighbour = await factory.NeighbourAsync();
        var p = Ids.New("hb");
        var t = factory.NextWindow() + 1_000;

        // Metric names of one sensor: four, then a reading with a fifth is rejected.
        var names = await (await Device.PostAsync("/api/v1/telemetry", Json($$$"""
            [{"id":"{{{p}}}","timestamp":{{{t}}},"m1":1,"m2":2,"m3":3,"m4":4},
             {"id":"{{{p}}}","timestamp":{{{t + 1}}},"m1":1,"m5":5}]
            """))).ExpectAsync(HttpStatusCode.Accepted);
        JsonAssert.Equal(new
        {
            accepted = 1,
            rejected = new[] { new { index = 1, error = $"metric 'm5' would be a new metric of sensor '{p}', which has 4 already, its limit (Grains:MaxMetricNames)" } },
        }, names);

        // Rules: at most five in the cluster.
        var created = new List<string>();
        HttpResponseMessage? full = null;
        for (var i = 0; i < 6 && full is null; i++)
        {
            var response = await Operator.PostAsync("/api/v1/rules", Json(new
            {
                id = $"{p}-r{i}", name = $"Flood {i}", severity = "info", target = new { kind = "all" },
                condition = new { kind = "threshold", metric = "m1", @operator = ">", value = 1e9 },
            }));
            if (response.StatusCode == HttpStatusCode.Created)
            {
                created.Add($"{p}-r{i}");
            }
            else
            {
                full = response;
            }
        }
        Assert.NotNull(full);
        await full.ExpectProblemAsync(HttpStatusCode.Conflict, "Too many rules",
            "The cluster has 5 rules, its limit (Rules:MaxRules); nothing was stored. Delete a rule before creating another, or change an existing one with PUT.");
        foreach (var id in created)
        {
            await (await Operator.DeleteAsync($"/api/v1/rules/{id}")).ExpectAsync(HttpStatusCode.NoContent);
        }

        // Idempotency keys: three per caller.
        for (var i = 0; i < 3; i++)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/telemetry") { Content = Json($$$"""{"id":"{{{p}}}","timestamp":{{{t + 10 + i}}},"m1":1}""") };
            request.Headers.Add("Idempotency-Key", $"{p}-k{i}");
            await (await Device.SendAsync(request)).ExpectAsync(HttpStatusCode.Accepted);
        }
        var fourth = new HttpRequestMessage(HttpMethod.Post, "/api/v1/telemetry") { Content = Json($$$"""{"id":"{{{p}}}-idem","timestamp":{{{t}}},"m1":1}""") };
        fourth.Headers.Add("Idempotency-Key", $"{p}-k3");
        Assert.Equal(HttpStatusCode.TooManyRequests, (await Device.SendAsync(fourth)).StatusCode);

        // Live subscriptions: three per connection.
        await using (var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(factory.Address, "/hubs/live"), HttpTransportType.WebSockets, o =>
            {
                o.SkipNegotiation = true;
                o.AccessTokenProvider = () => Task.FromResult<string?>(ApiFactory.OperatorKey);
            })
            .Build())
        {
            await hub.StartAsync();
            for (var i = 0; i < 3; i++)
            {
                await hub.InvokeAsync("SubscribeSensor", $"{p}-s{i}");
            }
            var refused = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("SubscribeSensor", $"{p}-s3"));
            Assert.EndsWith("This connection already follows 3 sensors and devices, its limit (Live:MaxSubscriptionsPerConnection); unsubscribe from one first.",
                refused.Message, StringComparison.Ordinal);
        }

        await factory.CloseMinuteAsync(t);
        await AssertNotStoredAsync($"{p}-idem");
        await factory.SettledAsync();
        var detail = await (await Operator.GetAsync($"/api/v1/sensors/{p}")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(["m1", "m2", "m3", "m4"], detail.GetProperty("latest").EnumerateObject().Select(m => m.Name));

        // Rule preview cost: one sensor over two hours is 120 sensor-minutes, past the 100 allowed. The preview counts the
        // sensors the read store knows, so it waits until the sensor is listed there.
        await Eventually.Until(async () => (await (await Operator.GetAsync($"/api/v1/sensors?search={p}")).ExpectAsync(HttpStatusCode.OK))
            .GetProperty("items").EnumerateArray().Any(i => i.GetProperty("id").GetString() == p), what: $"sensor {p} listed");
        await (await Operator.PostAsync("/api/v1/rules/preview", Json(new
        {
            rule = new
            {
                name = "Preview flood", severity = "info", target = new { kind = "sensors", sensorIds = new[] { p } },
                condition = new { kind = "threshold", metric = "m1", on = "avg", @operator = ">", value = 1 },
            },
            from = Iso(t - 1_000),
            to = Iso(t - 1_000 + 120 * ApiFactory.MinuteMs),
        }))).ExpectValidationProblemAsync("The preview request is not valid", new Dictionary<string, string[]>
        {
            ["to"] = ["the preview would replay 1 sensors over 120 minutes (120 sensor-minutes); at most 100 (Rules:PreviewMaxSensorMinutes): "
                + "shorten the range or narrow the target"],
        });

        await AssertUnharmedAsync(neighbour);
    }

    [Fact]
    public async Task A_key_flooding_readings_gets_429_while_other_keys_post_as_usual()
    {
        var neighbour = await factory.NeighbourAsync();
        var p = Ids.New("hr");
        var t = factory.NextWindow() + 1_000;
        var flood = factory.Raw(HostileApiFactory.FloodKey);
        string Body(string sensor, int count) =>
            "[" + string.Join(",", Enumerable.Range(0, count).Select(i => $$$"""{"id":"{{{sensor}}}","timestamp":{{{t + i}}},"v":1}""")) + "]";

        HttpResponseMessage? limited = null;
        for (var i = 0; i < 5 && limited is null; i++)
        {
            var response = await flood.PostAsync("/api/v1/telemetry", Json(Body($"{p}-flood{i}", HostileApiFactory.MaxItems)));
            if (response.StatusCode != HttpStatusCode.Accepted)
            {
                limited = response;
            }
        }

        Assert.NotNull(limited);
        var problem = await limited.ExpectProblemAsync(HttpStatusCode.TooManyRequests, "Too many requests", null);
        Assert.StartsWith("This API key posted more readings than its limit of 1000 per second (bursts of 2000) allows. Nothing of this request was stored;",
            problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(limited.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), $"Retry-After {limited.Headers.RetryAfter}");

        // Another key is not slowed by it.
        await (await Device.PostAsync("/api/v1/telemetry", Json(Body($"{p}-other", 10)))).ExpectAsync(HttpStatusCode.Accepted);
        await factory.CloseMinuteAsync(t);
        await AssertUnharmedAsync(neighbour);
    }

    [Fact]
    public async Task Wrong_keys_of_any_length_get_the_same_401()
    {
        var neighbour = await factory.NeighbourAsync();
        foreach (var key in new[] { "x", ApiFactory.OperatorKey[..^1], ApiFactory.OperatorKey + "x", new string('k', 4096) })
        {
            await (await factory.Raw(key).GetAsync("/api/v1/rules")).ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "The API key is not valid.");
        }
        await AssertUnharmedAsync(neighbour);
    }
}
