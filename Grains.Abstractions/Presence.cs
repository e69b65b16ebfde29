namespace Grains.Abstractions;

/// <summary>
/// A device's MQTT connection as the Api node holding it reports it: which node, since when (epoch ms, the node's
/// clock), the protocol, when it was reported and until when the report holds unless renewed (a node that stops renewing, say after a crash,
/// stops counting once its leases run out).
/// </summary>
[GenerateSerializer, Immutable, Alias("oiot.DeviceConnection")]
public sealed record DeviceConnection(
    [property: Id(0)] string Node,
    [property: Id(1)] long SinceMs,
    [property: Id(2)] string Protocol,
    [property: Id(3)] long LeaseUntilMs,
    [property: Id(4)] long ReportedAtMs);

/// <summary>How many MQTT devices an Api node holds, reported by it now and then (at <see cref="AtMs"/>, valid until <see cref="LeaseUntilMs"/>).</summary>
[GenerateSerializer, Immutable, Alias("oiot.MqttNodeReport")]
public sealed record MqttNodeReport(
    [property: Id(0)] string Node,
    [property: Id(1)] int Connected,
    [property: Id(2)] long AtMs,
    [property: Id(3)] long LeaseUntilMs);

/// <summary>
/// One grain per device (keyed by device id): whether it is connected over MQTT, to which Api node, since when. Kept in
/// memory only: the node holding the connection renews it within its lease, so a lost activation is whole again then.
/// </summary>
[Alias("oiot.IDevicePresenceGrain")]
public interface IDevicePresenceGrain : IGrainWithStringKey
{
    [Alias("connected")]
    Task ConnectedAsync(DeviceConnection connection);

    /// <summary>The connection of <paramref name="node"/> that began at <paramref name="sinceMs"/> ended (a newer one stays).</summary>
    [Alias("disconnected")]
    Task DisconnectedAsync(string node, long sinceMs);

    /// <summary>The connection whose lease runs past <paramref name="nowMs"/>, or null.</summary>
    [Alias("get"), Orleans.Concurrency.ReadOnly]
    Task<DeviceConnection?> GetAsync(long nowMs);
}

/// <summary>One grain (key 0): the MQTT connection counts the Api nodes report.</summary>
[Alias("oiot.IMqttNodesGrain")]
public interface IMqttNodesGrain : IGrainWithIntegerKey
{
    [Alias("report")]
    Task ReportAsync(MqttNodeReport report);

    /// <summary>The reports whose lease runs past <paramref name="nowMs"/>, by node name.</summary>
    [Alias("get"), Orleans.Concurrency.ReadOnly]
    Task<MqttNodeReport[]> GetAsync(long nowMs);
}
