using Api.Auth;
using Microsoft.Extensions.Options;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace Api.Mqtt;

/// <summary>
/// The MQTT rules of the Api, as handlers of MQTTnet's server events: who may connect (a device key as the password, the
/// client id is the device id), what a client may subscribe to (its own commands topic), which answers a client of each
/// protocol version gets. Telemetry publishes go to <see cref="MqttTelemetry"/>, commands to <see cref="MqttCommands"/>.
/// </summary>
public sealed partial class MqttBroker(MqttClients clients, MqttTelemetry telemetry, MqttCommands commands, MqttPresence presence,
    IOptionsMonitor<ApiKeyOptions> keys, IOptions<MqttOptions> options, TimeProvider time, ILogger<MqttBroker> logger)
{
    public static string TelemetryTopic(string deviceId) => $"devices/{deviceId}/telemetry";

    public static string CommandsTopic(string deviceId) => $"devices/{deviceId}/commands";

    private MqttServer? _server;

    public void Attach(MqttServer server)
    {
        _server = server;
        server.ValidatingConnectionAsync += ValidateAsync;
        server.ClientConnectedAsync += ConnectedAsync;
        server.ClientDisconnectedAsync += DisconnectedAsync;
        server.InterceptingSubscriptionAsync += InterceptSubscriptionAsync;
        server.ClientSubscribedTopicAsync += SubscribedAsync;
        server.ClientUnsubscribedTopicAsync += UnsubscribedAsync;
        server.InterceptingPublishAsync += telemetry.InterceptAsync;
        server.InterceptingOutboundPacketAsync += InterceptOutboundAsync;
        server.ClientAcknowledgedPublishPacketAsync += commands.AcknowledgedAsync;
    }

    private Task ValidateAsync(ValidatingConnectionEventArgs e)
    {
        var v5 = e.ProtocolVersion == MqttProtocolVersion.V500;
        var key = string.IsNullOrEmpty(e.Password) ? null : ApiKeyMatch.Find(keys.CurrentValue.Keys, e.Password);
        if (key is null)
        {
            return Refuse(e, MqttConnectReasonCode.BadUserNameOrPassword, string.IsNullOrEmpty(e.Password)
                ? "An API key is required as the password (MQTT 3.1.1 also needs a user name: any, e.g. the device id)."
                : "The API key is not valid.");
        }
        if (SensorIds.Problem(e.ClientId ?? "") is { } problem)
        {
            return Refuse(e, MqttConnectReasonCode.ClientIdentifierNotValid, $"The client id is the device id: it {problem}.");
        }
        var isOperator = key.Role == Roles.Operator;
        if (!isOperator && key.Devices.Count > 0 && !key.Devices.Contains(e.ClientId, StringComparer.Ordinal))
        {
            return Refuse(e, MqttConnectReasonCode.NotAuthorized, $"This API key may not connect as device '{e.ClientId}'.");
        }
        if (clients.OtherOwner(e.ClientId!, key.Name) is not null)
        {
            return Refuse(e, MqttConnectReasonCode.NotAuthorized,
                $"Device '{e.ClientId}' holds a session of another API key on this node; it ends when that key's client disconnects (or its session expires).");
        }
        var maxKeepAlive = (int)options.Value.MaxKeepAlive.TotalSeconds;
        if (e.KeepAlivePeriod is not { } keepAlive || keepAlive == 0 || keepAlive > maxKeepAlive)
        {
            // MQTT 3.1.1 has no code for it: "not authorised" reads closer than "unacceptable protocol version".
            return Refuse(e, v5 ? MqttConnectReasonCode.ImplementationSpecificError : MqttConnectReasonCode.NotAuthorized,
                $"Keep-alive must be 1 to {maxKeepAlive} seconds (Mqtt:MaxKeepAlive); 0, never, is not accepted.");
        }
        var max = options.Value.MaxConnectionsPerKey;
        var persistent = v5 ? e.SessionExpiryInterval > 0 : e.CleanSession == false;
        if (!clients.TryValidate(new MqttClient(e.ClientId!, key.Name, isOperator, e.ProtocolVersion, persistent), e.RemoteEndPoint, max,
                time.GetUtcNow().ToUnixTimeMilliseconds()))
        {
            // MQTT 3.1.1 clients would read Quota exceeded as "unacceptable protocol version": Server busy reads as what it is.
            return Refuse(e, v5 ? MqttConnectReasonCode.QuotaExceeded : MqttConnectReasonCode.ServerBusy,
                $"This API key holds {max} MQTT connections on this node, its limit (Mqtt:MaxConnectionsPerKey).");
        }
        return Task.CompletedTask;
    }

    private Task Refuse(ValidatingConnectionEventArgs e, MqttConnectReasonCode code, string reason)
    {
        e.ReasonCode = code;
        e.ReasonString = reason;
        LogRefused(logger, e.ClientId, e.RemoteEndPoint?.ToString(), code, reason);
        return Task.CompletedTask;
    }

    private async Task ConnectedAsync(ClientConnectedEventArgs e)
    {
        var client = clients.Connected(e.ClientId, e.RemoteEndPoint, time.GetUtcNow());
        if (client is null)
        {
            return;
        }
        LogConnected(logger, e.ClientId, client.KeyName, e.ProtocolVersion, client.Persistent);
        presence.Connected(client);
        if (client.CommandsQos is not null)
        {
            // A persistent session of this node resumed: it still subscribes to its commands.
            await SendPendingAsync(client, e.ClientId);
        }
    }

    /// <summary>Pending commands for a client; a failure is logged (they stay pending), never thrown into the client's connection.</summary>
    private async Task SendPendingAsync(MqttClient client, string clientId)
    {
        try
        {
            await commands.SendPendingAsync(client, clientId);
        }
        catch (Exception e)
        {
            LogPendingFailed(logger, e, clientId);
        }
    }

    private Task DisconnectedAsync(ClientDisconnectedEventArgs e)
    {
        clients.Abandoned(e.ClientId, e.RemoteEndPoint);
        var since = clients.Get(e.ClientId)?.ConnectedAt;
        var kept = clients.Get(e.ClientId) is { Persistent: true } || e.DisconnectType == MqttClientDisconnectType.Takeover;
        if (clients.Disconnected(e.ClientId, e.RemoteEndPoint, kept, time.GetUtcNow()) is { } client && since is not null)
        {
            LogDisconnected(logger, e.ClientId, e.DisconnectType, e.ReasonCode?.ToString());
            presence.Disconnected(e.ClientId, since.Value);
            if (kept && clients.WaitingOverLimit(client.KeyName, options.Value.MaxWaitingSessionsPerKey) is { Count: > 0 } over)
            {
                // Deleted after this handler: MQTTnet is still ending this client's connection.
                _ = Task.Run(() => DeleteSessionsAsync(over, client.KeyName));
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>Deletes persistent sessions of a key past Mqtt:MaxWaitingSessionsPerKey whose clients are still away.</summary>
    private async Task DeleteSessionsAsync(IReadOnlyList<string> clientIds, string keyName)
    {
        foreach (var clientId in clientIds)
        {
            try
            {
                if (clients.Get(clientId) is not { ConnectedAt: null } || _server is null)
                {
                    continue; // came back meanwhile
                }
                MqttSessionStatus session;
                try
                {
                    session = await _server.GetSessionAsync(clientId);
                }
                catch (InvalidOperationException)
                {
                    clients.Forget(clientId);
                    continue; // MQTTnet has no session of that id any more
                }
                await session.DeleteAsync();
                clients.Forget(clientId);
                LogSessionEvicted(logger, clientId, keyName, options.Value.MaxWaitingSessionsPerKey);
            }
            catch (Exception ex)
            {
                LogEvictionFailed(logger, ex, clientId);
            }
        }
    }

    private Task InterceptSubscriptionAsync(InterceptingSubscriptionEventArgs e)
    {
        var own = CommandsTopic(e.ClientId);
        if (!string.Equals(e.TopicFilter.Topic, own, StringComparison.Ordinal))
        {
            e.ProcessSubscription = false;
            e.Response.ReasonCode = MqttSubscribeReasonCode.NotAuthorized;
            e.Response.ReasonString = $"A device subscribes only to its commands, '{own}'.";
            LogSubscriptionRefused(logger, e.ClientId, e.TopicFilter.Topic);
            return Task.CompletedTask;
        }
        if (e.TopicFilter.QualityOfServiceLevel == MqttQualityOfServiceLevel.ExactlyOnce)
        {
            // Commands are sent at least once; a QoS 2 subscription is granted QoS 1.
            e.TopicFilter.QualityOfServiceLevel = MqttQualityOfServiceLevel.AtLeastOnce;
            e.Response.ReasonCode = MqttSubscribeReasonCode.GrantedQoS1;
        }
        e.TopicFilter.RetainAsPublished = false;
        return Task.CompletedTask;
    }

    private async Task SubscribedAsync(ClientSubscribedTopicEventArgs e)
    {
        if (clients.Get(e.ClientId) is { } client && e.TopicFilter.Topic == CommandsTopic(e.ClientId))
        {
            client.CommandsQos = e.TopicFilter.QualityOfServiceLevel;
            if (client.Persistent)
            {
                await SendPendingAsync(client, e.ClientId);
            }
        }
    }

    private Task UnsubscribedAsync(ClientUnsubscribedTopicEventArgs e)
    {
        if (clients.Get(e.ClientId) is { } client && e.TopicFilter == CommandsTopic(e.ClientId))
        {
            client.CommandsQos = null;
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// Advertises the packet size limit to MQTT 5 clients (in the CONNACK), and withholds a failure PUBACK from MQTT 3.1.1
    /// clients (a PUBREC for QoS 2): their protocol has no reason codes, so it would read as "stored".
    /// </summary>
    private Task InterceptOutboundAsync(InterceptingPacketEventArgs e)
    {
        switch (e.Packet)
        {
            case MqttConnAckPacket connAck:
                connAck.MaximumPacketSize = (uint)options.Value.MaxPacketBytes;
                connAck.RetainAvailable = false;
                break;
            case MqttPubAckPacket { ReasonCode: >= MqttPubAckReasonCode.UnspecifiedError } when clients.Get(e.ClientId) is { IsV5: false }:
            case MqttPubRecPacket { ReasonCode: >= MqttPubRecReasonCode.UnspecifiedError } when clients.Get(e.ClientId) is { IsV5: false }:
                e.ProcessPacket = false;
                break;
        }
        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT connection of client {ClientId} from {Remote} refused ({Code}): {Reason}")]
    private static partial void LogRefused(ILogger logger, string? clientId, string? remote, MqttConnectReasonCode code, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT persistent session of {ClientId} deleted: key {KeyName} keeps at most {Max} sessions of absent clients (Mqtt:MaxWaitingSessionsPerKey)")]
    private static partial void LogSessionEvicted(ILogger logger, string clientId, string keyName, int max);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT persistent session of {ClientId} could not be deleted")]
    private static partial void LogEvictionFailed(ILogger logger, Exception exception, string clientId);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT client {ClientId} connected with key {KeyName} ({Protocol}, persistent session: {Persistent})")]
    private static partial void LogConnected(ILogger logger, string clientId, string keyName, MqttProtocolVersion protocol, bool persistent);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT client {ClientId} disconnected ({Type}, {Reason})")]
    private static partial void LogDisconnected(ILogger logger, string clientId, MqttClientDisconnectType type, string? reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pending commands of MQTT client {ClientId} could not be sent; they stay pending")]
    private static partial void LogPendingFailed(ILogger logger, Exception exception, string clientId);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT client {ClientId} may not subscribe to {Topic}")]
    private static partial void LogSubscriptionRefused(ILogger logger, string clientId, string topic);
}
