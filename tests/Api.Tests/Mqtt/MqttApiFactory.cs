using Api.Mqtt;
using Api.Tests.Integration;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Api.Tests.Mqtt;

/// <summary>The embedded Api with its MQTT listener on a free loopback port, small limits a test can reach.</summary>
public sealed class MqttApiFactory : ApiFactory
{
    public const int MaxPacketBytes = 8 * 1024;
    public const string LimitedKey = "limited-connections-key-for-tests";
    public const int MaxUnacknowledgedCommands = 3;
    public const int MaxWaitingSessionsPerKey = 2;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Mqtt:MaxPacketBytes", MaxPacketBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("Mqtt:LogWait", "00:00:01");
        builder.UseSetting("Auth:Keys:3:Name", "limited");
        builder.UseSetting("Auth:Keys:3:Key", LimitedKey);
        builder.UseSetting("Auth:Keys:3:Role", "device");
        builder.UseSetting("Mqtt:MaxConnectionsPerKey", "1");
        builder.UseSetting("Mqtt:MaxWaitingSessionsPerKey", MaxWaitingSessionsPerKey.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("Mqtt:PresenceInterval", "00:00:01");
        builder.UseSetting("Mqtt:MaxUnacknowledgedCommands", MaxUnacknowledgedCommands.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // Publishes per device (and device-key HTTP requests): bursts of 5, then 1 a second.
        builder.UseSetting("RateLimits:DeviceRequests:PerSecond", "1");
        builder.UseSetting("RateLimits:DeviceRequests:Burst", "5");
    }

    /// <summary>The MQTT TCP port (the host starts on first use).</summary>
    public int Port
    {
        get
        {
            _ = Server;
            return Services.GetRequiredService<MqttEndpoint>().TcpEndPoint!.Port;
        }
    }

    /// <summary>mosquitto arguments to connect as <paramref name="clientId"/> with <paramref name="key"/> over MQTT <paramref name="version"/>.</summary>
    public string[] Connect(string clientId, string key, string version = "mqttv5") =>
        ["-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-V", version, "-i", clientId, "-u", clientId, "-P", key, "-d"];
}
