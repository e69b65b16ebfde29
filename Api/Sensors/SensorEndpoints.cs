using Api.Auth;
using Api.Ingest;
using Api.Rules;
using Grains.Abstractions;
using Microsoft.Extensions.Options;
using Runtime;

namespace Api.Sensors;

public static class SensorEndpoints
{
    public static IEndpointRouteBuilder MapSensors(this IEndpointRouteBuilder routes)
    {
        var sensors = routes.MapGroup("/api/v1/sensors").ForOperators().WithSensorIdInPath().WithTags("Sensors");

        sensors.MapGet("/", async Task<IResult> (string? search, int? offset, int? limit, IReadStore store, CancellationToken ct) =>
            {
                var errors = new Dictionary<string, string[]>();
                Query.CheckPage(offset, limit, 1000, errors);
                if (errors.Count > 0)
                {
                    return TypedResults.ValidationProblem(errors, title: "Invalid query");
                }
                var page = await store.ListSensorsAsync(search, offset ?? 0, limit ?? 50, ct);
                return TypedResults.Ok(new PageResponse<SensorListItem>(page.Items.Select(s => s.ToListItem()).ToArray(), page.Total, offset ?? 0, limit ?? 50));
            })
            .WithSummary("Sensors by id, as of each sensor's last state write (within about Silo:SensorWriteInterval); search matches id, location and model")
            .Produces<PageResponse<SensorListItem>>()
            .ProducesValidationProblem();

        sensors.MapGet("/{id}", async Task<IResult> (string id, SensorQueries queries, CancellationToken ct) =>
                await queries.DetailAsync(id, ct) is { } detail ? TypedResults.Ok(detail) : NotFound(id))
            .WithSummary("Latest values, last readings, the current partial minute and late count, live from the sensor's grain; its MQTT connection when it has one")
            .Produces<SensorDetail>()
            .ProducesProblem(StatusCodes.Status404NotFound);

        sensors.MapGet("/{id}/metrics", async Task<IResult> (string id, string? from, string? to, string? metric, IReadStore store,
                SensorQueries queries, TimeProvider time, CancellationToken ct) =>
            {
                var errors = new Dictionary<string, string[]>();
                var now = time.GetUtcNow().ToUnixTimeMilliseconds();
                var toMs = Query.ParseTime(to, "to", errors) ?? now;
                var fromMs = Query.ParseTime(from, "from", errors) ?? toMs - 3_600_000;
                if (errors.Count == 0 && fromMs >= toMs)
                {
                    errors["from"] = ["from must be before to"];
                }
                if (errors.Count == 0 && toMs - fromMs > 31L * 24 * 3_600_000)
                {
                    errors["to"] = ["the range may span at most 31 days"];
                }
                if (errors.Count > 0)
                {
                    return TypedResults.ValidationProblem(errors, title: "Invalid query");
                }
                var minutes = await store.GetAggregatesAsync(id, fromMs, toMs, metric, ct);
                // Minutes in the range mean the sensor exists (sensors are never deleted): only an empty answer asks whether
                // it is known at all, one round trip less for the query that has points.
                if (minutes.Count == 0 && !await queries.ExistsAsync(id, ct))
                {
                    return NotFound(id);
                }
                var points = new List<MetricPointDto>();
                var outside = new List<OutsidePointDto>();
                foreach (var minute in minutes)
                {
                    foreach (var m in minute.Metrics)
                    {
                        if (metric is null || m.Metric == metric)
                        {
                            points.Add(new MetricPointDto(Map.Time(minute.MinuteMs), m.Metric, m.Count, m.Min, m.Max, m.Sum, m.Avg, m.First, m.Last));
                        }
                    }
                    foreach (var o in minute.Outside ?? [])
                    {
                        outside.Add(new OutsidePointDto(Map.Time(minute.MinuteMs), o.Name, o.Value));
                    }
                }
                return TypedResults.Ok(new MetricsResponse(id, Map.Time(fromMs), Map.Time(toMs), metric, points, outside.Count == 0 ? null : outside));
            })
            .WithSummary("Closed minute aggregates (count, min, max, sum, avg, first, last) in [from, to), with the outside conditions of the "
                + "sensor's location joined into each minute (outside: absent when none); default: the last hour")
            .Produces<MetricsResponse>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound);

