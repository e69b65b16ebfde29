using System.Globalization;
using System.Text.Json;
using Api.Auth;
using Api.Ingest;
using Grains.Abstractions;
using Microsoft.Extensions.Options;
using Runtime;

namespace Api.Locations;

/// <summary>What POST /api/v1/locations/{location}/conditions took.</summary>
public sealed record OutsideConditionsResponse(string Location, int Accepted);

/// <summary>
/// The outside conditions of a location (temperature, humidity, … outside a building), posted by operators or a weather
/// integration with an operator key. They are appended to every partition of the log and joined into each closed minute
/// aggregate of the sensors at that location: the values current at the minute's end (see the README, "Outside conditions").
/// </summary>
public static class OutsideConditionsEndpoints
{
    /// <summary>Observations one request may carry.</summary>
    public const int MaxObservations = 100;

    /// <summary>Largest body taken.</summary>
    public const int MaxBodyBytes = 256 * 1024;

    private const double EpochMillisecondsFrom = 100_000_000_000d;

    public static IEndpointRouteBuilder MapOutsideConditions(this IEndpointRouteBuilder routes)
    {
        var locations = routes.MapGroup("/api/v1/locations").ForOperators().WithTags("Locations");

        locations.MapPost("/{location}/conditions", async Task<IResult> (string location, HttpRequest request, InboxWriter inbox,
                IOptions<TelemetryOptions> telemetry, TimeProvider time, CancellationToken ct) =>
            {
                var limits = telemetry.Value.Limits;
                if (LocationProblem(location, limits) is { } problem)
                {
                    return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["location"] = [problem] }, title: "Invalid location");
                }
                if (!request.HasJsonContentType())
                {
                    return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type",
                        detail: "Send the outside conditions as application/json.");
                }
                if (request.ContentLength > MaxBodyBytes)
                {
                    return TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Body too large",
                        detail: $"The body may have at most {MaxBodyBytes} bytes.");
                }
                JsonDocument document;
                try
                {
                    using var buffer = new MemoryStream();
                    await request.Body.CopyToAsync(buffer, ct);
                    if (buffer.Length > MaxBodyBytes)
                    {
                        return TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Body too large",
                            detail: $"The body may have at most {MaxBodyBytes} bytes.");
                    }
                    document = JsonDocument.Parse(buffer.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
                }
                catch (JsonException e)
                {
                    return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Malformed request body",
                        detail: $"Invalid JSON: {e.Message}");
                }
                using (document)
                {
                    var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
                    var observations = Parse(document.RootElement, limits, time.GetUtcNow().ToUnixTimeMilliseconds(), errors);
                    if (errors.Count > 0)
                    {
                        return TypedResults.ValidationProblem(errors, title: "The outside conditions are not valid");
                    }
                    await inbox.AppendOutsideConditionsAsync(location, observations, ct);
                    return TypedResults.Accepted((string?)null, new OutsideConditionsResponse(location, observations.Length));
                }
            })
            .WithSummary("Post the conditions outside a location: one observation {timestamp, metrics: {name: number}} or an array of them "
                + "(timestamp ISO-8601 or epoch s/ms, absent: now). Joined into every closed minute aggregate of the sensors at the location "
                + "(the values current at the minute's end, at most Grains:OutsideMaxAgeMs old); 202 once in the log")
            .DocumentBody(typeof(OutsideObservationBody), "application/json", oneOrMany: true)
            .Produces<OutsideConditionsResponse>(StatusCodes.Status202Accepted)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);

        return routes;
    }

    /// <summary>The problem with a location name (as a device's metadata location is checked at ingest), or null.</summary>
    public static string? LocationProblem(string location, TelemetryLimits limits) =>
        location.Length == 0 ? "location must not be empty"
        : location.Length > limits.MaxStringValueLength ? $"location is longer than {limits.MaxStringValueLength} characters"
        : TextRules.Problem(location) is { } problem ? $"location contains {problem}"
        : null;

    private static OutsideObservation[] Parse(JsonElement root, TelemetryLimits limits, long nowMs, Dictionary<string, string[]> errors)
    {
        var items = root.ValueKind == JsonValueKind.Array ? root.EnumerateArray().ToArray() : [root];
        if (items.Length == 0)
        {
            errors["$"] = ["the array has no observation"];
            return [];
        }
        if (items.Length > MaxObservations)
        {
            errors["$"] = [$"at most {MaxObservations} observations per request; the array has {items.Length}"];
            return [];
        }
        var observations = new List<OutsideObservation>(items.Length);
        for (var i = 0; i < items.Length; i++)
        {
            var prefix = root.ValueKind == JsonValueKind.Array ? $"[{i}]." : "";
            if (Observation(items[i], prefix, limits, nowMs, errors) is { } observation)
            {
                observations.Add(observation);
            }
        }
        return [.. observations];
    }

    private static OutsideObservation? Observation(JsonElement item, string prefix, TelemetryLimits limits, long nowMs, Dictionary<string, string[]> errors)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            errors[prefix.Length == 0 ? "$" : prefix.TrimEnd('.')] = ["an observation must be a JSON object {timestamp, metrics}"];
            return null;
        }
        var ok = true;
        var timestampMs = nowMs;
        JsonElement? metricsElement = null;
        foreach (var property in item.EnumerateObject())
        {
            switch (property.Name)
            {
                case "timestamp":
                    if (Timestamp(property.Value, limits, nowMs) is { } problem)
                    {
                        errors[prefix + "timestamp"] = [problem];
                        ok = false;
                    }
                    else
                    {
                        timestampMs = TimestampMs(property.Value);
                    }
                    break;
                case "metrics":
                    metricsElement = property.Value;
                    break;
                default:
                    errors[prefix + property.Name] = [$"unknown property '{property.Name}': an observation has timestamp and metrics"];
                    ok = false;
                    break;
            }
        }
        if (metricsElement is not { ValueKind: JsonValueKind.Object } metrics)
        {
            errors[prefix + "metrics"] = ["metrics must be an object of numbers, e.g. {\"temperature\": 12.5, \"humidity\": 80}"];
            return null;
        }
        var values = new List<MetricValue>();
        foreach (var metric in metrics.EnumerateObject())
        {
            var key = $"{prefix}metrics.{metric.Name}";
            if (metric.Name.Length == 0 || metric.Name.Length > limits.MaxNameLength)
            {
                errors[prefix + "metrics"] = [$"a metric name must have 1 to {limits.MaxNameLength} characters"];
                ok = false;
            }
            else if (TextRules.Problem(metric.Name) is { } problem)
            {
                errors[prefix + "metrics"] = [$"the metric name contains {problem}"];
                ok = false;
            }
            else if (values.Exists(v => v.Name == metric.Name))
            {
                errors[key] = ["the metric is given twice"];
                ok = false;
            }
            else if (metric.Value.ValueKind != JsonValueKind.Number || !metric.Value.TryGetDouble(out var value) || !double.IsFinite(value)
                || Math.Abs(value) > TelemetryParser.MaxMetricMagnitude)
            {
                errors[key] = [$"must be a number of magnitude at most {TelemetryParser.MaxMetricMagnitude:0e0}"];
                ok = false;
            }
            else
            {
                values.Add(new MetricValue(metric.Name, value));
            }
        }
        if (values.Count == 0 && ok)
        {
            errors[prefix + "metrics"] = ["metrics must have at least one value"];
            ok = false;
        }
        if (values.Count > limits.MaxMetrics)
        {
            errors[prefix + "metrics"] = [$"at most {limits.MaxMetrics} metrics per observation"];
            ok = false;
        }
        values.Sort((x, y) => string.CompareOrdinal(x.Name, y.Name));
        return ok ? new OutsideObservation { TimestampMs = timestampMs, Metrics = [.. values] } : null;
    }

    private static string? Timestamp(JsonElement value, TelemetryLimits limits, long nowMs)
    {
        const string bad = "timestamp must be epoch seconds, epoch milliseconds or an ISO-8601 string";
        long ms;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var number) && double.IsFinite(number) && number >= 0)
        {
            ms = (long)Math.Round(number < EpochMillisecondsFrom ? number * 1000d : number, MidpointRounding.AwayFromZero);
        }
        else if (value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 4 } text && char.IsAsciiDigit(text[0])
            && text[4] == '-' && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            ms = time.ToUnixTimeMilliseconds();
        }
        else
        {
            return bad;
        }
        return ms - nowMs > limits.MaxFutureSkewMs
            ? $"timestamp is {(ms - nowMs + 999) / 1000} s in the future (at most {limits.MaxFutureSkewMs / 1000} s allowed)"
            : null;
    }

    private static long TimestampMs(JsonElement value) => value.ValueKind == JsonValueKind.Number
        ? (long)Math.Round(value.GetDouble() < EpochMillisecondsFrom ? value.GetDouble() * 1000d : value.GetDouble(), MidpointRounding.AwayFromZero)
        : DateTimeOffset.Parse(value.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal).ToUnixTimeMilliseconds();
}

/// <summary>One observation of POST /api/v1/locations/{location}/conditions (the body is one of these, or an array of them).</summary>
public sealed record OutsideObservationBody(IReadOnlyDictionary<string, double> Metrics, DateTimeOffset? Timestamp = null);
