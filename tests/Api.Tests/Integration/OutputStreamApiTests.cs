using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Grains.Abstractions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Runtime.InMemory;
using Runtime.Outputs;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// The output streams of embedded mode through GET /api/v1/outputs/{stream}: a closed minute aggregate, the alert events
/// and the command of a rule appear once each, with their deterministic ids and exact bodies; bad queries are refused.
/// </summary>
public sealed class OutputStreamApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    [Fact]
    public async Task A_closed_minute_its_alert_events_and_the_command_appear_once_each_with_exact_bodies()
    {
        var window = factory.NextWindow();
        var sensor = Ids.New("out");
        var rule = Ids.New("out-rule");
        var created = await (await _operator.PostAsync("/api/v1/rules", Json(new
        {
            id = rule,
            name = "Dry",
            severity = "minor",
            target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "threshold", metric = "hum", on = "raw", @operator = "<", value = 50 },
            controlAction = new { command = "irrigate", parameters = new Dictionary<string, string> { ["minutes"] = "5" } },
        }))).ExpectAsync(HttpStatusCode.Created);
        var version = created.GetProperty("version").GetInt64();
        var body = $$$"""[{"id":"{{{sensor}}}","timestamp":{{{window + 1_000}}},"metrics":{"hum":49}},{"id":"{{{sensor}}}","timestamp":{{{window + 5_000}}},"metrics":{"hum":55}}]""";
        await (await _operator.PostAsync("/api/v1/telemetry", Json(body))).ExpectAsync(HttpStatusCode.Accepted);
        await factory.CloseMinuteAsync(window);

        var alertId = AlertIds.For(rule, version, sensor, window + 1_000);
        var aggregates = await RecordsAsync("aggregates", r => r.GetProperty("body").GetProperty("sensorId").GetString() == sensor, 1);
        var alerts = await RecordsAsync("alerts", r => r.GetProperty("body").GetProperty("alert").GetProperty("sensorId").GetString() == sensor, 2);
        var commands = await RecordsAsync("commands", r => r.GetProperty("body").GetProperty("deviceId").GetString() == sensor, 1);

        Assert.Equal($"{sensor}@{window}", aggregates[0].GetProperty("id").GetString());
        Assert.Equal("aggregate", aggregates[0].GetProperty("type").GetString());
        JsonAssert.Equal(new
        {
            id = $"{sensor}@{window}",
            sensorId = sensor,
            minute = Iso(window),
            minuteMs = window,
            metrics = new { hum = new { count = 2, min = 49, max = 55, sum = 104, avg = 52, first = 49, last = 55 } },
        }, aggregates[0].GetProperty("body"));

        Assert.Equal([$"{alertId}/Opened", $"{alertId}/Resolved"], alerts.Select(a => a.GetProperty("id").GetString()!).ToArray());
        Assert.Equal(["alert.opened", "alert.resolved"], alerts.Select(a => a.GetProperty("type").GetString()!).ToArray());
        Assert.True(alerts[0].GetProperty("offset").GetInt64() < alerts[1].GetProperty("offset").GetInt64());
        var alert = new
        {
            id = alertId,
            ruleId = rule,
            ruleName = "Dry",
            ruleVersion = version,
            sensorId = sensor,
            severity = "minor",
            state = "open",
            startedAt = Iso(window + 1_000),
            openedAt = Iso(window + 1_000),
            value = 49,
            threshold = 50,
            message = "49 < 50",
        };
        JsonAssert.Equal(new { id = $"{alertId}/Opened", kind = "opened", alert }, alerts[0].GetProperty("body"));
        JsonAssert.Equal(new
        {
            id = $"{alertId}/Resolved",
            kind = "resolved",
            alert = alert with { state = "resolved" },
        }, RemoveResolution(alerts[1].GetProperty("body"), out var resolvedAt, out var reason));
        Assert.Equal(Iso(window + 5_000), resolvedAt);
        Assert.Equal("condition cleared", reason);

        JsonAssert.Equal(new
        {
            id = $"{alertId}/open",
            deviceId = sensor,
            command = "irrigate",
            parameters = new Dictionary<string, string> { ["minutes"] = "5" },
            ruleId = rule,
            alertId,
            createdAt = Iso(window + 1_000),
        }, commands[0].GetProperty("body"));
    }

    [Fact]
    public async Task Bad_queries_are_400_with_the_field_and_devices_are_refused()
    {
        await (await _operator.GetAsync("/api/v1/outputs/weather?offset=-1&limit=0"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]>
            {
                ["stream"] = ["stream must be one of aggregates, alerts, commands"],
                ["offset"] = ["offset must be 0 or more"],
                ["limit"] = ["limit must be between 1 and 1000"],
            });
        await (await _operator.GetAsync("/api/v1/outputs/alerts?limit=1001"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]> { ["limit"] = ["limit must be between 1 and 1000"] });
        await (await factory.Device().GetAsync("/api/v1/outputs/alerts")).ExpectAsync(HttpStatusCode.Forbidden);

        // Past the end: no records, and the next offset to ask is the one asked.
        var end = (await (await _operator.GetAsync("/api/v1/outputs/commands?offset=0&limit=1")).ExpectAsync(HttpStatusCode.OK)).GetProperty("end").GetInt64();
        JsonAssert.Equal(new { stream = "commands", offset = end + 5, next = end + 5, end, records = Array.Empty<object>() },
            await (await _operator.GetAsync($"/api/v1/outputs/commands?offset={end + 5}")).ExpectAsync(HttpStatusCode.OK));
    }

    /// <summary>Reads the whole stream page by page until <paramref name="count"/> records match; each id appears at most once.</summary>
    private async Task<JsonElement[]> RecordsAsync(string stream, Func<JsonElement, bool> match, int count)
    {
        var records = await Eventually.Value(async () =>
        {
            var found = new List<JsonElement>();
            long offset = 0;
            while (true)
            {
                var page = await (await _operator.GetAsync($"/api/v1/outputs/{stream}?offset={offset}&limit=1000")).ExpectAsync(HttpStatusCode.OK);
                var records = page.GetProperty("records").EnumerateArray().ToArray();
                found.AddRange(records.Where(match));
                offset = page.GetProperty("next").GetInt64();
                if (records.Length == 0 || offset >= page.GetProperty("end").GetInt64())
                {
                    break;
                }
            }
            Assert.Equal(found.Count, found.Select(r => r.GetProperty("id").GetString()).Distinct().Count());
            return found.Count >= count ? found.ToArray() : null;
        }, what: $"{count} records of {stream}");
        Assert.Equal(count, records.Length);
        return records;
    }

    private static JsonElement RemoveResolution(JsonElement body, out string? resolvedAt, out string? reason)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(body.GetRawText())!;
        var alert = node["alert"]!.AsObject();
        resolvedAt = alert["resolvedAt"]?.GetValue<string>();
        reason = alert["resolvedReason"]?.GetValue<string>();
        alert.Remove("resolvedAt");
        alert.Remove("resolvedReason");
        return JsonDocument.Parse(node.ToJsonString()).RootElement;
    }
}