        sensors.MapGet("/{id}/commands", async Task<IResult> (string id, int? limit, IReadStore store, SensorQueries queries, CancellationToken ct) =>
            {
                if (limit is < 1 or > 500)
                {
                    return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = ["limit must be between 1 and 500"] },
                        title: "Invalid query");
                }
                var commands = await store.ListCommandsAsync(id, limit ?? 50, ct);
                if (commands.Count == 0 && !await queries.ExistsAsync(id, ct))
                {
                    return NotFound(id);
                }
                return TypedResults.Ok(commands.Select(c => c.ToDto()).ToArray());
            })
            .WithSummary("Commands sent to the device with this id by rule control actions, newest first, with when the device fetched them; reading them changes nothing")
            .Produces<SentCommandDto[]>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound);

        sensors.MapPut("/{id}/metadata", async Task<IResult> (string id, HttpRequest request, InboxWriter inbox,
                IOptions<TelemetryOptions> telemetry, CancellationToken ct) =>
            {
                var (body, error) = await RuleEndpoints.ReadAsync(request, SensorsJsonContext.Default.SensorMetadataRequest, "the metadata", ct);
                if (error is not null)
                {
                    return error;
                }
                if (!SensorMetadataValidator.TryCreate(body!, telemetry.Value.Limits, out var metadata, out var errors))
                {
                    return TypedResults.ValidationProblem(errors, title: "The metadata is not valid");
                }
                // Durable in the sensor's partition of the log before the answer; the sensor applies it in order with its readings.
                await inbox.AppendSensorMetadataAsync(id, metadata!, ct);
                return TypedResults.Accepted($"/api/v1/sensors/{Uri.EscapeDataString(id)}", metadata);
            })
            .WithSummary("Set what the operator sets of the sensor's metadata (location, model, owner, tags), as a whole: it wins over what the device "
                + "sends, field by field and tag by tag; a null or absent field (or tag) is left to the device. Any valid id: a sensor that has sent "
                + "nothing yet is registered. Applied in log order with the sensor's readings (202): rules by location or model follow from there on")
            .DocumentBody(typeof(SensorMetadataRequest), "application/json")
            .Produces<OperatorMetadata>(StatusCodes.Status202Accepted)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);

        return routes;
    }

    private static IResult NotFound(string id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Sensor not found", detail: $"No reading of sensor '{id}' has been received.");
}

/// <summary>Reads a sensor live from its grain, wherever Orleans runs it (activated from its stored state when idle).</summary>
public sealed class SensorQueries(IGrainFactory grains, IReadStore store, TimeProvider time)
{
    /// <summary>How long a live read waits (a call to a silo that just died waits until Orleans declares it dead).</summary>
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(10);

    public async Task<SensorDetail?> DetailAsync(string sensorId, CancellationToken ct)
    {
        var viewing = grains.GetGrain<ISensorGrain>(sensorId).GetViewAsync().WaitAsync(ReadTimeout, ct);
        var connection = grains.GetGrain<IDevicePresenceGrain>(sensorId).GetAsync(time.GetUtcNow().ToUnixTimeMilliseconds()).WaitAsync(ReadTimeout, ct);
        var view = await viewing;
        var mqtt = await connection;
        return view is null ? null : ToDetail(view) with
        {
            Mqtt = mqtt is null ? null : new Api.Mqtt.MqttConnectionDto(Map.Time(mqtt.SinceMs), mqtt.Node, mqtt.Protocol),
        };
    }

    public async Task<bool> ExistsAsync(string sensorId, CancellationToken ct) =>
        await store.GetSensorAsync(sensorId, ct) is not null || await DetailAsync(sensorId, ct) is not null;

    private static SensorDetail ToDetail(SensorView s) => new(
        s.SensorId,
        Map.Time(s.LastSeenMs),
        s.Metadata,
        s.Latest.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => p.Value.Value),
        s.Attributes.Count == 0 ? null : s.Attributes.OrderBy(p => p.Key, StringComparer.Ordinal).ToDictionary(p => p.Key, p => p.Value.Value),
        s.LastReadings.Select(r => new ReadingDto(Map.Time(r.TimestampMs), r.Metrics, r.Attributes, r.Late)).ToArray(),
        s.CurrentMinute?.ToDto(),
        s.LateCount,
        Map.Time(s.LastLate?.TimestampMs),
        s.NamesDropped == 0 ? null : s.NamesDropped)
    {
        DeviceMetadata = s.DeviceMetadata,
        OperatorMetadata = s.OperatorMetadata,
    };
}
