using System.Net;
using Api.Mqtt;
using MQTTnet.Formatter;

namespace Api.Tests.Mqtt;

/// <summary>The node's MQTT clients when a device connects again before the end of its previous connection is handled.</summary>
public sealed class MqttClientsTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-06-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static MqttClient Client(bool persistent = false) => new("dev-1", "devices", mayActForAny: false, MqttProtocolVersion.V500, persistent);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_end_of_a_connection_the_device_already_replaced_leaves_the_new_one_connected_and_counted_once(bool persistent)
    {
        var clients = new MqttClients();
        var first = new IPEndPoint(IPAddress.Loopback, 50_001);
        var second = new IPEndPoint(IPAddress.Loopback, 50_002);
        Assert.True(clients.TryValidate(Client(persistent), first, maxPerKey: 1, nowMs: 0));
        Assert.NotNull(clients.Connected("dev-1", first, T0));
        // The device connects again (a reconnect takes its own place under the key's limit of 1)...
        Assert.True(clients.TryValidate(Client(persistent), second, maxPerKey: 1, nowMs: 1_000));
        var current = clients.Connected("dev-1", second, T0.AddSeconds(1));
        Assert.NotNull(current);
        Assert.Equal(1, clients.ConnectedCount);

        // ...and only then is the end of its first connection handled: nothing changes.
        Assert.Null(clients.Disconnected("dev-1", first, sessionKept: persistent, T0.AddSeconds(2)));
        Assert.Same(current, clients.Get("dev-1"));
        Assert.Equal(T0.AddSeconds(1), current.ConnectedAt);
        Assert.Equal(1, clients.ConnectedCount);
        Assert.Equal(0, clients.WaitingCount("devices"));

        // The end of the second connection is the client's.
        Assert.Same(current, clients.Disconnected("dev-1", second, sessionKept: persistent, T0.AddSeconds(3)));
        Assert.Equal(0, clients.ConnectedCount);
        Assert.Equal(persistent ? 1 : 0, clients.WaitingCount("devices"));
        Assert.Equal(persistent, clients.Get("dev-1") is { ConnectedAt: null });
    }
}
