using System.Net;
using System.Text.Json;
using Api.Mqtt;
using Api.Tests.Integration;
using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Tests.Shared;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Mqtt;

/// <summary>Devices over MQTT, with mosquitto_pub and mosquitto_sub as the devices.</summary>
public sealed class MqttTests(MqttApiFactory factory) : IClassFixture<MqttApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    private Task<Mosquitto.Result> PubAsync(string clientId, string key, string topic, string message, string version = "mqttv5", string qos = "1") =>
        Mosquitto.RunAsync("mosquitto_pub", [.. factory.Connect(clientId, key, version), "-q", qos, "-t", topic, "-m", message]);

    private async Task<JsonElement> ClosedMinutesAsync(string id, long window, int points)
    {
        await factory.CloseMinuteAsync(window);
        return await Eventually.Json(async () =>
        {
            var body = await (await _operator.GetAsync($"/api/v1/sensors/{id}/metrics?from={Iso(window)}&to={Iso(window + 60_000)}")).SensorBodyAsync();
            return body is { } b && b.GetProperty("points").GetArrayLength() == points ? b.GetProperty("points") : null;
        }, what: $"{points} aggregates of {id}");
    }

    private async Task<JsonElement> StatusAsync() => await (await _operator.GetAsync("/api/v1/mqtt")).ExpectAsync(HttpStatusCode.OK);

    [Fact]
    public async Task Telemetry_published_by_mosquitto_in_each_format_and_version_is_aggregated_exactly()
    {
        var window = factory.NextWindow();
        var id = Ids.New("mqtt");
        // An object (MQTT 5), an array (MQTT 3.1.1), NDJSON (3.1.1, lines without an id: the topic's device).
        var results = new[]
        {
            await PubAsync(id, ApiFactory.DeviceKey, $"devices/{id}/telemetry", $$$"""{"id":"{{{id}}}","timestamp":{{{window + 1_000}}},"temp":20.5}"""),
            await PubAsync(id, ApiFactory.DeviceKey, $"devices/{id}/telemetry",
                $$$"""[{"timestamp":{{{window + 2_000}}},"temp":22},{"timestamp":{{{window + 3_000}}},"metrics":{"temp":19,"hum":40}}]""", "mqttv311"),
            await PubAsync(id, ApiFactory.DeviceKey, $"devices/{id}/telemetry",
                $$$"""{"timestamp":{{{window + 4_000}}},"hum":44}""" + "\n" + $$$"""{"timestamp":{{{window + 5_000}}},"temp":21}""", "mqttv311"),
        };
        // QoS 0: no acknowledgement at all, stored all the same while the log takes writes.
        var storedBefore = (await StatusAsync()).GetProperty("publishesStored").GetInt64();
        var qos0 = await PubAsync(id, ApiFactory.DeviceKey, $"devices/{id}/telemetry", $$$"""{"timestamp":{{{window + 6_000}}},"temp":23}""", qos: "0");
        Assert.Equal(0, qos0.ExitCode);
        Assert.DoesNotContain("PUBACK", qos0.Output, StringComparison.Ordinal);
        await Eventually.Until(async () => (await StatusAsync()).GetProperty("publishesStored").GetInt64() > storedBefore, what: "the QoS 0 publish stored");
        Assert.All(results, r =>
        {
            Assert.Equal(0, r.ExitCode);
            Assert.Contains("received PUBACK (Mid: 1, RC:0)", r.Output, StringComparison.Ordinal);
        });

        JsonAssert.Equal(new[]
        {
            new { minute = T(window), metric = "hum", count = 2, min = 40.0, max = 44.0, sum = 84.0, avg = 42.0, first = 40.0, last = 44.0 },
            new { minute = T(window), metric = "temp", count = 5, min = 19.0, max = 23.0, sum = 105.5, avg = 105.5 / 5, first = 20.5, last = 23.0 },
        }, await ClosedMinutesAsync(id, window, 2));
    }

    [Fact]
    public async Task Bad_payloads_and_foreign_topics_get_MQTT5_reason_codes_and_store_nothing()
    {
        var id = Ids.New("mqtt-bad");
        var other = Ids.New("mqtt-other");
        var malformed = await PubAsync(id, ApiFactory.DeviceKey, $"devices/{id}/telemetry", """{"temp":""");
        Assert.Contains("received PUBACK (Mid: 1, RC:153)", malformed.Output, StringComparison.Ordinal);
        Assert.Contains("Publish 1 failed: Payload format invalid.", malformed.Output, StringComparison.Ordinal);
        Assert.Contains("malformed JSON", malformed.Output, StringComparison.Ordinal);

        var invalid = await PubAsync(id, ApiFactory.DeviceKey, $"devices/{id}/telemetry", """[{"timestamp":"soon","temp":1},{"id":"someone-else","temp":1}]""");
        Assert.Contains("received PUBACK (Mid: 1, RC:153)", invalid.Output, StringComparison.Ordinal);
        Assert.Contains("All 2 readings were rejected: item 0: timestamp must be epoch seconds, epoch milliseconds or an ISO-8601 string; item 1: the item names sensor 'someone-else', but this body is for sensor '"
            + id + "' only", invalid.Output, StringComparison.Ordinal);

        var foreign = await PubAsync(id, ApiFactory.DeviceKey, $"devices/{other}/telemetry", """{"temp":1}""");
        Assert.Contains("received PUBACK (Mid: 1, RC:135)", foreign.Output, StringComparison.Ordinal);
        Assert.Contains($"Client '{id}' publishes only to 'devices/{id}/telemetry'.", foreign.Output, StringComparison.Ordinal);

        var wrongTopic = await PubAsync(id, ApiFactory.DeviceKey, $"devices/{id}/commands", """{"temp":1}""");
        Assert.Contains("received PUBACK (Mid: 1, RC:144)", wrongTopic.Output, StringComparison.Ordinal);

        foreach (var sensor in new[] { id, other, "someone-else" })
        {
            await (await _operator.GetAsync($"/api/v1/sensors/{sensor}")).ExpectAsync(HttpStatusCode.NotFound);
        }
    }

    [Fact]
    public async Task An_MQTT311_bad_payload_is_acknowledged_counted_and_the_connection_stays_up_for_the_next_publish()
    {
        var window = factory.NextWindow();
        var id = Ids.New("mqtt-311");
        var before = (await StatusAsync()).GetProperty("refused");
        // mosquitto_pub -l: one connection, one publish per line.
        var lines = "{\"temp\":\n" + $$$"""{"timestamp":{{{window + 1_000}}},"temp":7}""" + "\n";
        var result = await Mosquitto.RunAsync("mosquitto_pub", [.. factory.Connect(id, ApiFactory.DeviceKey, "mqttv311"), "-q", "1", "-t", $"devices/{id}/telemetry", "-l"], lines);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("received PUBACK (Mid: 1, RC:0)", result.Output, StringComparison.Ordinal);
        Assert.Contains("received PUBACK (Mid: 2, RC:0)", result.Output, StringComparison.Ordinal);
        Assert.Equal(1, result.Output.Split("sending CONNECT").Length - 1);

        JsonAssert.Equal(new[] { new { minute = T(window), metric = "temp", count = 1, min = 7.0, max = 7.0, sum = 7.0, avg = 7.0, first = 7.0, last = 7.0 } },
            await ClosedMinutesAsync(id, window, 1));
        var after = (await StatusAsync()).GetProperty("refused");
        Assert.Equal(Count(before, "malformed") + 1, Count(after, "malformed"));

        static long Count(JsonElement refused, string kind) => refused.TryGetProperty(kind, out var n) ? n.GetInt64() : 0;
    }

    [Fact]
    public async Task Keys_decide_who_connects_as_which_device()
    {
        var id = Ids.New("mqtt-auth");
        var wrong = await PubAsync(id, "not-a-key-of-this-api", $"devices/{id}/telemetry", "{}");
        Assert.Contains("received CONNACK (134)", wrong.Output, StringComparison.Ordinal);
        var wrong311 = await PubAsync(id, "not-a-key-of-this-api", $"devices/{id}/telemetry", "{}", "mqttv311");
        Assert.Contains("received CONNACK (4)", wrong311.Output, StringComparison.Ordinal);

        // A key limited to one device connects as that device only.
        var foreign = await PubAsync(id, ApiFactory.RestrictedDeviceKey, $"devices/{id}/telemetry", "{}");
        Assert.Contains("received CONNACK (135)", foreign.Output, StringComparison.Ordinal);
        var own = await PubAsync(factory.RestrictedDeviceId, ApiFactory.RestrictedDeviceKey, $"devices/{factory.RestrictedDeviceId}/telemetry",
            $$$"""{"timestamp":{{{factory.NextWindow()}}},"v":1}""");
        Assert.Contains("received PUBACK (Mid: 1, RC:0)", own.Output, StringComparison.Ordinal);

        var badId = await PubAsync("bad/id", ApiFactory.DeviceKey, "devices/x/telemetry", "{}");
        Assert.Contains("received CONNACK (133)", badId.Output, StringComparison.Ordinal);

        // Keep-alive 0 (never time out) is refused ("not authorised"): mosquitto will not send it, so a raw MQTT 3.1.1 CONNECT does.
        Assert.Equal(5, await ConnectWithoutKeepAliveAsync(id, ApiFactory.DeviceKey));
    }

    /// <summary>Sends an MQTT 3.1.1 CONNECT with keep-alive 0 and returns the CONNACK's return code.</summary>
    private async Task<int> ConnectWithoutKeepAliveAsync(string clientId, string key)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, factory.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(ConnectPacket(clientId, key, keepAliveSeconds: 0));
        var connAck = new byte[4];
        await stream.ReadExactlyAsync(connAck);
        Assert.Equal(0x20, connAck[0]);
        return connAck[3];
    }

    [Fact]
    public async Task Connections_per_key_and_packet_size_are_limited()
    {
        var id = Ids.New("mqtt-limit");
        await using (var holder = Mosquitto.StartRunning("mosquitto_sub", [.. factory.Connect(id, MqttApiFactory.LimitedKey), "-t", $"devices/{id}/commands"]))
        {
            await Eventually.Until(async () => (await StatusAsync()).GetProperty("clients").EnumerateArray().Any(c => c.GetProperty("deviceId").GetString() == id),
                what: "the first connection of the limited key");
            var second = await PubAsync(id + "-2", MqttApiFactory.LimitedKey, $"devices/{id}-2/telemetry", "{}");
            Assert.Contains("received CONNACK (151)", second.Output, StringComparison.Ordinal);
            var second311 = await PubAsync(id + "-2", MqttApiFactory.LimitedKey, $"devices/{id}-2/telemetry", "{}", "mqttv311");
            Assert.Contains("received CONNACK (3)", second311.Output, StringComparison.Ordinal);
        }

        // A burst of connects at once: the limit is taken in one step at validation, so exactly one gets in.
        await Eventually.Until(async () => !(await StatusAsync()).GetProperty("clients").EnumerateArray().Any(c => c.GetProperty("deviceId").GetString() == id),
            what: "the first connection closed");
        var burst = Enumerable.Range(0, 6)
            .Select(i => Mosquitto.StartRunning("mosquitto_sub", [.. factory.Connect($"{id}-b{i}", MqttApiFactory.LimitedKey), "-t", $"devices/{id}-b{i}/commands"]))
            .ToList();
        try
        {
            await Eventually.Until(() => Task.FromResult(burst.All(b => b.Output.Contains("received CONNACK", StringComparison.Ordinal))),
                what: "every connect of the burst answered");
            Assert.Equal(1, burst.Count(b => b.Output.Contains("received CONNACK (0)", StringComparison.Ordinal)));
            Assert.Equal(5, burst.Count(b => b.Output.Contains("received CONNACK (151)", StringComparison.Ordinal)));
        }
        finally
        {
            foreach (var client in burst)
            {
                await client.DisposeAsync();
            }
        }

        var big = await PubAsync(id, ApiFactory.DeviceKey, $"devices/{id}/telemetry", "{\"v\":1,\"pad\":\"" + new string('x', MqttApiFactory.MaxPacketBytes) + "\"}", "mqttv311");
        Assert.DoesNotContain("received PUBACK", big.Output, StringComparison.Ordinal);
        Assert.NotEqual(0, big.ExitCode);
        await (await _operator.GetAsync($"/api/v1/sensors/{id}")).ExpectAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task While_the_log_cannot_take_writes_no_PUBACK_is_sent_then_one_once_it_can_and_the_reading_counts_once()
    {
        var window = factory.NextWindow();
        var id = Ids.New("mqtt-down");
        factory.Log.Unavailable = true;
        Task<Mosquitto.Result> publish;
        try
        {
            // MQTT 5: a reason code once Mqtt:LogWait (1 s here) has passed, nothing stored.
            var v5 = await PubAsync(id + "-5", ApiFactory.DeviceKey, $"devices/{id}-5/telemetry", """{"v":1}""");
            Assert.Contains("received PUBACK (Mid: 1, RC:131)", v5.Output, StringComparison.Ordinal);
            Assert.Contains("The message log cannot take writes now; nothing of this publish was stored.", v5.Output, StringComparison.Ordinal);

            // MQTT 3.1.1: no PUBACK while the log is down.
            publish = PubAsync(id, ApiFactory.DeviceKey, $"devices/{id}/telemetry", $$$"""{"timestamp":{{{window + 1_000}}},"v":5}""", "mqttv311");
            await Eventually.Until(async () => (await StatusAsync()).GetProperty("clients").EnumerateArray().Any(c => c.GetProperty("deviceId").GetString() == id),
                what: "the 3.1.1 client connected");
            await Task.WhenAny(publish, Task.Delay(TimeSpan.FromSeconds(3)));
            Assert.False(publish.IsCompleted, "a PUBACK came while the log was down");
        }
        finally
        {
            factory.Log.Unavailable = false;
        }
        var result = await publish;
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("received PUBACK (Mid: 1, RC:0)", result.Output, StringComparison.Ordinal);
        JsonAssert.Equal(new[] { new { minute = T(window), metric = "v", count = 1, min = 5.0, max = 5.0, sum = 5.0, avg = 5.0, first = 5.0, last = 5.0 } },
            await ClosedMinutesAsync(id, window, 1));
        await (await _operator.GetAsync($"/api/v1/sensors/{id}-5")).ExpectAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task An_MQTT5_publish_with_an_Idempotency_Key_counts_once_when_resent_and_when_the_confirm_of_its_append_was_lost()
    {
        var window = factory.NextWindow();
        var id = Ids.New("mqtt-idem");
        var first = $$$"""{"timestamp":{{{window + 1_000}}},"v":1}""";
        var second = $$$"""{"timestamp":{{{window + 2_000}}},"v":2}""";
        Task<Mosquitto.Result> PubWithKeyAsync(string message, string key) => Mosquitto.RunAsync("mosquitto_pub",
            [.. factory.Connect(id, ApiFactory.DeviceKey), "-q", "1", "-t", $"devices/{id}/telemetry", "-m", message,
                "-D", "publish", "user-property", MqttTelemetry.IdempotencyKeyProperty, key]);
        const string Stored = "received PUBACK (Mid: 1, RC:0)";
        const string Refused = "received PUBACK (Mid: 1, RC:131)";

        Assert.Contains(Stored, (await PubWithKeyAsync(first, $"{id}-1")).Output, StringComparison.Ordinal);
        // The device sends the same publish again (it saw no PUBACK, say).
        var again = (await PubWithKeyAsync(first, $"{id}-1")).Output;
        Assert.True(again.Contains(Stored, StringComparison.Ordinal), again);

        // The log stores the next append but its confirm is lost: the server appends again under the key and acknowledges.
        factory.Log.LostConfirms = 1;
        var lost = await PubWithKeyAsync(second, $"{id}-2");
        Assert.Contains(Stored, lost.Output, StringComparison.Ordinal);
        Assert.Equal(0, factory.Log.LostConfirms);

        // Another payload under a used key, and a key that is not one: refused, nothing stored.
        var reused = await PubWithKeyAsync(second, $"{id}-1");
        Assert.Contains(Refused, reused.Output, StringComparison.Ordinal);
        Assert.Contains($"This API key sent another publish with Idempotency-Key '{id}-1' within the last 15 minutes; nothing of this publish was stored.",
            reused.Output, StringComparison.Ordinal);
        var invalid = await PubWithKeyAsync(second, new string('k', 129));
        Assert.Contains(Refused, invalid.Output, StringComparison.Ordinal);
        Assert.Contains("The Idempotency-Key user property must be 1 to 128 visible ASCII characters; nothing of this publish was stored.",
            invalid.Output, StringComparison.Ordinal);

        JsonAssert.Equal(new[] { new { minute = T(window), metric = "v", count = 2, min = 1.0, max = 2.0, sum = 3.0, avg = 1.5, first = 1.0, last = 2.0 } },
            await ClosedMinutesAsync(id, window, 1));
    }

    private async Task<long> CreateRuleAsync(string ruleId, string sensor)
    {
        var body = await (await _operator.PostAsync("/api/v1/rules", Json(new
        {
            id = ruleId,
            name = "Too hot",
            severity = "major",
            target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "threshold", metric = "temp", on = "raw", @operator = ">", value = 30 },
            controlAction = new { command = "fan", parameters = new Dictionary<string, string> { ["speed"] = "high" } },
        }))).ExpectAsync(HttpStatusCode.Created);
        return body.GetProperty("version").GetInt64();
    }

    private async Task<JsonElement> HistoryAsync(string sensor, Func<JsonElement, bool> ready) =>
        await Eventually.Json(async () =>
        {
            var response = await _operator.GetAsync($"/api/v1/sensors/{sensor}/commands");
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
            var list = await response.ExpectAsync(HttpStatusCode.OK);
            return ready(list) ? list : null;
        }, what: $"the command history of {sensor}");

    [Fact]
    public async Task Mosquitto_sub_receives_the_command_a_rule_sends_and_its_acknowledgement_records_the_delivery()
    {
        var t0 = factory.NextWindow() + 1_000;
        var id = Ids.New("mqtt-fan");
        var rule = Ids.New("mqtt-hot");
        var version = await CreateRuleAsync(rule, id);
        await using var device = Mosquitto.StartRunning("mosquitto_sub", [.. factory.Connect(id, ApiFactory.DeviceKey), "-q", "1", "-t", $"devices/{id}/commands"]);
        await Eventually.Until(async () => (await StatusAsync()).GetProperty("clients").EnumerateArray()
            .Any(c => c.GetProperty("deviceId").GetString() == id && c.GetProperty("subscribedToCommands").GetBoolean()), what: "the device subscribed");

        var published = await PubAsync("gateway-" + id, ApiFactory.OperatorKey, $"devices/{id}/telemetry", $$$"""{"timestamp":{{{t0}}},"temp":35}""");
        Assert.Contains("received PUBACK (Mid: 1, RC:0)", published.Output, StringComparison.Ordinal);

        var alert = AlertIds.For(rule, version, id, t0);
        var history = await HistoryAsync(id, h => h.GetArrayLength() == 1 && h[0].TryGetProperty("deliveredAt", out _));
        Assert.Equal(alert + "/open", history[0].GetProperty("id").GetString());
        await Eventually.Until(() => Task.FromResult(device.Output.Contains("sending PUBACK", StringComparison.Ordinal)), what: "the device acknowledged");
        var payload = device.Output.Split('\n').Single(l => l.StartsWith('{'));
        JsonAssert.Equal(new
        {
            id = alert + "/open",
            deviceId = id,
            command = "fan",
            parameters = new Dictionary<string, string> { ["speed"] = "high" },
            ruleId = rule,
            alertId = alert,
            createdAt = T(t0),
        }, JsonDocument.Parse(payload).RootElement);
        Assert.Contains($"received PUBLISH (d0, q1, r0, m1, 'devices/{id}/commands'", device.Output, StringComparison.Ordinal);
        // Delivered: an HTTP fetch finds nothing pending.
        JsonAssert.Equal(Array.Empty<object>(), await (await factory.Device().GetAsync($"/api/v1/devices/{id}/commands")).ExpectAsync(HttpStatusCode.OK));
    }

    [Fact]
    public async Task A_device_with_a_persistent_session_gets_the_commands_it_missed_when_it_reconnects()
    {
        var t0 = factory.NextWindow() + 1_000;
        var id = Ids.New("mqtt-away");
        var rule = Ids.New("mqtt-away-rule");
        var version = await CreateRuleAsync(rule, id);
        string[] subscribe = [.. factory.Connect(id, ApiFactory.DeviceKey, "mqttv311"), "-c", "-q", "1", "-t", $"devices/{id}/commands"];
        await using (Mosquitto.StartRunning("mosquitto_sub", subscribe))
        {
            await Eventually.Until(async () => (await StatusAsync()).GetProperty("clients").EnumerateArray()
                .Any(c => c.GetProperty("deviceId").GetString() == id && c.GetProperty("subscribedToCommands").GetBoolean()), what: "the device subscribed");
        }
        await Eventually.Until(async () => !(await StatusAsync()).GetProperty("clients").EnumerateArray().Any(c => c.GetProperty("deviceId").GetString() == id),
            timeout: TimeSpan.FromSeconds(30), what: "the device's connection closed");

        await (await factory.Device().PostAsync("/api/v1/telemetry", Json($$$"""{"id":"{{{id}}}","timestamp":{{{t0}}},"temp":40}""")))
            .ExpectAsync(HttpStatusCode.Accepted);
        var alert = AlertIds.For(rule, version, id, t0);
        // Stored while the device is away: pending.
        var away = await HistoryAsync(id, h => h.GetArrayLength() == 1);
        Assert.Equal(alert + "/open", away[0].GetProperty("id").GetString());
        Assert.False(away[0].TryGetProperty("deliveredAt", out _));

        // Back with its session: the command comes, once, and is recorded delivered. The device stays connected until the
        // delivery is recorded, as a device does. One that quits as soon as it has the message (mosquitto_sub -C 1) sends its
        // PUBACK and DISCONNECT while the server may still be answering its SUBSCRIBE: a SUBACK that reaches the closed socket
        // draws a TCP reset, the listener drops the connection with the PUBACK unread, and the command stays pending (sent
        // again at the next connection, as QoS 1 has it), so whether it was recorded delivered was a race.
        await using var back = Mosquitto.StartRunning("mosquitto_sub", subscribe);
        var delivered = await HistoryAsync(id, h => h.GetArrayLength() == 1 && h[0].TryGetProperty("deliveredAt", out _));
        Assert.Equal(alert + "/open", delivered[0].GetProperty("id").GetString());
        // mosquitto prints the payload after it sent the PUBACK.
        await Eventually.Until(() => Task.FromResult(back.Output.Contains(alert + "/open", StringComparison.Ordinal)), what: "the device printed the command");
        Assert.Equal(1, back.Output.Split("received PUBLISH").Length - 1);
        Assert.Contains($"received PUBLISH (d0, q1, r0, m1, 'devices/{id}/commands'", back.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_keeps_at_most_MaxWaitingSessionsPerKey_sessions_of_absent_devices_and_the_one_away_longest_goes()
    {
        string[] ids = [Ids.New("away-1"), Ids.New("away-2"), Ids.New("away-3")];
        var server = factory.Services.GetRequiredService<MQTTnet.Server.MqttServer>();
        async Task<string[]> SessionsAsync() =>
            (await server.GetSessionsAsync()).Select(s => s.Id).Where(ids.Contains).Order(StringComparer.Ordinal).ToArray();

        // Three devices of one key open persistent sessions one after the other and go away (the key may hold one connection).
        foreach (var id in ids)
        {
            await using (Mosquitto.StartRunning("mosquitto_sub", [.. factory.Connect(id, MqttApiFactory.LimitedKey, "mqttv311"), "-c", "-q", "1", "-t", $"devices/{id}/commands"]))
            {
                await Eventually.Until(async () => (await StatusAsync()).GetProperty("clients").EnumerateArray()
                    .Any(c => c.GetProperty("deviceId").GetString() == id && c.GetProperty("subscribedToCommands").GetBoolean()), what: $"{id} subscribed");
            }
            await Eventually.Until(async () => !(await StatusAsync()).GetProperty("clients").EnumerateArray().Any(c => c.GetProperty("deviceId").GetString() == id),
                timeout: TimeSpan.FromSeconds(30), what: $"{id}'s connection closed");
        }

        // The key keeps two (Mqtt:MaxWaitingSessionsPerKey): the session of the device away longest is deleted.
        await Eventually.Until(async () => (await SessionsAsync()).SequenceEqual([ids[1], ids[2]]), what: "the oldest waiting session deleted");
        Assert.Equal(MqttApiFactory.MaxWaitingSessionsPerKey, factory.Services.GetRequiredService<MqttClients>().WaitingCount("limited"));

        // The first device comes back: a new session, and now the second is the one away longest.
        await using (Mosquitto.StartRunning("mosquitto_sub", [.. factory.Connect(ids[0], MqttApiFactory.LimitedKey, "mqttv311"), "-c", "-q", "1", "-t", $"devices/{ids[0]}/commands"]))
        {
            await Eventually.Until(async () => (await SessionsAsync()).SequenceEqual(ids), what: "the first device's new session");
        }
        await Eventually.Until(async () => (await SessionsAsync()).SequenceEqual([ids[0], ids[2]]), what: "the second device's session deleted");
    }

    [Fact]
    public async Task A_connected_device_shows_as_connected_on_its_sensor_page_and_in_the_cluster_count_until_it_disconnects()
    {
        var id = Ids.New("mqtt-here");
        await (await factory.Device().PostAsync("/api/v1/telemetry", Json($$$"""{"id":"{{{id}}}","timestamp":{{{factory.NextWindow()}}},"v":1}""")))
            .ExpectAsync(HttpStatusCode.Accepted);
        var sensor = await Eventually.Json(async () =>
        {
            var response = await _operator.GetAsync($"/api/v1/sensors/{id}");
            return response.StatusCode == HttpStatusCode.OK ? await response.BodyAsync() : null;
        }, what: $"sensor {id}");
        Assert.False(sensor.TryGetProperty("mqtt", out _));

        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        await using (Mosquitto.StartRunning("mosquitto_sub", [.. factory.Connect(id, ApiFactory.DeviceKey, "mqttv311"), "-t", $"devices/{id}/commands"]))
        {
            var mqtt = await Eventually.Json(async () =>
            {
                var body = await (await _operator.GetAsync($"/api/v1/sensors/{id}")).ExpectAsync(HttpStatusCode.OK);
                return body.TryGetProperty("mqtt", out var connection) ? connection : null;
            }, what: $"{id} connected");
            var status = await StatusAsync();
            Assert.Equal(status.GetProperty("node").GetString(), mqtt.GetProperty("node").GetString());
            Assert.Equal("3.1.1", mqtt.GetProperty("protocol").GetString());
            Assert.InRange(mqtt.GetProperty("since").GetDateTimeOffset(), before, DateTimeOffset.UtcNow);
            var client = status.GetProperty("clients").EnumerateArray().Single(c => c.GetProperty("deviceId").GetString() == id);
            Assert.Equal(mqtt.GetProperty("since").GetDateTimeOffset(), client.GetProperty("connectedAt").GetDateTimeOffset());

            // The node reports its count to the cluster every Mqtt:PresenceInterval.
            await Eventually.Until(async () =>
            {
                var cluster = (await StatusAsync()).GetProperty("cluster");
                return cluster.GetProperty("connected").GetInt32() >= 1 && cluster.GetProperty("nodes").EnumerateArray()
                    .Any(n => n.GetProperty("node").GetString() == status.GetProperty("node").GetString() && n.GetProperty("connected").GetInt32() >= 1);
            }, what: "the cluster count includes the device");
        }

        await Eventually.Until(async () =>
            !(await (await _operator.GetAsync($"/api/v1/sensors/{id}")).ExpectAsync(HttpStatusCode.OK)).TryGetProperty("mqtt", out _),
            timeout: TimeSpan.FromSeconds(30), what: $"{id} disconnected");
    }

    [Fact]
    public async Task Publishes_past_a_devices_rate_limit_get_quota_exceeded_with_MQTT5_and_a_later_PUBACK_with_MQTT311()
    {
        var window = factory.NextWindow();
        var id = Ids.New("mqtt-rate");
        var lines = string.Concat(Enumerable.Range(0, 7).Select(i => $$$"""{"timestamp":{{{window + i * 1_000}}},"v":{{{i}}}}""" + "\n"));
        var v5 = await Mosquitto.RunAsync("mosquitto_pub", [.. factory.Connect(id, ApiFactory.DeviceKey), "-q", "1", "-t", $"devices/{id}/telemetry", "-l"], lines);
        for (var mid = 1; mid <= 5; mid++)
        {
            Assert.Contains($"received PUBACK (Mid: {mid}, RC:0)", v5.Output, StringComparison.Ordinal);
        }
        Assert.Contains("received PUBACK (Mid: 6, RC:151)", v5.Output, StringComparison.Ordinal);
        Assert.Contains($"Device '{id}' published more often than its limit of 1 per second (bursts of 5) allows; nothing of this publish was stored.",
            v5.Output, StringComparison.Ordinal);

        // MQTT 3.1.1 cannot be told: its publishes past the limit are acknowledged when the limit lets them through, none lost.
        var other = Ids.New("mqtt-rate");
        var v311 = await Mosquitto.RunAsync("mosquitto_pub", [.. factory.Connect(other, ApiFactory.DeviceKey, "mqttv311"), "-q", "1", "-t", $"devices/{other}/telemetry", "-l"],
            lines, TimeSpan.FromSeconds(30));
        Assert.Equal(0, v311.ExitCode);
        for (var mid = 1; mid <= 7; mid++)
        {
            Assert.Contains($"received PUBACK (Mid: {mid}, RC:0)", v311.Output, StringComparison.Ordinal);
        }
        JsonAssert.Equal(new[] { new { minute = T(window), metric = "v", count = 7, min = 0.0, max = 6.0, sum = 21.0, avg = 3.0, first = 0.0, last = 6.0 } },
            await ClosedMinutesAsync(other, window, 1));
    }

    [Fact]
    public async Task A_device_that_acknowledges_no_command_is_disconnected_once_too_many_are_unacknowledged()
    {
        var t0 = factory.NextWindow() + 1_000;
        var id = Ids.New("mqtt-stuck");
        await CreateRuleAsync(Ids.New("mqtt-stuck-rule"), id);
        // A raw MQTT 3.1.1 client: subscribes to its commands, then never reads a byte (so it acknowledges nothing).
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, factory.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(ConnectPacket(id, ApiFactory.DeviceKey, keepAliveSeconds: 60));
        var connAck = new byte[4];
        await stream.ReadExactlyAsync(connAck);
        Assert.Equal(0, connAck[3]);
        var topic = System.Text.Encoding.UTF8.GetBytes($"devices/{id}/commands");
        byte[] subscribe = [0, 1, (byte)(topic.Length >> 8), (byte)topic.Length, .. topic, 1];
        await stream.WriteAsync((byte[])[0x82, (byte)subscribe.Length, .. subscribe]);
        await Eventually.Until(async () => (await StatusAsync()).GetProperty("clients").EnumerateArray()
            .Any(c => c.GetProperty("deviceId").GetString() == id && c.GetProperty("subscribedToCommands").GetBoolean()), what: "the stuck device subscribed");

        // Each opening of the alert sends a command: one more than the limit.
        for (var i = 0; i <= MqttApiFactory.MaxUnacknowledgedCommands; i++)
        {
            await (await _operator.PostAsync("/api/v1/telemetry", Json($$$"""
                [{"id":"{{{id}}}","timestamp":{{{t0 + i * 2_000}}},"temp":35},{"id":"{{{id}}}","timestamp":{{{t0 + i * 2_000 + 1_000}}},"temp":20}]
                """))).ExpectAsync(HttpStatusCode.Accepted);
        }
        await Eventually.Until(async () => !(await StatusAsync()).GetProperty("clients").EnumerateArray().Any(c => c.GetProperty("deviceId").GetString() == id),
            what: "the stuck device disconnected");
        // Nothing was acknowledged: every command stays pending for the device's next connection or fetch.
        var history = await HistoryAsync(id, h => h.GetArrayLength() == MqttApiFactory.MaxUnacknowledgedCommands + 1);
        Assert.All(history.EnumerateArray(), c => Assert.False(c.TryGetProperty("deliveredAt", out _)));
    }

    private static byte[] ConnectPacket(string clientId, string key, int keepAliveSeconds)
    {
        static byte[] Text(string s)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(s);
            return [(byte)(bytes.Length >> 8), (byte)bytes.Length, .. bytes];
        }
        byte[] body = [.. Text("MQTT"), 4, 0xC2, (byte)(keepAliveSeconds >> 8), (byte)keepAliveSeconds, .. Text(clientId), .. Text(clientId), .. Text(key)];
        return [0x10, (byte)body.Length, .. body];
    }

    [Fact]
    public async Task A_will_message_on_the_devices_telemetry_topic_is_stored_when_the_device_drops_off()
    {
        var window = factory.NextWindow();
        var id = Ids.New("mqtt-will");
        await using (Mosquitto.StartRunning("mosquitto_sub", [.. factory.Connect(id, ApiFactory.DeviceKey, "mqttv311"), "-t", $"devices/{id}/commands",
            "--will-topic", $"devices/{id}/telemetry", "--will-qos", "1", "--will-payload", $$$"""{"timestamp":{{{window + 1_000}}},"status":"offline"}"""]))
        {
            await Eventually.Until(async () => (await StatusAsync()).GetProperty("clients").EnumerateArray().Any(c => c.GetProperty("deviceId").GetString() == id),
                what: "the device connected");
        }
        // Killed without a DISCONNECT: the server publishes its will, a reading of the device.
        var sensor = await Eventually.Json(async () =>
        {
            var response = await _operator.GetAsync($"/api/v1/sensors/{id}");
            return response.StatusCode == HttpStatusCode.OK ? await response.BodyAsync() : null;
        }, timeout: TimeSpan.FromSeconds(30), what: "the will stored");
        JsonAssert.Equal(new Dictionary<string, string> { ["status"] = "offline" }, sensor.GetProperty("attributes"));
    }
}
