extern alias ApiApp;

using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Tests.Shared;

namespace Simulator.Tests;

/// <summary>--transport mqtt against the real Api in embedded mode: one MQTT connection per sensor, QoS 1 publishes.</summary>
public sealed class MqttTransportTests : IAsyncLifetime
{
    private const string OperatorKey = "dev-operator-key-change-me";
    private const string DeviceKey = "dev-device-key-change-me";

    private readonly ApiHost _api = new();

    public Task InitializeAsync()
    {
        _ = _api.Server;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _api.DisposeAsync();

    private int MqttPort => _api.Services.GetRequiredService<ApiApp::Api.Mqtt.MqttEndpoint>().TcpEndPoint!.Port;

    [Fact]
    public async Task Every_reading_is_published_from_its_sensors_connection_and_acknowledged()
    {
        var settings = new SimulatorSettings
        {
            Transport = Transport.Mqtt,
            MqttUrl = new Uri($"mqtt://127.0.0.1:{MqttPort}"),
            Key = DeviceKey,
            Sensors = 5,
            Count = 25,
            TotalRate = 0,
            Concurrency = 4,
            Format = PayloadFormat.Engine,
        };
        using var engine = new SimulatorEngine(settings);
        var summary = await engine.RunAsync();

        Assert.Equal((25L, 25L, 0L, 0L), (summary.Sent, summary.Acknowledged, summary.Rejected, summary.Errors));
        Assert.Equal("mqtt 5", summary.Transport);
        var client = _api.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", OperatorKey);
        var status = JsonDocument.Parse(await client.GetStringAsync("/api/v1/mqtt")).RootElement;
        Assert.Equal(25, status.GetProperty("readingsStored").GetInt64());
        // Each sensor published 5 readings, each from its own connection (client id = sensor id).
        var model = new FleetModel(5, 1, AnomalyOptions.None, 0);
        for (var sensor = 0; sensor < 5; sensor++)
        {
            var response = await client.GetAsync($"/api/v1/sensors/{model.Id(sensor)}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task A_refused_connection_makes_every_reading_an_error()
    {
        var settings = new SimulatorSettings
        {
            Transport = Transport.Mqtt,
            MqttUrl = new Uri($"mqtt://127.0.0.1:{MqttPort}"),
            Key = "not-a-key-of-this-api",
            Sensors = 2,
            Count = 4,
            TotalRate = 0,
            Concurrency = 2,
        };
        using var engine = new SimulatorEngine(settings);
        var summary = await engine.RunAsync();

        Assert.Equal((4L, 0L, 4L), (summary.Sent, summary.Acknowledged, summary.Errors));
        Assert.Contains(summary.RejectedSamples, s => s.Contains("BadUserNameOrPassword", StringComparison.Ordinal));
    }

    [Fact]
    public void Mqtt_settings_are_validated()
    {
        Assert.Contains(new SimulatorSettings { Transport = Transport.Mqtt, Batch = 10 }.Validate(), e => e.Contains("--batch must be 1", StringComparison.Ordinal));
        Assert.Contains(new SimulatorSettings { Transport = Transport.Mqtt, MqttUrl = new Uri("mqtt://example.com:1883") }.Validate(),
            e => e.Contains("--allow-remote", StringComparison.Ordinal));
        Assert.Contains(new SimulatorSettings { Transport = Transport.Mqtt, MqttUrl = new Uri("http://127.0.0.1:1883") }.Validate(),
            e => e.Contains("mqtt://host:port", StringComparison.Ordinal));
        Assert.Contains(new SimulatorSettings { Transport = Transport.Mqtt, MqttVersion = "4" }.Validate(), e => e.Contains("--mqtt-version", StringComparison.Ordinal));
        Assert.Empty(new SimulatorSettings { Transport = Transport.Mqtt }.Validate());
        // HTTP runs ignore the MQTT settings.
        Assert.Empty(new SimulatorSettings { Batch = 10, MqttVersion = "4" }.Validate());
    }

    private sealed class ApiHost : WebApplicationFactory<ApiApp::Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseTestApiSettings();
        }
    }
}
