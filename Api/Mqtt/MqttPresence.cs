using System.Threading.Channels;
using Grains.Abstractions;
using Microsoft.Extensions.Options;

namespace Api.Mqtt;

/// <summary>
/// Tells the cluster which devices this node holds MQTT connections of, so that any Api node answers whether a device is
/// connected and how many are: each connection and disconnection goes to the device's <see cref="IDevicePresenceGrain"/>
/// in the order they happened (one queue, one sender), and every <see cref="MqttOptions.PresenceInterval"/> the node
/// renews its connections' leases (three intervals long) and reports its count to the <see cref="IMqttNodesGrain"/>. A
/// node that dies stops renewing: its devices read as disconnected once their leases run out.
/// </summary>
public sealed partial class MqttPresence(MqttClients clients, IGrainFactory grains, IOptions<MqttOptions> options, TimeProvider time,
    ILogger<MqttPresence> logger) : BackgroundService
{
    /// <summary>Renewals in flight at once.</summary>
    private const int RenewalsInFlight = 64;

    private readonly Channel<(string DeviceId, DeviceConnection? Connection, string Node, long SinceMs)> _changes =
        Channel.CreateUnbounded<(string, DeviceConnection?, string, long)>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>This Api node's name in presence reports: the host (a pod's name in Kubernetes) and the process.</summary>
    public string Node { get; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    private long LeaseMs => (long)(options.Value.PresenceInterval * 3).TotalMilliseconds;

    public void Connected(MqttClient client)
    {
        if (client.ConnectedAt is { } since)
        {
            _changes.Writer.TryWrite((client.DeviceId, ConnectionOf(client, since, time.GetUtcNow().ToUnixTimeMilliseconds()), Node, 0));
        }
    }

    public void Disconnected(string deviceId, DateTimeOffset since) =>
        _changes.Writer.TryWrite((deviceId, null, Node, since.ToUnixTimeMilliseconds()));

    /// <summary>The device's MQTT connection, on any node, or null.</summary>
    public Task<DeviceConnection?> OfDeviceAsync(string deviceId) =>
        grains.GetGrain<IDevicePresenceGrain>(deviceId).GetAsync(time.GetUtcNow().ToUnixTimeMilliseconds());

    /// <summary>The nodes' latest counts.</summary>
    public Task<MqttNodeReport[]> NodesAsync() => grains.GetGrain<IMqttNodesGrain>(0).GetAsync(time.GetUtcNow().ToUnixTimeMilliseconds());

    private DeviceConnection ConnectionOf(MqttClient client, DateTimeOffset since, long nowMs) =>
        new(Node, since.ToUnixTimeMilliseconds(), client.IsV5 ? "5" : "3.1.1", nowMs + LeaseMs, nowMs);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }
        var send = SendChangesAsync(stoppingToken);
        using var timer = new PeriodicTimer(options.Value.PresenceInterval, time);
        try
        {
            do
            {
                await RenewAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        _changes.Writer.TryComplete();
        await send;
    }

    private async Task SendChangesAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (deviceId, connection, node, sinceMs) in _changes.Reader.ReadAllAsync(stoppingToken))
            {
                try
                {
                    var grain = grains.GetGrain<IDevicePresenceGrain>(deviceId);
                    await (connection is null ? grain.DisconnectedAsync(node, sinceMs) : grain.ConnectedAsync(connection));
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The next renewal reports what holds then.
                    LogReportFailed(logger, deviceId, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Renews the lease of every connection held here, and reports the count.</summary>
    private async Task RenewAsync(CancellationToken stoppingToken)
    {
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var connected = clients.ConnectedNow.ToList();
        try
        {
            await grains.GetGrain<IMqttNodesGrain>(0).ReportAsync(new MqttNodeReport(Node, connected.Count, nowMs, nowMs + LeaseMs));
            await Parallel.ForEachAsync(connected, new ParallelOptions { MaxDegreeOfParallelism = RenewalsInFlight, CancellationToken = stoppingToken },
                async (client, _) =>
                {
                    if (client.ConnectedAt is { } since)
                    {
                        await grains.GetGrain<IDevicePresenceGrain>(client.DeviceId).ConnectedAsync(ConnectionOf(client, since, nowMs));
                    }
                });
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogReportFailed(logger, "(renewal)", e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT presence of {DeviceId} could not be reported ({Reason}); the next renewal reports it")]
    private static partial void LogReportFailed(ILogger logger, string deviceId, string reason);
}
