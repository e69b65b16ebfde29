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

public static class TelemetryEndpoints
{
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

    private static async Task<IResult> PostAsync(HttpContext http, InboxWriter inbox, IOptions<TelemetryOptions> options,
        ReadingLimiter readingLimiter, TelemetryIntake intake, CancellationToken cancellationToken)
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
        if (idempotencyKey.Length > 0 && !TelemetryIntake.IsValidIdempotencyKey(idempotencyKey))
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
        var claim = key is { } claimed ? await intake.ClaimAsync(claimed, cancellationToken) : IdempotencyClaim.New;
        if (claim == IdempotencyClaim.Conflict)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, title: "Idempotency-Key reused",
                detail: $"This API key sent another body with Idempotency-Key '{idempotencyKey}' within the last {intake.IdempotencyWindow}; "
                    + "nothing of this request was stored. Use a new key for a new request, and the same key only to resend the same body.");
        }
        if (claim == IdempotencyClaim.TooMany)
        {
            http.Response.Headers.RetryAfter = TelemetryIntake.IdempotencyKeysRetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many Idempotency-Keys",
                detail: $"This API key has used {options.Value.MaxIdempotencyKeysPerCaller} Idempotency-Keys within the last {intake.IdempotencyWindow}, "
                    + $"its limit (Telemetry:MaxIdempotencyKeysPerCaller); nothing of this request was stored. Retry after "
                    + $"{TelemetryIntake.IdempotencyKeysRetryAfterSeconds} s, or send it without an Idempotency-Key.");
        }
        await inbox.AppendTelemetryAsync(accepted, key?.InLog, cancellationToken);
        return TypedResults.Accepted((string?)null, new TelemetryResponse(accepted.Count, rejected));
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
}
