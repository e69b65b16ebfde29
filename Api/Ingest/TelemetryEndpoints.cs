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
        IOptions<SiloOptions> idempotencyWindow, IOptions<TelemetryOptions> options, ReadingLimiter readingLimiter, TelemetryIntake intake,
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
            parsed = intake.Parse(body.Value.Span, kind);
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
        // A key limited to some devices may only post readings of those devices; operators and fleet keys, any.
        var devices = http.User.IsInRole(Roles.Operator) ? [] : http.User.FindAll(Roles.DeviceClaim).Select(c => c.Value).ToHashSet(StringComparer.Ordinal);
        var admission = await intake.AdmitAsync(parsed, http.User.Identity?.Name ?? "", devices.Count == 0 ? null : devices.Contains);
        if (admission.RetryAfter is { } retryAfter)
        {
            await RateLimits.WriteTooManyAsync(http, retryAfter,
                $"This API key posted more readings than its limit of {readingLimiter.Limit} allows.");
            return TypedResults.Empty;
        }
        var (accepted, rejected) = (admission.Accepted, admission.Rejected);
        if (accepted.Count == 0)
        {
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

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "The Idempotency-Key registry cannot be reached ({Reason}); the request is processed unchecked")]
        public static partial void RegistryUnavailable(ILogger logger, string reason);
    }
}
