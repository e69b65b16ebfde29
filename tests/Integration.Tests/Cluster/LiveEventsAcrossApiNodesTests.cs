using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>
/// Live events in the durable cluster go from the silo that produced them through RabbitMQ to every Api node, and from
/// each to its SignalR clients: a browser connected to either Api node sees the same alert event, with the same id.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LiveEventsAcrossApiNodesTests(ClusterServers servers, ITestOutputHelper output)
{
    [Fact]
    public async Task An_alert_reaches_the_signalr_clients_of_every_api_node_with_one_event_id()
    {
        await using var cluster = await DurableCluster.CreateAsync(servers, output);
        await Scenario.StartAsync(cluster, "silo-1", "silo-2");
        var (second, secondPort) = cluster.StartAnotherApi("api-2");
        await second.WaitForLineAsync(l => l.Contains("Now listening on", StringComparison.Ordinal), Scenario.StartTimeout, "api-2 listening");

        using var first = await HubClient.ConnectAsync(cluster.ApiPort);
        using var other = await HubClient.ConnectAsync(secondPort);

        using (var rule = await cluster.Operator.PostAsync("/api/v1/rules", new StringContent("""
            {"id":"live-nodes","name":"Live on every node","severity":"critical","target":{"kind":"all"},
             "condition":{"kind":"threshold","metric":"temp","operator":">","value":50}}
            """, Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Created, rule.StatusCode);
        }
        var t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using (var post = await cluster.Device.PostAsync("/api/v1/telemetry", new StringContent(
            $$$"""{"id":"live-nodes-1","timestamp":{{{t}}},"metrics":{"temp":51}}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);
        }

        var a = await first.NextAsync("alert", TimeSpan.FromSeconds(20));
        var b = await other.NextAsync("alert", TimeSpan.FromSeconds(20));
        foreach (var e in new[] { a, b })
        {
            Assert.Equal("opened", e.GetProperty("kind").GetString());
            Assert.Equal("live-nodes", e.GetProperty("alert").GetProperty("ruleId").GetString());
            Assert.Equal("live-nodes-1", e.GetProperty("alert").GetProperty("sensorId").GetString());
            Assert.Equal("51 > 50", e.GetProperty("alert").GetProperty("message").GetString());
        }
        Assert.Equal(a.GetProperty("eventId").GetString(), b.GetProperty("eventId").GetString());
    }

    /// <summary>A browser's connection: WebSocket, SignalR JSON protocol, the key as access_token.</summary>
    private sealed class HubClient : IDisposable
    {
        private const char Separator = '\u001e';
        private readonly ClientWebSocket _socket = new();
        private readonly StringBuilder _pending = new();

        public static async Task<HubClient> ConnectAsync(int port)
        {
            var client = new HubClient();
            await client._socket.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/hubs/live?access_token={DurableCluster.OperatorKey}"), CancellationToken.None);
            await client.SendAsync("""{"protocol":"json","version":1}""");
            var handshake = await client.ReceiveAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("{}", handshake);
            return client;
        }

        public async Task<JsonElement> NextAsync(string target, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                var left = deadline - DateTime.UtcNow;
                Assert.True(left > TimeSpan.Zero, $"no '{target}' event within {timeout.TotalSeconds} s");
                using var message = JsonDocument.Parse(await ReceiveAsync(left));
                var root = message.RootElement;
                if (root.GetProperty("type").GetInt32() == 1 && root.GetProperty("target").GetString() == target)
                {
                    return root.GetProperty("arguments")[0].Clone();
                }
            }
        }

        private Task SendAsync(string json) =>
            _socket.SendAsync(Encoding.UTF8.GetBytes(json + Separator), WebSocketMessageType.Text, true, CancellationToken.None);

        private async Task<string> ReceiveAsync(TimeSpan timeout)
        {
            using var cancel = new CancellationTokenSource(timeout);
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var text = _pending.ToString();
                var end = text.IndexOf(Separator);
                if (end >= 0)
                {
                    _pending.Remove(0, end + 1);
                    return text[..end];
                }
                var result = await _socket.ReceiveAsync(buffer, cancel.Token);
                _pending.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
            }
        }

        public void Dispose() => _socket.Dispose();
    }
}
