using System.Net;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR.Client;
using Tests.Shared;
using Xunit.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>
/// Live events in the durable cluster go from the silo that produced them through RabbitMQ to every Api node, and from
/// each to its SignalR clients: a browser connected to either Api node sees the same alert event, with the same id. A
/// device connected over MQTT to one Api node publishes there and gets the command its reading set off from that node,
/// and every node knows it is connected.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LiveEventsAcrossApiNodesTests(ClusterServers servers, ITestOutputHelper output)
{
    [Fact]
    public async Task An_alert_reaches_the_signalr_clients_of_every_api_node_with_one_event_id_and_its_command_the_mqtt_device_on_either()
    {
        await using var cluster = await DurableCluster.CreateAsync(servers, output);
        await Scenario.StartAsync(cluster, "silo-1", "silo-2");
        var (second, secondPort) = cluster.StartAnotherApi("api-2");
        await second.WaitForLineAsync(l => l.Contains("Now listening on", StringComparison.Ordinal), Scenario.StartTimeout, "api-2 listening");
        var secondMqttPort = await DurableCluster.MqttPortOfAsync(second);

        await using var first = await HubClient.ConnectAsync(cluster.ApiPort);
        await using var other = await HubClient.ConnectAsync(secondPort);

        using (var rule = await cluster.Operator.PostAsync("/api/v1/rules", new StringContent("""
            {"id":"live-nodes","name":"Live on every node","severity":"critical","target":{"kind":"all"},
             "condition":{"kind":"threshold","metric":"temp","operator":">","value":50},
             "controlAction":{"command":"cool"}}
            """, Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Created, rule.StatusCode);
        }
        // The device connects to api-2 over MQTT and subscribes to its commands; its reading is published there too (QoS 1:
        // the PUBACK comes once the reading is in the RabbitMQ log).
        string[] connect = ["-h", "127.0.0.1", "-p", secondMqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-V", "mqttv5",
            "-u", "live-nodes-1", "-P", DurableCluster.DeviceKey, "-d"];
        await using var device = Mosquitto.StartRunning("mosquitto_sub", [.. connect, "-i", "live-nodes-1", "-q", "1", "-t", "devices/live-nodes-1/commands"]);
        using var secondOperator = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{secondPort}") };
        secondOperator.DefaultRequestHeaders.Add("X-Api-Key", DurableCluster.OperatorKey);
        await Integration.Tests.RabbitMq.RmqTest.UntilAsync(async () => (await secondOperator.GetStringAsync("/api/v1/mqtt")).Contains("\"subscribedToCommands\":true", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20), "the device subscribed on api-2");
        var t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        // mosquitto_sub cannot also publish: a gateway (an operator key may publish for any device) sends the device's reading.
        string[] gateway = ["-h", "127.0.0.1", "-p", secondMqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "-V", "mqttv5",
            "-u", "gateway-1", "-P", DurableCluster.OperatorKey, "-d"];
        await using (var publish = Mosquitto.StartRunning("mosquitto_pub", [.. gateway, "-i", "gateway-1", "-q", "1", "-t", "devices/live-nodes-1/telemetry",
            "-m", $$$"""{"timestamp":{{{t}}},"metrics":{"temp":51}}"""]))
        {
            await Integration.Tests.RabbitMq.RmqTest.UntilAsync(() => Task.FromResult(publish.Output.Contains("Publish 1 failed", StringComparison.Ordinal)
                || publish.Output.Contains("received PUBACK (Mid: 1, RC:0)", StringComparison.Ordinal)), TimeSpan.FromSeconds(20), "the PUBACK");
            Assert.Contains("received PUBACK (Mid: 1, RC:0)", publish.Output, StringComparison.Ordinal);
        }

        var a = await first.NextAlertAsync(TimeSpan.FromSeconds(20));
        var b = await other.NextAlertAsync(TimeSpan.FromSeconds(20));
        foreach (var e in new[] { a, b })
        {
            Assert.Equal("opened", e.GetProperty("kind").GetString());
            Assert.Equal("live-nodes", e.GetProperty("alert").GetProperty("ruleId").GetString());
            Assert.Equal("live-nodes-1", e.GetProperty("alert").GetProperty("sensorId").GetString());
            Assert.Equal("51 > 50", e.GetProperty("alert").GetProperty("message").GetString());
        }
        Assert.Equal(a.GetProperty("eventId").GetString(), b.GetProperty("eventId").GetString());

        // api-2 holds the device's connection: it publishes the command, the device's PUBACK records it delivered, and
        // the first node knows the device is connected to api-2.
        var alertId = a.GetProperty("alert").GetProperty("id").GetString();
        await Integration.Tests.RabbitMq.RmqTest.UntilAsync(() => Task.FromResult(device.Output.Contains($"\"id\":\"{alertId}/open\"", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20), "the command on the device");
        Assert.Contains("\"command\":\"cool\"", device.Output, StringComparison.Ordinal);
        await Integration.Tests.RabbitMq.RmqTest.UntilAsync(async () => (await cluster.Operator.GetStringAsync("/api/v1/sensors/live-nodes-1/commands")).Contains("\"deliveredAt\"", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20), "the delivery recorded");
        var secondNode = JsonDocument.Parse(await secondOperator.GetStringAsync("/api/v1/mqtt")).RootElement.GetProperty("node").GetString();
        var detail = JsonDocument.Parse(await cluster.Operator.GetStringAsync("/api/v1/sensors/live-nodes-1")).RootElement;
        Assert.Equal(secondNode, detail.GetProperty("mqtt").GetProperty("node").GetString());
    }

    /// <summary>A dashboard's connection: the SignalR client, the operator key as access token; queues the "alert" events.</summary>
    private sealed class HubClient : IAsyncDisposable
    {
        private readonly Channel<JsonElement> _alerts = Channel.CreateUnbounded<JsonElement>();
        private readonly HubConnection _connection;

        private HubClient(int port)
        {
            _connection = new HubConnectionBuilder()
                .WithUrl($"http://127.0.0.1:{port}/hubs/live", o => o.AccessTokenProvider = () => Task.FromResult<string?>(DurableCluster.OperatorKey))
                .Build();
            _connection.On<JsonElement>("alert", e => _alerts.Writer.TryWrite(e));
        }

        public static async Task<HubClient> ConnectAsync(int port)
        {
            var client = new HubClient(port);
            await client._connection.StartAsync().WaitAsync(TimeSpan.FromSeconds(10));
            return client;
        }

        public async Task<JsonElement> NextAlertAsync(TimeSpan timeout)
        {
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                return await _alerts.Reader.ReadAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"no 'alert' event within {timeout.TotalSeconds} s");
                throw;
            }
        }

        public ValueTask DisposeAsync() => _connection.DisposeAsync();
    }
}
