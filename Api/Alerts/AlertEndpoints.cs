using System.Security.Claims;
using Api.Auth;
using Grains.Abstractions;
using Runtime;

namespace Api.Alerts;

public static class AlertEndpoints
{
    /// <summary>The states of an alert, as the API writes them and the <c>state</c> filter takes them.</summary>
    public static readonly IReadOnlyList<string> States = ["open", "resolved"];

    public static IEndpointRouteBuilder MapAlerts(this IEndpointRouteBuilder routes)
    {
        var alerts = routes.MapGroup("/api/v1/alerts").ForOperators().WithTags("Alerts");

        alerts.MapGet("/", async Task<IResult> (string? state, string? ruleId, string? sensorId, string? from, string? to, int? limit,
                IReadStore store, CancellationToken ct) =>
            {
                var errors = new Dictionary<string, string[]>();
                AlertState? parsedState = state switch
                {
                    null => null,
                    "open" => AlertState.Open,
                    "resolved" => AlertState.Resolved,
                    _ => Error(errors, "state", "state must be 'open' or 'resolved'"),
                };
                if (sensorId is not null && SensorIds.Problem(sensorId) is { } sensorProblem)
                {
                    errors["sensorId"] = [$"sensor id {sensorProblem}"];
                }
                var fromMs = Query.ParseTime(from, "from", errors);
                var toMs = Query.ParseTime(to, "to", errors);
                if (limit is < 1 or > 1000)
                {
                    errors["limit"] = ["limit must be between 1 and 1000"];
                }
                if (errors.Count > 0)
                {
                    return TypedResults.ValidationProblem(errors, title: "Invalid query");
                }
                var found = await store.QueryAlertsAsync(new AlertQuery(parsedState, ruleId, sensorId, fromMs, toMs, limit ?? 200), ct);
                return TypedResults.Ok(found.Select(a => a.ToDto()).ToArray());
            })
            .WithSummary("Alerts, newest first; filter by state (open, resolved), rule, sensor and opening time (ISO-8601 from/to)")
            .Produces<AlertDto[]>()
            .ProducesValidationProblem();

        alerts.MapPost("/{id}/ack", async Task<IResult> (string id, ClaimsPrincipal user, IReadStore store, IGrainFactory grains,
                TimeProvider time, CancellationToken ct) =>
            {
                var alert = await store.GetAlertAsync(id, ct);
                if (alert is null)
                {
                    return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Alert not found", detail: $"There is no alert with id '{id}'.");
                }
                if (alert.State == AlertState.Resolved)
                {
                    return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Alert resolved",
                        detail: $"Alert '{id}' was resolved; only open alerts can be acknowledged.");
                }
                if (alert.AcknowledgedAtMs is not null)
                {
                    return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Alert acknowledged",
                        detail: $"Alert '{id}' was already acknowledged by {alert.AcknowledgedBy}.");
                }
                var result = await grains.GetGrain<IRuleGrain>(alert.RuleId)
                    .AcknowledgeAsync(new AcknowledgeAlert(id, user.Identity?.Name ?? "operator", time.GetUtcNow().ToUnixTimeMilliseconds()))
                    .WaitAsync(ct);
                return result.Outcome switch
                {
                    AcknowledgeOutcome.Acknowledged => TypedResults.Accepted($"/api/v1/alerts?ruleId={Uri.EscapeDataString(alert.RuleId)}", result.Alert!.ToDto()),
                    AcknowledgeOutcome.AlreadyAcknowledged => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Alert acknowledged",
                        detail: $"Alert '{id}' was already acknowledged by {result.Alert!.AcknowledgedBy}."),
                    _ => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Alert resolved",
                        detail: $"Alert '{id}' was resolved; only open alerts can be acknowledged."),
                };
            })
            .WithSummary("Acknowledge an open alert (once: a second acknowledgement gets 409); the 'acknowledged' live event follows")
            .Produces<AlertDto>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);

        return routes;
    }

    private static AlertState? Error(Dictionary<string, string[]> errors, string field, string message)
    {
        errors[field] = [message];
        return null;
    }
}
