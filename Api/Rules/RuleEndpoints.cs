using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Api.Auth;
using Microsoft.Extensions.Options;
using Runtime;

namespace Api.Rules;

/// <summary>Settings of section "Rules".</summary>
public sealed class RuleOptions
{
    /// <summary>Rules the cluster holds at most (every sensor call carries the rule catalog); one more gets 409.</summary>
    public int MaxRules { get; set; } = 1_000;

    /// <summary>Sensors a preview replays at most (the first targeted ones by id).</summary>
    public int PreviewMaxSensors { get; set; } = 200;

    /// <summary>Minute aggregates a preview may read: replayed sensors times minutes of the range; more is a 400.</summary>
    public long PreviewMaxSensorMinutes { get; set; } = 200 * 1_440;

    /// <summary>Previews running at once on an Api node; one more is a 429.</summary>
    public int PreviewConcurrency { get; set; } = 2;
}

public static class RuleEndpoints
{
    private const int DefaultPageSize = 100;
    private const int MaxPageSize = 1_000;

    public static IEndpointRouteBuilder MapRules(this IEndpointRouteBuilder routes)
    {
        var rules = routes.MapGroup("/api/v1/rules").ForOperators().WithTags("Rules");

        rules.MapGet("/", async Task<IResult> (int? offset, int? limit, IRuleStore store, CancellationToken ct) =>
            {
                var errors = new Dictionary<string, string[]>();
                Query.CheckPage(offset, limit, MaxPageSize, errors);
                if (errors.Count > 0)
                {
                    return TypedResults.ValidationProblem(errors, title: "Invalid query");
                }
                // At most Rules:MaxRules of them: the page is cut from the whole list.
                var all = await store.ListAsync(ct);
                var page = all.Skip(offset ?? 0).Take(limit ?? DefaultPageSize).Select(RuleValidator.ToResponse).ToArray();
                return TypedResults.Ok(new PageResponse<RuleResponse>(page, all.Count, offset ?? 0, limit ?? DefaultPageSize));
            })
            .WithSummary("Rules by id, a page at a time (offset, limit: default 100, at most 1000)")
            .Produces<PageResponse<RuleResponse>>()
            .ProducesValidationProblem();

        rules.MapGet("/{id}", async Task<IResult> (string id, IRuleStore store, CancellationToken ct) =>
                await store.GetAsync(id, ct) is { } rule ? TypedResults.Ok(RuleValidator.ToResponse(rule)) : NotFound(id))
            .WithSummary("One rule")
            .Produces<RuleResponse>()
            .ProducesProblem(StatusCodes.Status404NotFound);

        rules.MapPost("/", async Task<IResult> (HttpRequest request, IRuleStore store, InboxWriter inbox, IOptions<RuleOptions> options,
                CancellationToken ct) =>
            {
                var (body, error) = await ReadAsync(request, RulesJsonContext.Default.RuleRequest, "the rule", ct);
                if (error is not null)
                {
                    return error;
                }
                var version = await store.NextVersionAsync(ct);
                if (!RuleValidator.TryCreate(body!, null, version, out var rule, out var errors))
                {
                    return TypedResults.ValidationProblem(errors, title: "The rule is not valid");
                }
                var max = options.Value.MaxRules;
                switch (await store.CreateAsync(rule!, max, ct))
                {
                    case RuleCreation.Exists:
                        return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Rule exists",
                            detail: $"A rule with id '{rule!.Id}' already exists; use PUT /api/v1/rules/{rule.Id} to change it.");
                    case RuleCreation.Full:
                        return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Too many rules",
                            detail: $"The cluster has {max} rules, its limit (Rules:MaxRules); nothing was stored. Delete a rule "
                                + "before creating another, or change an existing one with PUT.");
                }
                await inbox.AppendRuleChangeAsync(rule!.Id, rule, ct);
                return TypedResults.Created($"/api/v1/rules/{Uri.EscapeDataString(rule.Id)}", RuleValidator.ToResponse(rule));
            })
            .WithSummary("Create a rule")
            .DocumentBody(typeof(RuleRequest), "application/json")
            .Produces<RuleResponse>(StatusCodes.Status201Created)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict);

        rules.MapPost("/preview", async Task<IResult> (HttpRequest request, RulePreview preview, IOptions<RuleOptions> options, CancellationToken ct) =>
            {
                var (body, error) = await ReadAsync(request, RulesJsonContext.Default.RulePreviewRequest, "the preview request", ct);
                if (error is not null)
                {
                    return error;
                }
                var (started, result, errors) = await preview.TryRunAsync(body!, ct);
                if (!started)
                {
                    request.HttpContext.Response.Headers.RetryAfter = "1";
                    return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many previews",
                        detail: $"{options.Value.PreviewConcurrency} rule previews are running on this node, its limit (Rules:PreviewConcurrency); retry after 1 s.");
                }
                return errors is not null
                    ? TypedResults.ValidationProblem(errors, title: "The preview request is not valid")
                    : TypedResults.Ok(result);
            })
            .WithSummary("Replay an unsaved rule over the stored minute aggregates of [from, to) (ISO-8601, at most 7 days, default the last hour) "
                + "and report the alerts it would have opened, per sensor; stores nothing. Offline conditions and raw == / != are refused; "
                + "raw < <= > >= are evaluated on each minute's min or max (see 'approximation')")
            .DocumentBody(typeof(RulePreviewRequest), "application/json")
            .Produces<RulePreviewResponse>()
            .ProducesValidationProblem();

        rules.MapPut("/{id}", async Task<IResult> (string id, HttpRequest request, IRuleStore store, InboxWriter inbox, CancellationToken ct) =>
            {
                var (body, error) = await ReadAsync(request, RulesJsonContext.Default.RuleRequest, "the rule", ct);
                if (error is not null)
                {
                    return error;
                }
                if (await store.GetAsync(id, ct) is null)
                {
                    return NotFound(id);
                }
                var version = await store.NextVersionAsync(ct);
                if (!RuleValidator.TryCreate(body!, id, version, out var rule, out var errors))
                {
                    return TypedResults.ValidationProblem(errors, title: "The rule is not valid");
                }
                if (!await store.TryUpdateAsync(rule!, ct))
                {
                    return NotFound(id);
                }
                await inbox.AppendRuleChangeAsync(rule!.Id, rule, ct);
                return TypedResults.Ok(RuleValidator.ToResponse(rule));
            })
            .WithSummary("Replace a rule (enable or disable it with 'enabled')")
            .DocumentBody(typeof(RuleRequest), "application/json")
            .Produces<RuleResponse>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound);

        rules.MapDelete("/{id}", async Task<IResult> (string id, IRuleStore store, InboxWriter inbox, CancellationToken ct) =>
            {
                if (!await store.TryDeleteAsync(id, ct))
                {
                    return NotFound(id);
                }
                await inbox.AppendRuleChangeAsync(id, null, ct);
                return TypedResults.NoContent();
            })
            .WithSummary("Delete a rule; its open alerts are resolved")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);

        return routes;
    }

    private static IResult NotFound(string id) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Rule not found", detail: $"There is no rule with id '{id}'.");

    /// <summary>Reads a JSON body, reporting malformed JSON with its line, position and path.</summary>
    internal static async Task<(T? Body, IResult? Error)> ReadAsync<T>(HttpRequest request, JsonTypeInfo<T> type, string what, CancellationToken ct)
        where T : class
    {
        if (!request.HasJsonContentType())
        {
            return (null, TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type",
                detail: $"Send {what} as application/json."));
        }
        try
        {
            var body = await JsonSerializer.DeserializeAsync(request.Body, type, ct);
            return body is null
                ? (null, TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Malformed request body", detail: "The body must be a JSON object."))
                : (body, null);
        }
        catch (JsonException e)
        {
            return (null, TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Malformed request body",
                detail: $"Invalid JSON at {e.Path ?? "$"}: {FirstSentence(e.Message)}",
                extensions: new Dictionary<string, object?> { ["line"] = (e.LineNumber ?? 0) + 1, ["position"] = e.BytePositionInLine ?? 0, ["path"] = e.Path }));
        }
    }

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
