using System.Net;
using Api.Tests.Integration;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Mqtt;

/// <summary>The Api on a real Kestrel listener, for MQTT over WebSockets at /mqtt (MQTTnet's client: mosquitto has none).</summary>
public sealed class MqttWebSocketApiFactory : ApiFactory
{
    public MqttWebSocketApiFactory() => UseKestrel(0);

    public Uri WebSocketUri
    {
        get
        {
            StartServer();
            var http = new Uri(Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            return new Uri($"ws://{http.Authority}/mqtt");
        }
    }
}

public sealed class MqttWebSocketTests(MqttWebSocketApiFactory factory) : IClassFixture<MqttWebSocketApiFactory>
{
    private async Task<IMqttClient> ConnectAsync(string clientId, string key, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var result = await client.ConnectAsync(new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri(factory.WebSocketUri.ToString()))
            .WithClientId(clientId)
            .WithCredentials(clientId, key)
            .WithProtocolVersion(version)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .Build());
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        return client;
    }

    private static MqttApplicationMessage Message(string topic, string payload) => new MqttApplicationMessageBuilder()
        .WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();

    [Fact]
    public async Task Telemetry_over_websockets_is_acknowledged_once_stored_and_refusals_carry_their_reason()
    {
        var window = factory.NextWindow();
        var id = Ids.New("mqtt-ws");
        using var client = await ConnectAsync(id, ApiFactory.DeviceKey);

        var stored = await client.PublishAsync(Message($"devices/{id}/telemetry", $$$"""{"timestamp":{{{window + 1_000}}},"temp":21.5}"""));
        Assert.Equal(MqttClientPublishReasonCode.Success, stored.ReasonCode);
        var bad = await client.PublishAsync(Message($"devices/{id}/telemetry", """{"temp":[1]}"""));
        Assert.Equal((MqttClientPublishReasonCode.PayloadFormatInvalid, "All 1 readings were rejected: item 0: field 'temp' must be a number, string or boolean"),
            (bad.ReasonCode, bad.ReasonString));
        await client.DisconnectAsync();

        await factory.CloseMinuteAsync(window);
        var points = await Eventually.Json(async () =>
        {
            var body = await (await factory.Operator().GetAsync($"/api/v1/sensors/{id}/metrics?from={Iso(window)}&to={Iso(window + 60_000)}")).SensorBodyAsync();
            return body is { } b && b.GetProperty("points").GetArrayLength() == 1 ? b.GetProperty("points") : null;
        }, what: "the closed minute");
        JsonAssert.Equal(new[] { new { minute = T(window), metric = "temp", count = 1, min = 21.5, max = 21.5, sum = 21.5, avg = 21.5, first = 21.5, last = 21.5 } }, points);
    }

    [Fact]
    public async Task A_websocket_connection_needs_a_valid_key()
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var result = await client.ConnectAsync(new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri(factory.WebSocketUri.ToString()))
            .WithClientId("ws-nobody")
            .WithCredentials("ws-nobody", "not-a-key-of-this-api")
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .Build());
        Assert.Equal((MqttClientConnectResultCode.BadUserNameOrPassword, "The API key is not valid."), (result.ResultCode, result.ReasonString));
        client.Dispose();
    }
}
