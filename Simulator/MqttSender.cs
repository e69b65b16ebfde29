using System.Diagnostics;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Simulator;

/// <summary>What became of one publish.</summary>
public enum PublishOutcome
{
    Acknowledged,

    /// <summary>Refused for what it holds (payload, topic, key): sending it again cannot succeed.</summary>
    Rejected,

    /// <summary>Refused for now (a rate limit, the log cannot take writes): send it again later.</summary>
    RetryLater,
}

/// <summary>
/// The MQTT transport of the simulator: every sensor publishes from a connection of its own (client id = the sensor
/// id, the device key as password), opened at its first reading and kept, at QoS 1 to <c>devices/{id}/telemetry</c>. A
/// reading is acknowledged by a PUBACK with reason code 0; MQTT 5 reason codes say why one was refused.
/// </summary>
public sealed class MqttSender(SimulatorSettings settings) : IAsyncDisposable
{
    private readonly MqttClientFactory _factory = new();
    private readonly Dictionary<string, Task<IMqttClient>> _clients = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Publishes <paramref name="payload"/> as <paramref name="sensorId"/>'s; the reason string when it was refused.</summary>
    public async Task<(PublishOutcome Outcome, string? Reason, TimeSpan Elapsed)> PublishAsync(string sensorId, ReadOnlyMemory<byte> payload,
        string contentType, CancellationToken cancellationToken)
    {
        var client = await ClientAsync(sensorId, cancellationToken);
        var message = new MqttApplicationMessageBuilder()
            .WithTopic($"devices/{sensorId}/telemetry")
            .WithPayload(payload.ToArray())
            .WithContentType(contentType)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
        var started = Stopwatch.GetTimestamp();
        MqttClientPublishResult result;
        try
        {
            result = await client.PublishAsync(message, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Forget(sensorId, client);
            throw;
        }
        var elapsed = Stopwatch.GetElapsedTime(started);
        return result.ReasonCode switch
        {
            MqttClientPublishReasonCode.Success => (PublishOutcome.Acknowledged, null, elapsed),
            MqttClientPublishReasonCode.QuotaExceeded or MqttClientPublishReasonCode.ImplementationSpecificError
                or MqttClientPublishReasonCode.UnspecifiedError => (PublishOutcome.RetryLater, Describe(result), elapsed),
            _ => (PublishOutcome.Rejected, Describe(result), elapsed),
        };
    }

    private static string Describe(MqttClientPublishResult result) =>
        $"{(int)result.ReasonCode} {result.ReasonCode}{(string.IsNullOrEmpty(result.ReasonString) ? "" : ": " + result.ReasonString)}";

    private Task<IMqttClient> ClientAsync(string sensorId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_clients.TryGetValue(sensorId, out var client) || client.IsFaulted || client.IsCanceled
                || (client.IsCompletedSuccessfully && !client.Result.IsConnected))
            {
                _clients[sensorId] = client = ConnectAsync(sensorId, cancellationToken);
            }
            return client;
        }
    }

    private async Task<IMqttClient> ConnectAsync(string sensorId, CancellationToken cancellationToken)
    {
        var client = _factory.CreateMqttClient();
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(settings.MqttUrl.Host, settings.MqttUrl.IsDefaultPort || settings.MqttUrl.Port < 0 ? 1883 : settings.MqttUrl.Port)
            .WithClientId(sensorId)
            .WithCredentials(sensorId, settings.Key)
            .WithProtocolVersion(settings.MqttVersion == "3.1.1" ? MqttProtocolVersion.V311 : MqttProtocolVersion.V500)
            .WithCleanSession()
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(60))
            .WithTimeout(settings.RequestTimeout)
            .Build();
        var connected = await client.ConnectAsync(options, cancellationToken);
        if (connected.ResultCode != MqttClientConnectResultCode.Success)
        {
            client.Dispose();
            throw new InvalidOperationException($"MQTT connection of {sensorId} refused: {connected.ResultCode} {connected.ReasonString}");
        }
        return client;
    }

    private void Forget(string sensorId, IMqttClient client)
    {
        lock (_gate)
        {
            if (_clients.TryGetValue(sensorId, out var current) && current.IsCompletedSuccessfully && current.Result == client)
            {
                _clients.Remove(sensorId);
            }
        }
        client.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        List<Task<IMqttClient>> clients;
        lock (_gate)
        {
            clients = [.. _clients.Values];
            _clients.Clear();
        }
        foreach (var connecting in clients)
        {
            if (connecting.IsCompletedSuccessfully)
            {
                var client = connecting.Result;
                if (client.IsConnected)
                {
                    try
                    {
                        await client.DisconnectAsync();
                    }
                    catch (Exception)
                    {
                        // Closing: the connection is dropped either way.
                    }
                }
                client.Dispose();
            }
        }
    }
}
