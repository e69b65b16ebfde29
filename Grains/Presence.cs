using Grains.Abstractions;

namespace Grains;

/// <summary>The rules of MQTT presence, pure: which report of a device's connection, or of a node's count, stands.</summary>
public static class Presence
{
    /// <summary>
    /// A newer connection (later start) replaces an older one; the same one renews its lease. A report of the connection
    /// that <paramref name="ended"/> (a renewal that crossed its disconnection) changes nothing.
    /// </summary>
    public static DeviceConnection? Connected(DeviceConnection? current, (string Node, long SinceMs)? ended, DeviceConnection reported) =>
        ended is { } gone && gone.Node == reported.Node && gone.SinceMs == reported.SinceMs
            ? current
            : current is null || reported.SinceMs > current.SinceMs
              || (reported.SinceMs == current.SinceMs && reported.Node == current.Node && reported.LeaseUntilMs >= current.LeaseUntilMs)
                ? reported
                : current;

    /// <summary>Only the connection that ended is removed: a device that reconnected (elsewhere, or later) stays connected.</summary>
    public static DeviceConnection? Disconnected(DeviceConnection? current, string node, long sinceMs) =>
        current is not null && current.Node == node && current.SinceMs == sinceMs ? null : current;

    public static DeviceConnection? Current(DeviceConnection? current, long nowMs) =>
        current is not null && current.LeaseUntilMs > nowMs ? current : null;

    /// <summary>The node's latest report replaces its earlier ones; reports expired by its time are dropped.</summary>
    public static void Report(Dictionary<string, MqttNodeReport> reports, MqttNodeReport report)
    {
        if (!reports.TryGetValue(report.Node, out var current) || report.AtMs >= current.AtMs)
        {
            reports[report.Node] = report;
        }
        foreach (var expired in reports.Values.Where(r => r.LeaseUntilMs <= report.AtMs).Select(r => r.Node).ToList())
        {
            reports.Remove(expired);
        }
    }

    /// <summary>The reports still within their lease, by node name.</summary>
    public static MqttNodeReport[] Live(IReadOnlyDictionary<string, MqttNodeReport> reports, long nowMs) =>
        [.. reports.Values.Where(r => r.LeaseUntilMs > nowMs).OrderBy(r => r.Node, StringComparer.Ordinal)];
}

/// <summary>The Orleans shell of a device's <see cref="Presence"/>: memory only, nothing stored.</summary>
[GrainType("device-presence")]
public sealed class DevicePresenceGrain : Grain, IDevicePresenceGrain
{
    private DeviceConnection? _connection;
    private (string Node, long SinceMs)? _ended;

    public Task ConnectedAsync(DeviceConnection connection)
    {
        _connection = Presence.Connected(_connection, _ended, connection);
        if (_connection is null)
        {
            return Task.CompletedTask;
        }
        // Idle collection must not forget a connection within its lease (renewals are the only calls a quiet device brings).
        DelayDeactivation(TimeSpan.FromMilliseconds(Math.Max(0, _connection!.LeaseUntilMs - _connection.ReportedAtMs)));
        return Task.CompletedTask;
    }

    public Task DisconnectedAsync(string node, long sinceMs)
    {
        _ended = (node, sinceMs);
        _connection = Presence.Disconnected(_connection, node, sinceMs);
        if (_connection is null)
        {
            DeactivateOnIdle();
        }
        return Task.CompletedTask;
    }

    public Task<DeviceConnection?> GetAsync(long nowMs) => Task.FromResult(Presence.Current(_connection, nowMs));
}

/// <summary>The Orleans shell of the nodes' MQTT counts: memory only (each node reports again within its lease).</summary>
[GrainType("mqtt-nodes")]
public sealed class MqttNodesGrain : Grain, IMqttNodesGrain
{
    private readonly Dictionary<string, MqttNodeReport> _reports = new(StringComparer.Ordinal);

    public Task ReportAsync(MqttNodeReport report)
    {
        Presence.Report(_reports, report);
        return Task.CompletedTask;
    }

    public Task<MqttNodeReport[]> GetAsync(long nowMs) => Task.FromResult(Presence.Live(_reports, nowMs));
}