/// <summary>The Api of <see cref="ApiFactory"/> keeping the alert and command streams only.</summary>
public sealed class NoAggregatesApiFactory : ApiFactory
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Outputs:Streams", "alerts,commands");
    }
}

/// <summary>
/// A cluster that does not keep the aggregates stream (Outputs:Streams): a closed minute reaches the read models and not
/// the stream, and reading the stream is a 404 that says why.
/// </summary>
public sealed class OutputStreamNotKeptApiTests(NoAggregatesApiFactory factory) : IClassFixture<NoAggregatesApiFactory>
{
    [Fact]
    public async Task A_closed_minute_reaches_the_read_models_not_the_stream_and_reading_the_stream_is_404()
    {
        var window = factory.NextWindow();
        var sensor = Ids.New("not-kept");
        var body = $$$"""[{"id":"{{{sensor}}}","timestamp":{{{window + 1_000}}},"metrics":{"t":21.5}}]""";
        await (await factory.Operator().PostAsync("/api/v1/telemetry", Json(body))).ExpectAsync(HttpStatusCode.Accepted);
        await factory.CloseMinuteAsync(window);
        var from = Uri.EscapeDataString(DateTimeOffset.FromUnixTimeMilliseconds(ApiFactory.MinuteOf(window)).ToString("O"));
        var to = Uri.EscapeDataString(DateTimeOffset.FromUnixTimeMilliseconds(ApiFactory.MinuteOf(window) + ApiFactory.MinuteMs).ToString("O"));
        await Eventually.Json(async () =>
        {
            var json = await factory.Operator().GetFromJsonAsync<JsonElement>($"/api/v1/sensors/{sensor}/metrics?from={from}&to={to}");
            return json.GetProperty("points").GetArrayLength() == 1 ? json : null;
        }, what: "the closed minute in the read models");

        var kept = factory.Services.GetRequiredService<InMemoryOutputStreams>();
        Assert.Equal(0, (await kept.ReadAsync(OutputStream.Aggregates, 0, 10, CancellationToken.None)).End);
        await (await factory.Operator().GetAsync("/api/v1/outputs/aggregates")).ExpectProblemAsync(HttpStatusCode.NotFound,
            "Output stream not kept", "This cluster keeps the output streams alerts, commands (Outputs:Streams); 'aggregates' is not one of them.");
        await (await factory.Operator().GetAsync("/api/v1/outputs/alerts")).ExpectAsync(HttpStatusCode.OK);
    }
}
