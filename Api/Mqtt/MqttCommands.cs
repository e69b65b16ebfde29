using System.Text.Json;
using Grains.Abstractions;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using MQTTnet.Server;
using Runtime;

namespace Api.Mqtt;

/// <summary>
/// Device commands over MQTT. A rule's control action reaches every Api node as a live event once it is stored; the node
/// holding the device's connection publishes it to <c>devices/{id}/commands</c> at the QoS the device subscribed with
/// (at most 1), and records it delivered when the device acknowledges it (QoS 0: when it is handed over), as an HTTP fetch
/// does. A device with a persistent session is sent its pending commands when it subscribes or its session resumes, from
/// the store, so it gets what it missed whichever node it reconnects to. The payload is the command as the HTTP fetch
/// returns it; a command may arrive twice (after a reconnect), so devices de-duplicate by its <c>id</c>.
/// </summary>
public sealed partial class MqttCommands(MqttClients clients, IServiceProvider services, IReadStore store, IOptions<MqttOptions> options,
    ILogger<MqttCommands> logger)
{
    /// <summary>The MQTT user property that carries a command's id (devices read the id from the payload).</summary>
    public const string CommandIdProperty = "command-id";

    private MqttServer Server => services.GetRequiredService<MqttServer>();

    /// <summary>A command stored by its rule: sent now when this node holds its device's subscribed connection.</summary>
    public async Task DeliverAsync(DeviceCommand command)
    {
        if (clients.Get(command.DeviceId) is { ConnectedAt: not null, CommandsQos: not null } client)
        {
            await SendAsync(client, command);
        }
    }

    /// <summary>Sends the device's pending commands (oldest first) that its session does not hold already.</summary>
    public async Task SendPendingAsync(MqttClient client, string clientId)
    {
        IReadOnlyList<DeviceCommand> pending;
        try
        {
            pending = await store.ListPendingCommandsAsync(clientId, options.Value.MaxUnacknowledgedCommands, CancellationToken.None);
        }
        catch (Exception e) when (Runtime.Postgres.PostgresUnavailableException.IsUnavailable(e))
        {
            LogStoreUnavailable(logger, clientId, e.Message);
            return;
        }
        foreach (var command in pending)
        {
            await SendAsync(client, command);
        }
    }

    private async Task SendAsync(MqttClient client, DeviceCommand command)
    {
        if (client.CommandsQos is not { } qos || !client.Unacknowledged.TryAdd(command.CommandId, 0))
        {
            return;
        }
        if (client.Unacknowledged.Count > options.Value.MaxUnacknowledgedCommands)
        {
            client.Unacknowledged.TryRemove(command.CommandId, out _);
            LogTooManyUnacknowledged(logger, client.DeviceId, options.Value.MaxUnacknowledgedCommands);
            // Not awaited: writing the DISCONNECT to a client that reads nothing may take the communication timeout, and
            // live events for every other device wait on this one.
            _ = DisconnectAsync(client.DeviceId);
            return;
        }
        var message = new MqttApplicationMessageBuilder()
            .WithTopic(MqttBroker.CommandsTopic(client.DeviceId))
            .WithPayload(JsonSerializer.SerializeToUtf8Bytes(command.ToDto(), ApiJsonContext.Default.CommandDto))
            .WithContentType("application/json")
            .WithQualityOfServiceLevel(qos)
            .WithUserProperty(CommandIdProperty, System.Text.Encoding.UTF8.GetBytes(command.CommandId).AsMemory())
            .Build();
        MqttSessionStatus session;
        try
        {
            session = await Server.GetSessionAsync(client.DeviceId);
        }
        catch (InvalidOperationException)
        {
            client.Unacknowledged.TryRemove(command.CommandId, out _);
            return;
        }
        if (!session.TryEnqueueApplicationMessage(message, out _))
        {
            client.Unacknowledged.TryRemove(command.CommandId, out _);
            LogQueueFull(logger, client.DeviceId, command.CommandId);
            return;
        }
        LogSent(logger, command.CommandId, client.DeviceId, qos);
        if (qos == MqttQualityOfServiceLevel.AtMostOnce)
        {
            client.Unacknowledged.TryRemove(command.CommandId, out _);
            await MarkDeliveredAsync(client.DeviceId, command.CommandId);
        }
    }

    private async Task DisconnectAsync(string deviceId)
    {
        try
        {
            await Server.DisconnectClientAsync(deviceId, new MqttServerClientDisconnectOptions
            {
                ReasonCode = MqttDisconnectReasonCode.QuotaExceeded,
                ReasonString = $"{options.Value.MaxUnacknowledgedCommands} commands are not acknowledged (Mqtt:MaxUnacknowledgedCommands).",
            });
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or IOException)
        {
            // Gone already.
        }
    }

    /// <summary>The device acknowledged a command (PUBACK): it is delivered.</summary>
    public async Task AcknowledgedAsync(ClientAcknowledgedPublishPacketEventArgs e)
    {
        var commandId = e.PublishPacket.UserProperties?.FirstOrDefault(p => p.Name == CommandIdProperty)?.ReadValueAsString();
        if (commandId is null)
        {
            return;
        }
        clients.Get(e.ClientId)?.Unacknowledged.TryRemove(commandId, out _);
        await MarkDeliveredAsync(e.ClientId, commandId);
    }

    private async Task MarkDeliveredAsync(string deviceId, string commandId)
    {
        try
        {
            await store.MarkCommandDeliveredAsync(deviceId, commandId, CancellationToken.None);
            LogDelivered(logger, commandId, deviceId);
        }
        catch (Exception e) when (Runtime.Postgres.PostgresUnavailableException.IsUnavailable(e))
        {
            // Still pending in the store: sent again at the device's next subscription (at least once).
            LogStoreUnavailable(logger, deviceId, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "MQTT command {CommandId} sent to {DeviceId} (QoS {Qos})")]
    private static partial void LogSent(ILogger logger, string commandId, string deviceId, MqttQualityOfServiceLevel qos);

    [LoggerMessage(Level = LogLevel.Debug, Message = "MQTT command {CommandId} delivered to {DeviceId}")]
    private static partial void LogDelivered(ILogger logger, string commandId, string deviceId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT command {CommandId} for {DeviceId} not queued: its session's queue is full")]
    private static partial void LogQueueFull(ILogger logger, string deviceId, string commandId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT device {DeviceId} disconnected: {Max} commands unacknowledged")]
    private static partial void LogTooManyUnacknowledged(ILogger logger, string deviceId, int max);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT commands of {DeviceId}: the store cannot be reached ({Reason}); they stay pending")]
    private static partial void LogStoreUnavailable(ILogger logger, string deviceId, string reason);
}
