using System.Net;
using System.Text.Json;
using Grains.Abstractions;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>Rules firing from HTTP telemetry: alerts (query, acknowledge, resolve) and device commands.</summary>
public sealed class AlertApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    /// <summary>Creates a rule on humidity for the given sensors and returns its version.</summary>
    private async Task<long> CreateRuleAsync(string ruleId, string[] sensorIds, string on = "raw", object? controlAction = null, string name = "Humidity low")
    {
        var body = await (await _operator.PostAsync("/api/v1/rules", Json(new
        {
            id = ruleId,
            name,
            severity = "major",
            target = new { kind = "sensors", sensorIds },
            condition = new { kind = "threshold", metric = "hum", on, @operator = "<", value = 50 },
            controlAction,
        }))).ExpectAsync(HttpStatusCode.Created);
        return body.GetProperty("version").GetInt64();
    }

    private async Task PostReadingsAsync(HttpClient client, params (string Id, long TimeMs, double Hum)[] readings)
    {
        var body = "[" + string.Join(",", readings.Select(r => $$$"""{"id":"{{{r.Id}}}","timestamp":{{{r.TimeMs}}},"metrics":{"hum":{{{r.Hum}}}}}""")) + "]";
        var result = await (await client.PostAsync("/api/v1/telemetry", Json(body))).ExpectAsync(HttpStatusCode.Accepted);
        JsonAssert.Equal(new { accepted = readings.Length, rejected = Array.Empty<object>() }, result);
    }

    /// <summary>Polls GET /alerts?{query} until it returns <paramref name="count"/> alerts that all satisfy <paramref name="ready"/>.</summary>
    private Task<JsonElement> AlertsAsync(string query, int count = 1, Func<JsonElement, bool>? ready = null) =>
        Eventually.Json(async () =>
        {
            var alerts = await (await _operator.GetAsync($"/api/v1/alerts?{query}")).ExpectAsync(HttpStatusCode.OK);
            return alerts.GetArrayLength() == count && alerts.EnumerateArray().All(a => ready?.Invoke(a) ?? true) ? alerts : null;
        }, what: $"alerts?{query}");

    private Task<JsonElement> CommandsAsync(HttpClient client, string deviceId) =>
        Eventually.Json(async () =>
        {
            var commands = await (await client.GetAsync($"/api/v1/devices/{deviceId}/commands")).ExpectAsync(HttpStatusCode.OK);
            return commands.GetArrayLength() > 0 ? commands : null;
        }, what: $"commands of {deviceId}");

    [Fact]
    public async Task RuleFiresFromTelemetry_AlertIsAcknowledged_ThenResolves()
    {
        var t0 = factory.NextWindow() + 5_000;
        var sensor = Ids.New("hum");
        var other = Ids.New("hum");
        var rule = Ids.New("low-hum");
        var version = await CreateRuleAsync(rule, [sensor]);

        // 'other' breaks the condition too, but the rule does not target it.
        await PostReadingsAsync(_operator, (sensor, t0, 49), (other, t0, 10));

        var alertId = AlertIds.For(rule, version, sensor, t0);
        object Alert(bool acknowledged = false, DateTimeOffset? acknowledgedAt = null, string state = "open", long? resolvedAtMs = null,
            string? resolvedReason = null) => new
        {
            id = alertId,
            ruleId = rule,
            ruleName = "Humidity low",
            sensorId = sensor,
            severity = "major",
            state,
            acknowledged,
            startedAt = T(t0),
            openedAt = T(t0),
            resolvedAt = resolvedAtMs is { } r ? T(r) : (DateTimeOffset?)null,
            resolvedReason,
            acknowledgedAt,
            acknowledgedBy = acknowledged ? "dev-operator" : null,
            value = 49,
            threshold = 50,
            message = "49 < 50",
        };

        var open = await AlertsAsync($"state=open&ruleId={rule}");
        JsonAssert.Equal(new[] { Alert() }, open);
        JsonAssert.Equal(new[] { Alert() }, await AlertsAsync($"sensorId={sensor}"));
        JsonAssert.Equal(new[] { Alert() }, await AlertsAsync($"ruleId={rule}&from={Iso(t0)}&to={Iso(t0 + 1)}"));
        await AlertsAsync($"ruleId={rule}&from={Iso(t0 + 1)}", count: 0);
        await AlertsAsync($"ruleId={rule}&to={Iso(t0)}", count: 0);
        await AlertsAsync($"state=resolved&ruleId={rule}", count: 0);
        await AlertsAsync($"sensorId={other}", count: 0);

        var before = DateTimeOffset.UtcNow;
        // The answer is the alert as the acknowledgement left it (the rule grain applied it before answering).
        var ack = await _operator.PostAsync($"/api/v1/alerts/{alertId}/ack", null);
        var answered = await ack.ExpectAsync(HttpStatusCode.Accepted);
        var acknowledgedAt = answered.GetProperty("acknowledgedAt").GetDateTimeOffset();
        Assert.InRange(acknowledgedAt, before.AddMilliseconds(-1), DateTimeOffset.UtcNow);
        JsonAssert.Equal(Alert(acknowledged: true, acknowledgedAt: acknowledgedAt), answered);
        Assert.Equal($"/api/v1/alerts?ruleId={rule}", ack.Headers.Location?.OriginalString);

        var acknowledged = await AlertsAsync($"ruleId={rule}", ready: a => a.GetProperty("acknowledged").GetBoolean());
        JsonAssert.Equal(new[] { Alert(acknowledged: true, acknowledgedAt: acknowledgedAt) }, acknowledged);

        await (await _operator.PostAsync($"/api/v1/alerts/{alertId}/ack", null))
            .ExpectProblemAsync(HttpStatusCode.Conflict, "Alert acknowledged", $"Alert '{alertId}' was already acknowledged by dev-operator.");

        // The condition clears: the alert resolves at the event time of the clearing reading.
        await PostReadingsAsync(_operator, (sensor, t0 + 5_000, 55));
        var resolved = await AlertsAsync($"state=resolved&ruleId={rule}");
        JsonAssert.Equal(new[] { Alert(acknowledged: true, acknowledgedAt: acknowledgedAt, state: "resolved", resolvedAtMs: t0 + 5_000, resolvedReason: "condition cleared") },
            resolved);
        await AlertsAsync($"state=open&ruleId={rule}", count: 0);

        await (await _operator.PostAsync($"/api/v1/alerts/{alertId}/ack", null))
            .ExpectProblemAsync(HttpStatusCode.Conflict, "Alert resolved", $"Alert '{alertId}' was resolved; only open alerts can be acknowledged.");

        // Breaking the rule again is a new incident with a new id.
        await PostReadingsAsync(_operator, (sensor, t0 + 10_000, 48));
        var again = await AlertsAsync($"state=open&ruleId={rule}");
        Assert.Equal(AlertIds.For(rule, version, sensor, t0 + 10_000), again[0].GetProperty("id").GetString());
        Assert.Equal("48 < 50", again[0].GetProperty("message").GetString());
        Assert.False(again[0].GetProperty("acknowledged").GetBoolean());
    }

    [Fact]
    public async Task ConcurrentAcks_OfOneOpenAlert_ExactlyOneSucceeds_TheOthersGet409()
    {
        var t0 = factory.NextWindow() + 5_000;
        var sensor = Ids.New("hum");
        var rule = Ids.New("low-hum");
        var version = await CreateRuleAsync(rule, [sensor]);
        await PostReadingsAsync(_operator, (sensor, t0, 49));
        var alertId = AlertIds.For(rule, version, sensor, t0);
        await AlertsAsync($"state=open&ruleId={rule}");

        // Ten operators acknowledge at once: every request passes the read model's check (the alert is open and not
        // acknowledged there), so the rule grain decides: one acknowledgement, nine conflicts.
        var answers = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => _operator.PostAsync($"/api/v1/alerts/{alertId}/ack", null)));

        Assert.Equal(1, answers.Count(a => a.StatusCode == HttpStatusCode.Accepted));
        foreach (var conflict in answers.Where(a => a.StatusCode != HttpStatusCode.Accepted))
        {
            await conflict.ExpectProblemAsync(HttpStatusCode.Conflict, "Alert acknowledged", $"Alert '{alertId}' was already acknowledged by dev-operator.");
        }

        var acknowledged = await AlertsAsync($"ruleId={rule}", ready: a => a.GetProperty("acknowledged").GetBoolean());
        Assert.Equal("dev-operator", acknowledged[0].GetProperty("acknowledgedBy").GetString());
    }

    [Fact]
    public async Task Ack_UnknownAlert_Is404_AndBadQueries_Are400()
    {
        await (await _operator.PostAsync("/api/v1/alerts/0123456789abcdef/ack", null))
            .ExpectProblemAsync(HttpStatusCode.NotFound, "Alert not found", "There is no alert with id '0123456789abcdef'.");

        await (await _operator.GetAsync("/api/v1/alerts?state=closed&from=yesterday&limit=0"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]>
            {
                ["state"] = ["state must be 'open' or 'resolved'"],
                ["from"] = ["from must be an ISO-8601 time such as 2026-11-22T10:00:00Z, not 'yesterday'"],
                ["limit"] = ["limit must be between 1 and 1000"],
            });
    }

    [Fact]
    public async Task AggregateRule_FiresWhenTheMinuteCloses()
    {
        var window = factory.NextWindow();
        var sensor = Ids.New("avg");
        var rule = Ids.New("avg-hum");
        var version = await CreateRuleAsync(rule, [sensor], on: "avg", name: "Humid minute");
        await PostReadingsAsync(_operator, (sensor, window + 1_000, 49), (sensor, window + 2_000, 50));
        await AlertsAsync($"ruleId={rule}", count: 0);

        await factory.CloseMinuteAsync(window);
        var alerts = await AlertsAsync($"state=open&ruleId={rule}");
        JsonAssert.Equal(new[]
        {
            new
            {
                id = AlertIds.For(rule, version, sensor, window),
                ruleId = rule,
                ruleName = "Humid minute",
                sensorId = sensor,
                severity = "major",
                state = "open",
                acknowledged = false,
                startedAt = T(window),
                openedAt = T(window),
                value = 49.5,
                threshold = 50,
                message = "avg 49.5 < 50",
            },
        }, alerts);
    }

    [Fact]
    public async Task DeletingARule_ResolvesItsOpenAlerts()
    {
        var t0 = factory.NextWindow() + 1_000;
        var sensor = Ids.New("del");
        var rule = Ids.New("del-rule");
        await CreateRuleAsync(rule, [sensor]);
        await PostReadingsAsync(_operator, (sensor, t0, 1));
        await AlertsAsync($"state=open&ruleId={rule}");

        await (await _operator.DeleteAsync($"/api/v1/rules/{rule}")).ExpectAsync(HttpStatusCode.NoContent);
        var resolved = await AlertsAsync($"state=resolved&ruleId={rule}");
        Assert.Equal("rule deleted", resolved[0].GetProperty("resolvedReason").GetString());
    }

    [Fact]
    public async Task ControlAction_QueuesACommand_ReturnedOnceThenMarkedDelivered()
    {
        var t0 = factory.NextWindow() + 3_000;
        var sensor = Ids.New("field");
        var valve = Ids.New("valve");
        var irrigate = Ids.New("irrigate");
        var close = Ids.New("close-valve");
        var v1 = await CreateRuleAsync(irrigate, [sensor], controlAction: new { command = "irrigate", parameters = new Dictionary<string, string> { ["minutes"] = "5" } });
        var v2 = await CreateRuleAsync(close, [sensor], controlAction: new { command = "close", deviceId = valve });

        await PostReadingsAsync(factory.Device(), (sensor, t0, 42));

        var device = factory.Device();
        var irrigateAlert = AlertIds.For(irrigate, v1, sensor, t0);
        var commands = await CommandsAsync(device, sensor);
        JsonAssert.Equal(new[]
        {
            new
            {
                id = irrigateAlert + "/open",
                deviceId = sensor,
                command = "irrigate",
                parameters = new Dictionary<string, string> { ["minutes"] = "5" },
                ruleId = irrigate,
                alertId = irrigateAlert,
                createdAt = T(t0),
            },
        }, commands);
        JsonAssert.Equal(Array.Empty<object>(), await (await device.GetAsync($"/api/v1/devices/{sensor}/commands")).ExpectAsync(HttpStatusCode.OK));

        // The other rule commands another device; operators may read any device's commands.
        var closeAlert = AlertIds.For(close, v2, sensor, t0);
        JsonAssert.Equal(new[]
        {
            new { id = closeAlert + "/open", deviceId = valve, command = "close", ruleId = close, alertId = closeAlert, createdAt = T(t0) },
        }, await CommandsAsync(_operator, valve));
        JsonAssert.Equal(Array.Empty<object>(), await (await _operator.GetAsync($"/api/v1/devices/{valve}/commands")).ExpectAsync(HttpStatusCode.OK));
        JsonAssert.Equal(Array.Empty<object>(), await (await device.GetAsync($"/api/v1/devices/{Ids.New("idle")}/commands")).ExpectAsync(HttpStatusCode.OK));
    }

    [Fact]
    public async Task SensorCommandHistory_ListsSentCommandsNewestFirst_WithTheirDeliveryTime_AndChangesNothing()
    {
        var t0 = factory.NextWindow() + 2_000;
        var sensor = Ids.New("pump");
        var rule = Ids.New("pump-rule");
        var version = await CreateRuleAsync(rule, [sensor], controlAction: new { command = "pump", parameters = new Dictionary<string, string> { ["litres"] = "3" } });
        // Opens, resolves, opens again: two commands.
        await PostReadingsAsync(factory.Device(), (sensor, t0, 42), (sensor, t0 + 1_000, 60), (sensor, t0 + 2_000, 40));

        var first = AlertIds.For(rule, version, sensor, t0);
        var second = AlertIds.For(rule, version, sensor, t0 + 2_000);
        var history = await Eventually.Json(async () =>
        {
            // 404 until the sensor's first readings are applied.
            var response = await _operator.GetAsync($"/api/v1/sensors/{sensor}/commands");
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
            var list = await response.ExpectAsync(HttpStatusCode.OK);
            return list.GetArrayLength() == 2 ? list : null;
        }, what: $"two commands in the history of {sensor}");
        var parameters = new Dictionary<string, string> { ["litres"] = "3" };
        JsonAssert.Equal(new[]
        {
            new { id = second + "/open", deviceId = sensor, command = "pump", parameters, ruleId = rule, alertId = second, createdAt = T(t0 + 2_000) },
            new { id = first + "/open", deviceId = sensor, command = "pump", parameters, ruleId = rule, alertId = first, createdAt = T(t0) },
        }, history);
        JsonAssert.Equal(new[] { history[0] }, await (await _operator.GetAsync($"/api/v1/sensors/{sensor}/commands?limit=1")).ExpectAsync(HttpStatusCode.OK));

        // Reading the history delivered nothing: the device still gets both, oldest first; then the history has delivery times.
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        var taken = await (await factory.Device().GetAsync($"/api/v1/devices/{sensor}/commands")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal([first + "/open", second + "/open"], taken.EnumerateArray().Select(c => c.GetProperty("id").GetString()!).ToArray());
        var after = DateTimeOffset.UtcNow.AddSeconds(1);
        var delivered = await (await _operator.GetAsync($"/api/v1/sensors/{sensor}/commands")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal([second + "/open", first + "/open"], delivered.EnumerateArray().Select(c => c.GetProperty("id").GetString()!).ToArray());
        Assert.All(delivered.EnumerateArray(), c => Assert.InRange(c.GetProperty("deliveredAt").GetDateTimeOffset(), before, after));

        await (await _operator.GetAsync($"/api/v1/sensors/{sensor}/commands?limit=0"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]> { ["limit"] = ["limit must be between 1 and 500"] });
        var unknown = Ids.New("nobody");
        await (await _operator.GetAsync($"/api/v1/sensors/{unknown}/commands"))
            .ExpectProblemAsync(HttpStatusCode.NotFound, "Sensor not found", $"No reading of sensor '{unknown}' has been received.");
        await (await factory.Device().GetAsync($"/api/v1/sensors/{sensor}/commands")).ExpectAsync(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task RestrictedDeviceKey_ActsOnlyForItsOwnDevice()
    {
        var t0 = factory.NextWindow() + 1_000;
        var own = factory.RestrictedDeviceId;
        var foreign = Ids.New("foreign");
        var restricted = factory.Client(ApiFactory.RestrictedDeviceKey);
        var rule = Ids.New("own-rule");
        var version = await CreateRuleAsync(rule, [own, foreign], controlAction: new { command = "beep" });

        var mixed = await (await restricted.PostAsync("/api/v1/telemetry", Json($$$"""
            [{"id":"{{{own}}}","timestamp":{{{t0}}},"hum":30},{"id":"{{{foreign}}}","timestamp":{{{t0}}},"hum":30}]
            """))).ExpectAsync(HttpStatusCode.Accepted);
        JsonAssert.Equal(new
        {
            accepted = 1,
            rejected = new[] { new { index = 1, error = $"this API key may not post readings for sensor '{foreign}'" } },
        }, mixed);

        var onlyForeign = await (await restricted.PostAsync("/api/v1/telemetry", NdJson($$$"""
            {"deviceId":"{{{foreign}}}","timestamp":{{{t0}}},"hum":30}
            {"id":"{{{foreign}}}","timestamp":{{{t0}}}}
            """))).ExpectProblemAsync(HttpStatusCode.BadRequest, "No valid reading", "All 2 readings were rejected; see 'rejected'.");
        JsonAssert.Equal(new[]
        {
            new { index = 0, error = $"this API key may not post readings for sensor '{foreign}'" },
            new { index = 1, error = "reading has no metrics" },
        }, onlyForeign.GetProperty("rejected"));

        var alertId = AlertIds.For(rule, version, own, t0);
        JsonAssert.Equal(new[] { new { id = alertId + "/open", deviceId = own, command = "beep", ruleId = rule, alertId, createdAt = T(t0) } },
            await CommandsAsync(restricted, own));
        await (await restricted.GetAsync($"/api/v1/devices/{foreign}/commands"))
            .ExpectProblemAsync(HttpStatusCode.Forbidden, "Forbidden", $"This API key may not read the commands of device '{foreign}'.");

        await factory.SettledAsync();
        await AlertsAsync($"ruleId={rule}&sensorId={own}");
        await AlertsAsync($"ruleId={rule}&sensorId={foreign}", count: 0);
        await (await _operator.GetAsync($"/api/v1/sensors/{foreign}")).ExpectAsync(HttpStatusCode.NotFound);
        await (await restricted.GetAsync("/api/v1/rules"))
            .ExpectProblemAsync(HttpStatusCode.Forbidden, "Forbidden", "This API key has the role 'device', which may not use GET /api/v1/rules.");
    }
}
