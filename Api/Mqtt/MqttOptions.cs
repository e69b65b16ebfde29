namespace Api.Mqtt;

/// <summary>Settings of section "Mqtt": the MQTT endpoint of the Api (TCP, and WebSockets at <see cref="MqttEndpoint.WebSocketPath"/>).</summary>
public sealed class MqttOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>The address the TCP listener binds (loopback by default; 0.0.0.0 for every interface).</summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>The TCP port (1883, MQTT's registered port, by default; 0 takes a free port, written to the log).</summary>
    public int Port { get; set; } = 1883;

    /// <summary>TCP connections the MQTT listener holds at once on this node (authenticated or not).</summary>
    public long MaxConnections { get; set; } = 100_000;

    /// <summary>Connections one API key may hold at once on this node.</summary>
    public int MaxConnectionsPerKey { get; set; } = 10_000;

    /// <summary>The largest MQTT packet a client may send; a larger one closes its connection before it is buffered.</summary>
    public int MaxPacketBytes { get; set; } = 256 * 1024;

    /// <summary>The longest keep-alive a client may ask for (0, "never time out", is refused: a silent client is dropped after 1.5 of it).</summary>
    public TimeSpan MaxKeepAlive { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>How long a persistent session (and its commands' delivery state) is kept after its client disconnects, at most.</summary>
    public TimeSpan MaxSessionExpiry { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// Persistent sessions of one API key kept on this node while their clients are away, at most: past it the session
    /// whose client left first is deleted (its device gets its pending commands from the store when it subscribes again).
    /// </summary>
    public int MaxWaitingSessionsPerKey { get; set; } = 10_000;

    /// <summary>
    /// How long a QoS 1 publish waits for the log while it cannot take writes: an MQTT 5 client then gets a reason code; an
    /// MQTT 3.1.1 client, which has no way to hear of a failure, gets no PUBACK and waits on (its keep-alive ends the
    /// connection, and it publishes again when it reconnects).
    /// </summary>
    public TimeSpan LogWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Commands handed to one device's connection and not yet acknowledged, at most; a device past it is disconnected.</summary>
    public int MaxUnacknowledgedCommands { get; set; } = 100;

    /// <summary>How often this node reports its connections to the cluster (per device presence and the node's count).</summary>
    public TimeSpan PresenceInterval { get; set; } = TimeSpan.FromSeconds(15);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!System.Net.IPAddress.TryParse(Address, out _))
        {
            errors.Add($"Mqtt:Address '{Address}' is not an IP address");
        }
        if (Port is < 0 or > 65535)
        {
            errors.Add("Mqtt:Port must be between 0 and 65535");
        }
        if (MaxConnections is < 1 or > 10_000_000)
        {
            errors.Add("Mqtt:MaxConnections must be between 1 and 10000000");
        }
        if (MaxWaitingSessionsPerKey is < 1 or > 10_000_000)
        {
            errors.Add("Mqtt:MaxWaitingSessionsPerKey must be between 1 and 10000000");
        }
        if (MaxConnectionsPerKey is < 1 or > 10_000_000)
        {
            errors.Add("Mqtt:MaxConnectionsPerKey must be between 1 and 10000000");
        }
        if (MaxPacketBytes is < 1024 or > 256 * 1024 * 1024)
        {
            errors.Add("Mqtt:MaxPacketBytes must be between 1024 and 268435456");
        }
        if (MaxKeepAlive < TimeSpan.FromSeconds(1) || MaxKeepAlive > TimeSpan.FromSeconds(ushort.MaxValue))
        {
            errors.Add("Mqtt:MaxKeepAlive must be between 00:00:01 and 18:12:15");
        }
        if (MaxSessionExpiry < TimeSpan.Zero || MaxSessionExpiry > TimeSpan.FromDays(365))
        {
            errors.Add("Mqtt:MaxSessionExpiry must be between 00:00:00 and 365.00:00:00");
        }
        if (LogWait < TimeSpan.Zero || LogWait > TimeSpan.FromMinutes(10))
        {
            errors.Add("Mqtt:LogWait must be between 00:00:00 and 00:10:00");
        }
        if (MaxUnacknowledgedCommands is < 1 or > 100_000)
        {
            errors.Add("Mqtt:MaxUnacknowledgedCommands must be between 1 and 100000");
        }
        if (PresenceInterval < TimeSpan.FromSeconds(1) || PresenceInterval > TimeSpan.FromMinutes(10))
        {
            errors.Add("Mqtt:PresenceInterval must be between 00:00:01 and 00:10:00");
        }
        return errors;
    }
}
