using Grains.Abstractions;
using Microsoft.Extensions.Options;
using Runtime;
using Runtime.Idempotency;

namespace Api.Ingest;

/// <summary>What <see cref="TelemetryIntake.AdmitAsync"/> decided about a parsed body.</summary>
/// <param name="Accepted">The readings to append, in body order.</param>
/// <param name="Rejected">The items refused, by index, each with what was wrong.</param>
/// <param name="RetryAfter">Set when the caller's readings limit refused the whole body (nothing else was decided).</param>
public sealed record TelemetryAdmission(List<Reading> Accepted, List<RejectedItem> Rejected, TimeSpan? RetryAfter);

/// <summary>
/// The steps every telemetry body goes through, whichever transport brought it (HTTP or MQTT): one parser and its
/// validation, the caller's readings limit, the devices a key may act for, the sensors' name limits and the caller's
/// Idempotency-Key. The transport then appends <see cref="TelemetryAdmission.Accepted"/> to the log and answers.
/// </summary>
public sealed partial class TelemetryIntake(IOptions<TelemetryOptions> options, ReadingLimiter readingLimiter, SensorNameAdmission names,
    IIdempotencyRegistry idempotency, IOptions<SiloOptions> silo, TimeProvider time, ILogger<TelemetryIntake> logger)
{
    /// <summary>When a caller past its Idempotency-Key limit is told to come back (its oldest keys expire one by one).</summary>
    public const int IdempotencyKeysRetryAfterSeconds = 60;

    public TelemetryOptions Options => options.Value;

    /// <summary>How long a caller's Idempotency-Key is remembered, as the answers say it.</summary>
    public string IdempotencyWindow => $"{silo.Value.IdempotencyWindow.TotalMinutes:0.#} minutes";

    /// <summary>An Idempotency-Key as a caller may send it (HTTP header, MQTT 5 user property): 1 to 128 visible ASCII characters.</summary>
    public static bool IsValidIdempotencyKey(string key) => key.Length is >= 1 and <= 128 && !key.Any(c => c is < '!' or > '~');

    /// <summary>
    /// Claims the caller's key in the registry. While the registry's store cannot answer, the body goes on unchecked: its
    /// readings are de-duplicated on caller, key and body, so it is processed, never dropped as a resend of another.
    /// </summary>
    public async Task<IdempotencyClaim> ClaimAsync(IdempotencyKey key, CancellationToken cancellationToken)
    {
        try
        {
            return await idempotency.ClaimAsync(key, options.Value.MaxIdempotencyKeysPerCaller, cancellationToken);
        }
        catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
        {
            LogRegistryUnavailable(logger, e.Message);
            return IdempotencyClaim.New;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The Idempotency-Key registry cannot be reached ({Reason}); the request is processed unchecked")]
    private static partial void LogRegistryUnavailable(ILogger logger, string reason);

    /// <summary>
    /// Parses a body with the parser of this thread. With <paramref name="bodySensorId"/> (an MQTT topic's device), items
    /// without an id are that sensor's and items naming another are rejected.
    /// </summary>
    public TelemetryParseResult Parse(ReadOnlySpan<byte> body, TelemetryBodyKind kind, string? bodySensorId = null) =>
        Parsers.Get(options.Value.Limits).Parse(body, kind, time.GetUtcNow().ToUnixTimeMilliseconds(), bodySensorId);

    /// <summary>
    /// Takes the body's items from the caller's readings limit (every item counts, valid or not), then keeps the readings
    /// of devices the caller may act for (<paramref name="mayActFor"/>; null: any) and whose names their sensors admit.
    /// </summary>
    public async Task<TelemetryAdmission> AdmitAsync(TelemetryParseResult parsed, string caller, Func<string, bool>? mayActFor)
    {
        using (var lease = readingLimiter.TryTake(caller, parsed.Accepted.Count + parsed.Rejected.Count))
        {
            if (lease is { IsAcquired: false })
            {
                return new TelemetryAdmission([], [], RateLimits.RetryAfter(lease));
            }
        }

        var rejected = parsed.Rejected.Select(e => new RejectedItem(e.Index, e.Error)).ToList();
        var (accepted, indexes) = (parsed.Accepted, parsed.AcceptedIndexes);
        if (mayActFor is not null && !parsed.Accepted.TrueForAll(r => mayActFor(r.SensorId)))
        {
            (accepted, indexes) = ([], []);
            for (var i = 0; i < parsed.Accepted.Count; i++)
            {
                var reading = parsed.Accepted[i];
                if (mayActFor(reading.SensorId))
                {
                    accepted.Add(reading);
                    indexes.Add(parsed.AcceptedIndexes[i]);
                }
                else
                {
                    rejected.Add(new RejectedItem(parsed.AcceptedIndexes[i], $"this API key may not post readings for sensor '{reading.SensorId}'"));
                }
            }
        }
        if (accepted.Count > 0)
        {
            (accepted, _) = await names.AdmitAsync(accepted, indexes, rejected);
        }
        rejected.Sort((a, b) => a.Index.CompareTo(b.Index));
        return new TelemetryAdmission(accepted, rejected, null);
    }

    /// <summary>
    /// One parser per thread (a parser keeps a cache of names and buffers and is not thread-safe), for the limits it is
    /// asked with: another host in the process (tests) or reloaded settings get a parser of their own.
    /// </summary>
    private static class Parsers
    {
        [ThreadStatic]
        private static TelemetryParser? _parser;

        public static TelemetryParser Get(TelemetryLimits limits) =>
            _parser is { } parser && ReferenceEquals(parser.Limits, limits) ? parser : _parser = new TelemetryParser(limits);
    }
}
