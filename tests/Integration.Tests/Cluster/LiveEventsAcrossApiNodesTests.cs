using System.Net;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR.Client;
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

        await using var first = await HubClient.ConnectAsync(cluster.ApiPort);
        await using var other = await HubClient.ConnectAsync(secondPort);

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
