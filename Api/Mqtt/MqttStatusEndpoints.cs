using Api.Auth;
using Microsoft.Extensions.Options;

namespace Api.Mqtt;

/// <summary>The MQTT endpoint of the node that answers: where it listens, its connected devices, what it stored and refused.</summary>
public sealed record MqttStatusDto(bool Enabled, string? TcpEndPoint, string WebSocketPath, int Connected, long PublishesStored,
    long ReadingsStored, IReadOnlyDictionary<string, long> Refused, IReadOnlyList<MqttClientDto> Clients);

/// <summary>A connected device: its id (the MQTT client id), the API key's name, MQTT version, since when.</summary>
public sealed record MqttClientDto(string DeviceId, string KeyName, string Protocol, bool PersistentSession, DateTimeOffset ConnectedAt,
    bool SubscribedToCommands);

public static class MqttStatusEndpoints
{
    /// <summary>Clients listed at most (the count is always complete).</summary>
    public const int MaxClientsListed = 1_000;

    public static IEndpointRouteBuilder MapMqttStatus(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/mqtt", (MqttEndpoint endpoint, MqttClients clients, MqttCounters counters, IOptions<MqttOptions> options) =>
                TypedResults.Ok(new MqttStatusDto(
                    options.Value.Enabled,
                    endpoint.TcpEndPoint?.ToString(),
                    MqttEndpoint.WebSocketPath,
                    clients.ConnectedCount,
                    counters.PublishesStored,
                    counters.ReadingsStored,
                    counters.RefusedByKind,
                    clients.ConnectedNow.OrderBy(c => c.DeviceId, StringComparer.Ordinal).Take(MaxClientsListed)
                        .Select(c => new MqttClientDto(c.DeviceId, c.KeyName, c.IsV5 ? "5" : "3.1.1", c.Persistent, c.ConnectedAt!.Value, c.CommandsQos is not null))
                        .ToArray())))
            .ForOperators()
            .WithTags("MQTT")
            .WithSummary($"This node's MQTT endpoint: listeners, connected devices (the first {MaxClientsListed} by id), publishes stored and refused by kind")
            .Produces<MqttStatusDto>();
        return routes;
    }
}
