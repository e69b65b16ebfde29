using Api.Auth;
using Microsoft.Extensions.Options;

namespace Api.Mqtt;

/// <summary>
/// MQTT over the cluster (<see cref="Cluster"/>: every Api node's count) and on the node that answers: where it listens,
/// its connected devices, what it stored and refused.
/// </summary>
public sealed record MqttStatusDto(MqttClusterDto Cluster, string Node, bool Enabled, string? TcpEndPoint, string WebSocketPath, int Connected,
    long PublishesStored, long ReadingsStored, IReadOnlyDictionary<string, long> Refused, IReadOnlyList<MqttClientDto> Clients);

/// <summary>Devices connected over MQTT to any Api node, and each node's count as it last reported it.</summary>
public sealed record MqttClusterDto(int Connected, IReadOnlyList<MqttNodeDto> Nodes);

public sealed record MqttNodeDto(string Node, int Connected, DateTimeOffset ReportedAt);

/// <summary>A device's MQTT connection: to which Api node, since when, which MQTT version.</summary>
public sealed record MqttConnectionDto(DateTimeOffset Since, string Node, string Protocol);

/// <summary>A connected device: its id (the MQTT client id), the API key's name, MQTT version, since when.</summary>
public sealed record MqttClientDto(string DeviceId, string KeyName, string Protocol, bool PersistentSession, DateTimeOffset ConnectedAt,
    bool SubscribedToCommands);

public static class MqttStatusEndpoints
{
    /// <summary>Clients listed at most (the count is always complete).</summary>
    public const int MaxClientsListed = 1_000;

    public static IEndpointRouteBuilder MapMqttStatus(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/mqtt", async (MqttEndpoint endpoint, MqttClients clients, MqttCounters counters, MqttPresence presence,
                IOptions<MqttOptions> options) =>
            {
                var nodes = await presence.NodesAsync();
                return TypedResults.Ok(new MqttStatusDto(
                    new MqttClusterDto(nodes.Sum(n => n.Connected), nodes.Select(n => new MqttNodeDto(n.Node, n.Connected, Map.Time(n.AtMs))).ToArray()),
                    presence.Node,
                    options.Value.Enabled,
                    endpoint.TcpEndPoint?.ToString(),
                    MqttEndpoint.WebSocketPath,
                    clients.ConnectedCount,
                    counters.PublishesStored,
                    counters.ReadingsStored,
                    counters.RefusedByKind,
                    clients.ConnectedNow.Select(c => (Client: c, Since: c.ConnectedAt)).Where(c => c.Since is not null)
                        .OrderBy(c => c.Client.DeviceId, StringComparer.Ordinal).Take(MaxClientsListed)
                        .Select(c => new MqttClientDto(c.Client.DeviceId, c.Client.KeyName, c.Client.IsV5 ? "5" : "3.1.1", c.Client.Persistent,
                            Map.Time(c.Since!.Value.ToUnixTimeMilliseconds()), c.Client.CommandsQos is not null))
                        .ToArray()));
            })
            .ForOperators()
            .WithTags("MQTT")
            .WithSummary($"MQTT devices connected to the cluster (per Api node), and this node's MQTT endpoint: listeners, connected devices (the first {MaxClientsListed} by id), publishes stored and refused by kind")
            .Produces<MqttStatusDto>();
        return routes;
    }
}
