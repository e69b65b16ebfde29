using System.Buffers;
using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Api.Ingest;
using Microsoft.Extensions.Options;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using MQTTnet.Server;
using Runtime;
using Runtime.Idempotency;

namespace Api.Mqtt;

/// <summary>
/// Telemetry published on <c>devices/{id}/telemetry</c>: the body goes through the same parser, validation and limits as
/// an HTTP post (<see cref="TelemetryIntake"/>); a QoS 1 publish is acknowledged once its readings are in the durable log.
/// What an answer can say depends on the protocol version: MQTT 5 gets a reason code and a reason string naming what was
/// wrong; MQTT 3.1.1 has only "acknowledged" or silence, so a refused publish (bad payload, foreign topic) is acknowledged,
/// counted and logged (a resend could not succeed), a publish past the rate limits is acknowledged when the limit lets it
/// through, and one the log cannot take is not acknowledged until the log takes it.
/// <para>
/// An MQTT 5 publish may carry an <c>Idempotency-Key</c> user property, as an HTTP post the header: scoped to the API
/// key, remembered with a fingerprint of the topic and payload for <c>Silo:IdempotencyWindow</c>. The partitions count
/// its readings once however often they reach the log: when the device resends the publish, and when the server appends
/// again after an append whose outcome it could not know (a broker confirm that never came).
/// </para>
/// </summary>
public sealed partial class MqttTelemetry(MqttClients clients, TelemetryIntake intake, InboxWriter inbox, MqttCounters counters,
    IOptionsMonitor<RateLimitOptions> rateLimits, IOptions<MqttOptions> options, TimeProvider time, ILogger<MqttTelemetry> logger) : IDisposable
{
    private static readonly TimeSpan UnavailableRetry = TimeSpan.FromSeconds(1);

    /// <summary>The MQTT 5 user property that carries a publish's Idempotency-Key (its name matched without regard to case).</summary>
    public const string IdempotencyKeyProperty = "Idempotency-Key";

    /// <summary>Publishes per device: each counts as a request to the device endpoints (RateLimits:DeviceRequests), per client.</summary>
    private readonly PartitionedRateLimiter<string> _publishes = PartitionedRateLimiter.Create<string, string>(clientId =>
        RateLimitPartition.GetTokenBucketLimiter(clientId, _ => rateLimits.CurrentValue.DeviceRequests.Bucket()));

    public async Task InterceptAsync(InterceptingPublishEventArgs e)
    {
        if (e.CancellationToken.CanBeCanceled)
        {
            await InterceptPublishAsync(e);
            return;
        }
        // A will message: the server publishes it without awaiting, after the connection ended; nothing may escape.
        try
        {
            await InterceptPublishAsync(e);
        }
        catch (Exception ex)
        {
            LogWillFailed(logger, ex, e.ClientId);
        }
    }

    private async Task InterceptPublishAsync(InterceptingPublishEventArgs e)
    {
        // Telemetry is consumed here: never routed to subscribers, never retained.
        e.ProcessPublish = false;
        if (string.IsNullOrEmpty(e.ClientId))
        {
            return;
        }
        if (clients.Get(e.ClientId) is not { ConnectedAt: not null } client)
        {
            e.CloseConnection = true;
            return;
        }
        var message = e.ApplicationMessage;
        var deviceId = DeviceOf(message.Topic);
        if (deviceId is null)
        {
            Refuse(e, client, MqttPubAckReasonCode.TopicNameInvalid, "topic",
                $"Readings are published to '{MqttBroker.TelemetryTopic(client.DeviceId)}'; '{message.Topic}' takes nothing.");
            return;
        }
        if (deviceId != client.DeviceId && !client.MayActForAny)
        {
            Refuse(e, client, MqttPubAckReasonCode.NotAuthorized, "foreign topic",
                $"Client '{client.DeviceId}' publishes only to '{MqttBroker.TelemetryTopic(client.DeviceId)}'.");
            return;
        }

        // A will message is published by the server after the connection ended (no token to cancel): stored once if it
        // can be, like a QoS 0 publish, never waited for.
        var qos1 = message.QualityOfServiceLevel != MqttQualityOfServiceLevel.AtMostOnce && e.CancellationToken.CanBeCanceled;
        while (true)
        {
            var refusal = TakePublish(client);
            if (refusal is null)
            {
                break;
            }
            if (client.IsV5 || !qos1)
            {
                Refuse(e, client, MqttPubAckReasonCode.QuotaExceeded, "rate limit", refusal.Value.Reason);
                return;
            }
            // MQTT 3.1.1 cannot be told: its PUBACK waits until the limit lets the publish through.
            await Task.Delay(refusal.Value.RetryAfter, time, e.CancellationToken);
        }

        var parsed = Parse(message.Payload, message.ContentType, deviceId);
        if (parsed.Malformed is { } malformed)
        {
            Refuse(e, client, MqttPubAckReasonCode.PayloadFormatInvalid, "malformed",
                malformed.Error);
            return;
        }
        var keyText = message.UserProperties?.FirstOrDefault(p => string.Equals(p.Name, IdempotencyKeyProperty, StringComparison.OrdinalIgnoreCase))
            ?.ReadValueAsString();
        if (keyText is not null && !TelemetryIntake.IsValidIdempotencyKey(keyText))
        {
            Refuse(e, client, MqttPubAckReasonCode.ImplementationSpecificError, "invalid idempotency key",
                "The Idempotency-Key user property must be 1 to 128 visible ASCII characters; nothing of this publish was stored.");
            return;
        }
        var key = keyText is null ? (IdempotencyKey?)null : KeyOf(client.KeyName, keyText, message.Topic, message.Payload);
        var claimed = false;

        var deadline = time.GetUtcNow() + options.Value.LogWait;
        TelemetryAdmission? admission = null;
        while (true)
        {
            try
            {
                // Admitted once (the readings limit is taken once); only the append is retried while the log is down.
                // Every reading is the topic's device (the parser holds the body to it), which the client may publish for.
                admission ??= await intake.AdmitAsync(parsed, client.KeyName, mayActFor: null);
                if (admission.RetryAfter is { } retryAfter)
                {
                    if (client.IsV5 || !qos1)
                    {
                        Refuse(e, client, MqttPubAckReasonCode.QuotaExceeded, "rate limit",
                            $"This API key sent more readings than its limit of {rateLimits.CurrentValue.Readings} allows; nothing of this publish was stored. Retry after {Seconds(retryAfter)} s.");
                        return;
                    }
                    admission = null;
                    await Task.Delay(retryAfter, time, e.CancellationToken);
                    continue;
                }
                if (admission.Accepted.Count == 0)
                {
                    Refuse(e, client, MqttPubAckReasonCode.PayloadFormatInvalid, "no valid reading", admission.Rejected.Count == 0
                        ? "The payload holds no reading."
                        : $"All {admission.Rejected.Count} readings were rejected: {Describe(admission.Rejected)}");
                    return;
                }
                if (key is { } k && !claimed)
                {
                    var claim = await intake.ClaimAsync(k, e.CancellationToken);
                    if (claim == IdempotencyClaim.Conflict)
                    {
                        Refuse(e, client, MqttPubAckReasonCode.ImplementationSpecificError, "idempotency key reused",
                            $"This API key sent another publish with Idempotency-Key '{keyText}' within the last {intake.IdempotencyWindow}; "
                            + "nothing of this publish was stored. Use a new key for a new publish, and the same key only to resend the same one.");
                        return;
                    }
                    if (claim == IdempotencyClaim.TooMany)
                    {
                        Refuse(e, client, MqttPubAckReasonCode.QuotaExceeded, "too many idempotency keys",
                            $"This API key has used {intake.Options.MaxIdempotencyKeysPerCaller} Idempotency-Keys within the last {intake.IdempotencyWindow}, "
                            + $"its limit (Telemetry:MaxIdempotencyKeysPerCaller); nothing of this publish was stored. Retry after "
                            + $"{TelemetryIntake.IdempotencyKeysRetryAfterSeconds} s, or publish it without an Idempotency-Key.");
                        return;
                    }
                    claimed = true;
                }
                // Appended again with the same key after an append that failed: the partitions count the readings once.
                await inbox.AppendTelemetryAsync(admission.Accepted, key?.InLog, e.CancellationToken);
                counters.Accepted(admission.Accepted.Count);
                if (admission.Rejected.Count > 0)
                {
                    counters.Refused("rejected items", admission.Rejected.Count);
                    e.Response.ReasonString = $"{admission.Accepted.Count} readings stored; {admission.Rejected.Count} rejected: {Describe(admission.Rejected)}";
                    LogPartlyRefused(logger, client.DeviceId, admission.Rejected.Count, e.Response.ReasonString);
                }
                return;
            }
            catch (Exception ex) when (Unavailable(ex) && !e.CancellationToken.IsCancellationRequested)
            {
                if (!qos1)
                {
                    counters.Refused("unavailable (QoS 0 dropped)", 1);
                    LogUnavailable(logger, client.DeviceId, ex.Message);
                    return;
                }
                if (client.IsV5 && time.GetUtcNow() >= deadline)
                {
                    e.Response.ReasonCode = MqttPubAckReasonCode.ImplementationSpecificError;
                    e.Response.ReasonString = "The message log cannot take writes now; nothing of this publish was stored. Publish it again later.";
                    counters.Refused("unavailable", 1);
                    LogUnavailable(logger, client.DeviceId, ex.Message);
                    return;
                }
                await Task.Delay(UnavailableRetry, time, e.CancellationToken);
            }
        }
    }

    /// <summary>
    /// The caller's key with a fingerprint of the topic and the payload: the same payload on another device's topic (a
    /// gateway's key publishes for many) is another publish.
    /// </summary>
    private static IdempotencyKey KeyOf(string caller, string key, string topic, ReadOnlySequence<byte> payload)
    {
        var topicBytes = System.Text.Encoding.UTF8.GetByteCount(topic);
        var buffer = ArrayPool<byte>.Shared.Rent(topicBytes + 1 + (int)payload.Length);
        try
        {
            System.Text.Encoding.UTF8.GetBytes(topic, buffer);
            buffer[topicBytes] = 0;
            payload.CopyTo(buffer.AsSpan(topicBytes + 1));
            return IdempotencyKey.For(caller, key, buffer.AsSpan(0, topicBytes + 1 + (int)payload.Length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The device of a telemetry topic, <c>devices/{id}/telemetry</c> with a valid sensor id; null for any other topic.</summary>
    public static string? DeviceOf(string topic)
    {
        const string prefix = "devices/";
        const string suffix = "/telemetry";
        if (!topic.StartsWith(prefix, StringComparison.Ordinal) || !topic.EndsWith(suffix, StringComparison.Ordinal)
            || topic.Length <= prefix.Length + suffix.Length)
        {
            return null;
        }
        var id = topic[prefix.Length..^suffix.Length];
        return SensorIds.IsValid(id) ? id : null;
    }

    /// <summary>
    /// The payload as a body of the telemetry endpoint: an MQTT 5 content type of NDJSON says NDJSON; otherwise a JSON
    /// object or array, and a payload of several JSON lines (one object each) is NDJSON.
    /// </summary>
    private TelemetryParseResult Parse(ReadOnlySequence<byte> payload, string? contentType, string deviceId)
    {
        byte[]? rented = null;
        ReadOnlySpan<byte> body;
        if (payload.IsSingleSegment)
        {
            body = payload.FirstSpan;
        }
        else
        {
            rented = ArrayPool<byte>.Shared.Rent((int)payload.Length);
            payload.CopyTo(rented);
            body = rented.AsSpan(0, (int)payload.Length);
        }
        try
        {
            var type = contentType?.Split(';', 2)[0].Trim().ToLowerInvariant();
            if (type is "application/x-ndjson" or "application/ndjson" or "application/jsonl" or "application/x-jsonlines")
            {
                return intake.Parse(body, TelemetryBodyKind.NdJson, deviceId);
            }
            var json = intake.Parse(body, TelemetryBodyKind.Json, deviceId);
            if (json.Malformed is not null && body.TrimEnd("\r\n \t"u8).IndexOfAny("\r\n"u8) >= 0)
            {
                var lines = intake.Parse(body, TelemetryBodyKind.NdJson, deviceId);
                return lines.Malformed is null ? lines : json;
            }
            return json;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private (string Reason, TimeSpan RetryAfter)? TakePublish(MqttClient client)
    {
        if (!rateLimits.CurrentValue.Enabled)
        {
            return null;
        }
        using var lease = _publishes.AttemptAcquire(client.DeviceId);
        if (lease.IsAcquired)
        {
            return null;
        }
        var retryAfter = RateLimits.RetryAfter(lease);
        return ($"Device '{client.DeviceId}' published more often than its limit of {rateLimits.CurrentValue.DeviceRequests} allows; "
            + $"nothing of this publish was stored. Retry after {Seconds(retryAfter)} s.", retryAfter);
    }

    /// <summary>
    /// Answers a refused publish: MQTT 5 gets the reason code and why; MQTT 3.1.1 gets its PUBACK (the payload cannot be
    /// stored however often it is sent) and the refusal is counted and logged.
    /// </summary>
    private void Refuse(InterceptingPublishEventArgs e, MqttClient client, MqttPubAckReasonCode code, string kind, string reason)
    {
        counters.Refused(kind, 1);
        LogRefused(logger, client.DeviceId, e.ApplicationMessage.Topic, kind, reason);
        if (client.IsV5)
        {
            e.Response.ReasonCode = code;
            e.Response.ReasonString = reason;
        }
    }

    private static string Describe(List<Api.RejectedItem> rejected) =>
        string.Join("; ", rejected.Take(5).Select(r => $"item {r.Index}: {r.Error}")) + (rejected.Count > 5 ? $"; and {rejected.Count - 5} more" : "");

    private static int Seconds(TimeSpan wait) => Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));

    private static bool Unavailable(Exception e) =>
        e is LogUnavailableException or TimeoutException or Orleans.Runtime.OrleansException;

    public void Dispose() => _publishes.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT publish of {ClientId} on {Topic} refused ({Kind}): {Reason}")]
    private static partial void LogRefused(ILogger logger, string clientId, string topic, string kind, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT publish of {ClientId} partly refused ({Count} items): {Reason}")]
    private static partial void LogPartlyRefused(ILogger logger, string clientId, int count, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The will message of MQTT client {ClientId} could not be handled")]
    private static partial void LogWillFailed(ILogger logger, Exception exception, string clientId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT publish of {ClientId}: the log or cluster cannot take it now ({Reason})")]
    private static partial void LogUnavailable(ILogger logger, string clientId, string reason);
}

/// <summary>What this node's MQTT endpoint did since it started: publishes and readings stored, refusals by kind.</summary>
public sealed class MqttCounters
{
    private long _publishes;
    private long _readings;
    private readonly ConcurrentDictionary<string, long> _refused = new(StringComparer.Ordinal);

    public void Accepted(int readings)
    {
        Interlocked.Increment(ref _publishes);
        Interlocked.Add(ref _readings, readings);
    }

    public void Refused(string kind, int count) => _refused.AddOrUpdate(kind, count, (_, n) => n + count);

    public long PublishesStored => Interlocked.Read(ref _publishes);

    public long ReadingsStored => Interlocked.Read(ref _readings);

    public IReadOnlyDictionary<string, long> RefusedByKind => _refused.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => p.Value);
}
