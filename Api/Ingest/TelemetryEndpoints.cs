using System.Buffers;
using Api.Auth;
using Grains.Abstractions;
using Microsoft.Extensions.Options;
using Runtime;
using Runtime.Idempotency;

namespace Api.Ingest;

/// <summary>Settings of section "Telemetry".</summary>
public sealed class TelemetryOptions
{
    /// <summary>Largest accepted request body; larger bodies get 413.</summary>
    public int MaxBodyBytes { get; set; } = 4 * 1024 * 1024;

    public TelemetryLimits Limits { get; set; } = new();

    /// <summary>Idempotency-Keys a caller may have remembered at once (each for Silo:IdempotencyWindow); a new key past it gets 429.</summary>
    public int MaxIdempotencyKeysPerCaller { get; set; } = 100_000;
}

public static partial class TelemetryEndpoints
{
    /// <summary>When a caller past its Idempotency-Key limit is told to come back (its oldest keys expire one by one).</summary>
    private const int IdempotencyKeysRetryAfterSeconds = 60;

    private static readonly string[] JsonTypes = ["application/json"];
    private static readonly string[] NdJsonTypes = ["application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"];

    public static IEndpointRouteBuilder MapTelemetry(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/telemetry", PostAsync)
            .ForDevices()
            .WithTags("Telemetry")
            .WithSummary("Post readings: one JSON object, a JSON array, or NDJSON (one object per line)")
            .Produces<TelemetryResponse>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);
        return routes;
    }

    private static async Task<IResult> PostAsync(HttpContext http, InboxWriter inbox, IIdempotencyRegistry idempotency,
        IOptions<SiloOptions> idempotencyWindow, IOptions<TelemetryOptions> options, ReadingLimiter readingLimiter, SensorNameAdmission names, TimeProvider time,
        ILoggerFactory loggers,
        CancellationToken cancellationToken)
    {
        var request = http.Request;
        var mediaType = request.ContentType?.Split(';', 2)[0].Trim().ToLowerInvariant();
        TelemetryBodyKind kind;
        if (mediaType is not null && JsonTypes.Contains(mediaType))
        {
            kind = TelemetryBodyKind.Json;
        }
        else if (mediaType is not null && NdJsonTypes.Contains(mediaType))
        {
            kind = TelemetryBodyKind.NdJson;
        }
        else
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type",
                detail: $"Content-Type '{request.ContentType}' is not accepted: send application/json (an object or an array) or application/x-ndjson.");
        }

        var idempotencyKey = request.Headers["Idempotency-Key"].ToString();
        if (idempotencyKey.Length > 128 || idempotencyKey.Any(c => c is < '!' or > '~'))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid Idempotency-Key",
                detail: "The Idempotency-Key header must be 1 to 128 visible ASCII characters.");
        }

        var limit = options.Value.MaxBodyBytes;
        if (request.ContentLength > limit)
        {
            return TooLarge(limit);
        }
        var body = await ReadBodyAsync(request, limit, cancellationToken);
        if (body is null)
        {
            return TooLarge(limit);
        }
        TelemetryParseResult parsed;
        IdempotencyKey? key = null;
        try
        {
            parsed = Parsers.Get(options.Value.Limits).Parse(body.Value.Span, kind, time.GetUtcNow().ToUnixTimeMilliseconds());
            if (idempotencyKey.Length > 0)
            {
                key = IdempotencyKey.For(http.User.Identity?.Name ?? "", idempotencyKey, body.Value.Span);
            }
        }
        finally
        {
            body.Value.Return();
        }

        if (parsed.Malformed is { } malformed)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Malformed request body",
                detail: malformed.Error, extensions: new Dictionary<string, object?> { ["line"] = malformed.Line, ["position"] = malformed.Position });
        }
        using (var lease = readingLimiter.TryTake(http.User.Identity?.Name ?? "", parsed.Accepted.Count + parsed.Rejected.Count))
        {
            if (lease is { IsAcquired: false })
            {
                await RateLimits.WriteTooManyAsync(http, lease,
                    $"This API key posted more readings than its limit of {readingLimiter.Limit} allows.");
                return TypedResults.Empty;
            }
        }

        var rejected = parsed.Rejected.Select(e => new RejectedItem(e.Index, e.Error)).ToList();
        var (accepted, indexes) = (parsed.Accepted, parsed.AcceptedIndexes);
        if (!http.User.IsInRole(Roles.Operator) && http.User.HasClaim(c => c.Type == Roles.DeviceClaim))
        {
            (accepted, indexes) = FilterForDevice(http, parsed, rejected);
        }
        if (accepted.Count > 0)
        {
            (accepted, indexes) = await names.AdmitAsync(accepted, indexes, rejected);
        }
        if (accepted.Count == 0)
        {
            rejected.Sort((a, b) => a.Index.CompareTo(b.Index));
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "No valid reading",
                detail: rejected.Count == 0 ? "The body holds no reading." : $"All {rejected.Count} readings were rejected; see 'rejected'.",
                extensions: new Dictionary<string, object?> { ["rejected"] = rejected });
        }
        var claim = key is { } claimed
            ? await ClaimAsync(idempotency, claimed, options.Value.MaxIdempotencyKeysPerCaller, loggers, cancellationToken)
            : IdempotencyClaim.New;
        string Window() => $"{idempotencyWindow.Value.IdempotencyWindow.TotalMinutes:0.#} minutes";
        if (claim == IdempotencyClaim.Conflict)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, title: "Idempotency-Key reused",
                detail: $"This API key sent another body with Idempotency-Key '{idempotencyKey}' within the last {Window()}; "
                    + "nothing of this request was stored. Use a new key for a new request, and the same key only to resend the same body.");
        }
        if (claim == IdempotencyClaim.TooMany)
        {
            http.Response.Headers.RetryAfter = IdempotencyKeysRetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many Idempotency-Keys",
                detail: $"This API key has used {options.Value.MaxIdempotencyKeysPerCaller} Idempotency-Keys within the last {Window()}, "
                    + $"its limit (Telemetry:MaxIdempotencyKeysPerCaller); nothing of this request was stored. Retry after "
                    + $"{IdempotencyKeysRetryAfterSeconds} s, or send it without an Idempotency-Key.");
        }
        await inbox.AppendTelemetryAsync(accepted, key?.InLog, cancellationToken);
        rejected.Sort((a, b) => a.Index.CompareTo(b.Index));
        return TypedResults.Accepted((string?)null, new TelemetryResponse(accepted.Count, rejected));
    }

    /// <summary>
    /// Claims the key in the registry. While the registry's store cannot answer, the request goes on unchecked: its
    /// readings are de-duplicated on caller, key and body, so it is processed, never dropped as a resend of another.
    /// </summary>
    private static async Task<IdempotencyClaim> ClaimAsync(IIdempotencyRegistry idempotency, IdempotencyKey key, int maxKeysPerCaller,
        ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        try
        {
            return await idempotency.ClaimAsync(key, maxKeysPerCaller, cancellationToken);
        }
        catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
        {
            Log.RegistryUnavailable(loggers.CreateLogger("Api.Ingest.Telemetry"), e.Message);
            return IdempotencyClaim.New;
        }
    }

    /// <summary>A device key limited to some devices may only post readings of those devices.</summary>
    private static (List<Reading> Readings, List<int> Indexes) FilterForDevice(HttpContext http, TelemetryParseResult parsed, List<RejectedItem> rejected)
    {
        var kept = new List<Reading>(parsed.Accepted.Count);
        var keptIndexes = new List<int>(parsed.Accepted.Count);
        for (var i = 0; i < parsed.Accepted.Count; i++)
        {
            var reading = parsed.Accepted[i];
            if (http.User.MayActFor(reading.SensorId))
            {
                kept.Add(reading);
                keptIndexes.Add(parsed.AcceptedIndexes[i]);
            }
            else
            {
                rejected.Add(new RejectedItem(parsed.AcceptedIndexes[i], $"this API key may not post readings for sensor '{reading.SensorId}'"));
            }
        }
        return (kept, keptIndexes);
    }

    private static IResult TooLarge(int limit) =>
        TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Request body too large",
            detail: $"The body is larger than {limit} bytes; split the readings over several requests.");

    /// <summary>Reads the body into a pooled buffer; null when it exceeds <paramref name="limit"/>.</summary>
    private static async Task<PooledBody?> ReadBodyAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit + 1L, request.ContentLength ?? 16 * 1024) + 1);
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length > limit)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return null;
                }
                var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit + 1L, buffer.Length * 2L));
                buffer.AsSpan(0, length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = bigger;
            }
            var n = await request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (n == 0)
            {
                break;
            }
            length += n;
            if (length > limit)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return null;
            }
        }
        return new PooledBody(buffer, length);
    }

    private readonly record struct PooledBody(byte[] Buffer, int Length)
    {
        public ReadOnlySpan<byte> Span => Buffer.AsSpan(0, Length);

        public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
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

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "The Idempotency-Key registry cannot be reached ({Reason}); the request is processed unchecked")]
        public static partial void RegistryUnavailable(ILogger logger, string reason);
    }
}
