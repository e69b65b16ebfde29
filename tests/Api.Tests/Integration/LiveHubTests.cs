using System.Net;
using System.Text.Json;
using Grains.Abstractions;
using Microsoft.AspNetCore.SignalR;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// Issue 2 item 10: a client connects to /hubs/live as the dashboard does (SignalR client, WebSockets), posts
/// readings that break a rule and receives the alert event, then the closed minute of a subscribed sensor; a device
/// connection receives its commands.
/// </summary>
public sealed class LiveHubTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    private Task<LiveHubConnection> ConnectAsync(string key) => LiveHubConnection.ConnectAsync(factory.Server, key);

    private async Task<long> CreateRuleAsync(string ruleId, string sensorId, object? controlAction = null)
    {
        var body = await (await _operator.PostAsync("/api/v1/rules", Json(new
        {
            id = ruleId,
            name = "Humidity low",
            severity = "critical",
            target = new { kind = "sensors", sensorIds = new[] { sensorId } },
            condition = new { kind = "threshold", metric = "hum", @operator = "<", value = 50 },
            controlAction,
        }))).ExpectAsync(HttpStatusCode.Created);
        return body.GetProperty("version").GetInt64();
    }

    private async Task PostAsync(HttpClient client, string body) =>
        await (await client.PostAsync("/api/v1/telemetry", Json(body))).ExpectAsync(HttpStatusCode.Accepted);

    [Fact]
    public async Task Operator_ReceivesAlertEvents_AndTheAggregatesOfSubscribedSensorsOnly()
    {
        var window = factory.NextWindow();
        var t0 = window + 5_000;
        var sensor = Ids.New("live");
        var other = Ids.New("live-other");
        var rule = Ids.New("live-rule");

        await using var first = await ConnectAsync(ApiFactory.OperatorKey);
        await using var second = await ConnectAsync(ApiFactory.OperatorKey);
        await first.InvokeAsync("SubscribeSensor", sensor);
        await second.InvokeAsync("SubscribeSensor", other);

        var version = await CreateRuleAsync(rule, sensor);
        await PostAsync(_operator, $$$"""
            [{"id":"{{{sensor}}}","timestamp":{{{t0}}},"metrics":{"hum":49,"temp":21.5}},
             {"id":"{{{sensor}}}","timestamp":{{{t0 + 20_000}}},"metrics":{"hum":47,"temp":22.5}},
             {"id":"{{{other}}}","timestamp":{{{t0}}},"metrics":{"hum":70}}]
            """);

        // The alert goes to every operator connection, subscribed or not.
        var alertId = AlertIds.For(rule, version, sensor, t0);
        object Alert(string state = "open", bool acknowledged = false, string? resolvedReason = null, long? resolvedAtMs = null,
            DateTimeOffset? acknowledgedAt = null) => new
        {
            id = alertId,
            ruleId = rule,
            ruleName = "Humidity low",
            sensorId = sensor,
            severity = "critical",
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
        foreach (var connection in new[] { first, second })
        {
            var opened = await connection.WaitForAsync("alert", e => e.GetProperty("alert").GetProperty("ruleId").GetString() == rule);
            JsonAssert.Equal(new { eventId = alertId + "/Opened", kind = "opened", alert = Alert() }, opened);
        }

        // Closing the minute sends its aggregate to the connections subscribed to that sensor.
        await factory.CloseMinuteAsync(window);
        var aggregate = await first.WaitForAsync("aggregate", e => e.GetProperty("sensorId").GetString() == sensor);
        JsonAssert.Equal(new
        {
            eventId = $"{sensor}@{window}",
            sensorId = sensor,
            minute = T(window),
            metrics = new[]
            {
                new { metric = "hum", count = 2, min = 47.0, max = 49.0, sum = 96.0, avg = 48.0, first = 49.0, last = 47.0 },
                new { metric = "temp", count = 2, min = 21.5, max = 22.5, sum = 44.0, avg = 22.0, first = 21.5, last = 22.5 },
            },
        }, aggregate);
        var otherAggregate = await second.WaitForAsync("aggregate", e => e.GetProperty("sensorId").GetString() == other);
        JsonAssert.Equal(new
        {
            eventId = $"{other}@{window}",
            sensorId = other,
            minute = T(window),
            metrics = new[] { new { metric = "hum", count = 1, min = 70.0, max = 70.0, sum = 70.0, avg = 70.0, first = 70.0, last = 70.0 } },
        }, otherAggregate);

        // Acknowledged: every operator gets it. Events reach a connection in the order they were published, so once
        // both have it, neither can still receive the other sensor's aggregate.
        var before = DateTimeOffset.UtcNow;
        await Eventually.Until(async () => (await _operator.PostAsync($"/api/v1/alerts/{alertId}/ack", null)).StatusCode == HttpStatusCode.Accepted,
            what: "the alert in the read store, acknowledged");
        foreach (var connection in new[] { first, second })
        {
            var acknowledged = await connection.WaitForAsync("alert", e => e.GetProperty("kind").GetString() == "acknowledged");
            var at = acknowledged.GetProperty("alert").GetProperty("acknowledgedAt").GetDateTimeOffset();
            Assert.InRange(at, before.AddMilliseconds(-1), DateTimeOffset.UtcNow);
            JsonAssert.Equal(new { eventId = alertId + "/Acknowledged", kind = "acknowledged", alert = Alert(acknowledged: true, acknowledgedAt: at) },
                acknowledged);
        }
        Assert.Equal([sensor], first.Events("aggregate").Select(e => e.GetProperty("sensorId").GetString()));
        Assert.Equal([other], second.Events("aggregate").Select(e => e.GetProperty("sensorId").GetString()));

        // Cleared in a later minute (a reading of the closed minute would be late and evaluate no rule): resolved.
        await PostAsync(_operator, $$$"""{"id":"{{{sensor}}}","timestamp":{{{window + 120_000}}},"metrics":{"hum":55}}""");
        var resolved = await first.WaitForAsync("alert", e => e.GetProperty("kind").GetString() == "resolved");
        var ackAt = resolved.GetProperty("alert").GetProperty("acknowledgedAt").GetDateTimeOffset();
        JsonAssert.Equal(new
        {
            eventId = alertId + "/Resolved",
            kind = "resolved",
            alert = Alert("resolved", acknowledged: true, resolvedReason: "condition cleared", resolvedAtMs: window + 120_000, acknowledgedAt: ackAt),
        }, resolved);

        // Unsubscribed: the next closed minute of the sensor is not sent.
        await first.InvokeAsync("UnsubscribeSensor", sensor);
        await second.InvokeAsync("SubscribeSensor", sensor);
        await factory.CloseMinuteAsync(window + 120_000);
        await second.WaitForAsync("aggregate", e => e.GetProperty("eventId").GetString() == $"{sensor}@{window + 120_000}");
        // A marker published after that aggregate (a new incident): once it arrived, that aggregate would have too.
        await PostAsync(_operator, $$$"""{"id":"{{{sensor}}}","timestamp":{{{window + 200_000}}},"metrics":{"hum":1}}""");
        await first.WaitForAsync("alert", e => e.GetProperty("kind").GetString() == "opened"
            && e.GetProperty("alert").GetProperty("id").GetString() == AlertIds.For(rule, version, sensor, window + 200_000));
        Assert.Single(first.Events("aggregate"));
    }

    [Fact]
    public async Task Device_ReceivesItsCommands_AndMaySubscribeOnlyToItself()
    {
        var t0 = factory.NextWindow() + 2_000;
        var own = factory.RestrictedDeviceId;
        var foreign = Ids.New("foreign");
        var rule = Ids.New("valve-rule");

        await using var device = await ConnectAsync(ApiFactory.RestrictedDeviceKey);
        await device.InvokeAsync("SubscribeDevice", own);
        var refused = await Assert.ThrowsAsync<HubException>(() => device.InvokeAsync("SubscribeDevice", foreign));
        Assert.Equal($"An unexpected error occurred invoking 'SubscribeDevice' on the server. HubException: This API key may not receive the commands of device '{foreign}'.",
            refused.Message);
        var noSensors = await Assert.ThrowsAsync<HubException>(() => device.InvokeAsync("SubscribeSensor", own));
        Assert.Equal("An unexpected error occurred invoking 'SubscribeSensor' on the server. HubException: Only operator keys may subscribe to sensors.",
            noSensors.Message);

        // A fleet device key may follow any device.
        await using var fleet = await ConnectAsync(ApiFactory.DeviceKey);
        await fleet.InvokeAsync("SubscribeDevice", foreign);

        var version = await CreateRuleAsync(rule, own, controlAction: new { command = "open-valve", parameters = new Dictionary<string, string> { ["percent"] = "50" } });
        await PostAsync(factory.Client(ApiFactory.RestrictedDeviceKey), $$$"""{"id":"{{{own}}}","timestamp":{{{t0}}},"hum":12}""");

        var alertId = AlertIds.For(rule, version, own, t0);
        var command = await device.WaitForAsync("command", e => e.GetProperty("command").GetProperty("ruleId").GetString() == rule);
        JsonAssert.Equal(new
        {
            eventId = alertId + "/open",
            command = new
            {
                id = alertId + "/open",
                deviceId = own,
                command = "open-valve",
                parameters = new Dictionary<string, string> { ["percent"] = "50" },
                ruleId = rule,
                alertId,
                createdAt = T(t0),
            },
        }, command);

        // The alert was published just before the command: device connections get no alert events, and the
        // fleet connection follows another device.
        Assert.Empty(device.Events("alert"));
        Assert.Single(device.Events());
        Assert.Empty(fleet.Events());
    }

    [Fact]
    public async Task WithoutAValidKey_TheHubRefusesTheWebSocket()
    {
        var client = factory.Server.CreateWebSocketClient();
        var missing = await Assert.ThrowsAnyAsync<Exception>(() => client.ConnectAsync(new Uri("ws://localhost/hubs/live"), CancellationToken.None));
        Assert.Contains("401", missing.Message, StringComparison.Ordinal);
        var wrong = await Assert.ThrowsAnyAsync<Exception>(() => client.ConnectAsync(new Uri("ws://localhost/hubs/live?access_token=not-a-valid-key-at-all"), CancellationToken.None));
        Assert.Contains("401", wrong.Message, StringComparison.Ordinal);
    }
}
