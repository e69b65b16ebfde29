using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Api.Auth;
using Api.Cluster;
using Api.Rules;
using Grains.Abstractions;
using Microsoft.Extensions.Options;
using Runtime;

namespace Api.IotEngine;

/// <summary>
/// The REST routes of the Kafka Streams iot-engine under <c>/iot-engine</c>, with its request and response shapes, on
/// this system: a sensor's rules are rules of ours (one per rule of the sensor, targeting that sensor, a threshold on
/// each raw reading, named by its ruleName), metrics are the closed minute aggregates (each metric's average), instances
/// are the silos. Differences, documented in the README: an operator key is required; numbers are doubles, not
/// integers; a request it would have taken with a bad field gets a 400 ProblemDetails naming the field.
/// </summary>
public static class IotEngineEndpoints
{
    public const string Path = "/iot-engine";

    public static IEndpointRouteBuilder MapIotEngine(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup(Path).ForOperators().WithTags("iot-engine compatibility");

        group.MapPost("/query/rules", async Task<IResult> (HttpRequest request, IRuleStore store, InboxWriter inbox, IOptions<RuleOptions> options,
                CancellationToken ct) =>
            {
                var (body, error) = await RuleEndpoints.ReadAsync(request, IotEngineJsonContext.Default.IotSensorRules, "the sensor's rules", ct);
                if (error is not null)
                {
                    return error;
                }
                if (SensorIds.Problem(body!.Id ?? "") is { } problem)
                {
                    return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["id"] = [$"id is the sensor's id: it {problem}"] },
                        title: "The rules are not valid");
                }
                var sensor = body.Id!;
                if ((await RulesOfAsync(store, sensor, ct)).Count > 0)
                {
                    return TypedResults.Json(new MessageResponse("ALREADY_EXISTS", $"The sensor {sensor} has rule defined"),
                        IotEngineJsonContext.Default.MessageResponse, statusCode: StatusCodes.Status409Conflict);
                }
                var (rules, errors) = await DefineAsync(store, sensor, body, ct);
                if (errors is not null)
                {
                    return TypedResults.ValidationProblem(errors, title: "The rules are not valid");
                }
                if (await RoomAsync(store, rules.Count, options.Value.MaxRules, ct) is { } full)
                {
                    return full;
                }
                foreach (var rule in rules)
                {
                    if (await store.CreateAsync(rule, options.Value.MaxRules, ct) != RuleCreation.Created)
                    {
                        return TooMany(options.Value.MaxRules);
                    }
                    await inbox.AppendRuleChangeAsync(rule.Id, rule, ct);
                }
                return Ok();
            })
            .WithSummary("Define the rules of a sensor (409 ALREADY_EXISTS when it has some): each becomes a rule of this Api, "
                + "{metricName} {condition} {metricValue} on every reading of the sensor")
            .DocumentBody(typeof(IotSensorRules), "application/json")
            .Produces<MessageResponse>()
            .Produces<MessageResponse>(StatusCodes.Status409Conflict)
            .ProducesValidationProblem();

        group.MapGet("/query/rules/{id}", async Task<IResult> (string id, IRuleStore store, CancellationToken ct) =>
            {
                var rules = await RulesOfAsync(store, id, ct);
                return rules.Count == 0
                    ? NotFound()
                    : TypedResults.Json(new IotSensorRules { Id = id, Rules = rules.Select(ToIotRule).ToArray() }, IotEngineJsonContext.Default.IotSensorRules);
            })
            .WithSummary("The rules of a sensor (404 NOT_FOUND when it has none)")
            .Produces<IotSensorRules>()
            .Produces<MessageResponse>(StatusCodes.Status404NotFound);

        group.MapPut("/query/rules/{id}", async Task<IResult> (string id, HttpRequest request, IRuleStore store, InboxWriter inbox,
                IOptions<RuleOptions> options, CancellationToken ct) =>
            {
                var (body, error) = await RuleEndpoints.ReadAsync(request, IotEngineJsonContext.Default.IotSensorRules, "the sensor's rules", ct);
                if (error is not null)
                {
                    return error;
                }
                var existing = await RulesOfAsync(store, id, ct);
                if (existing.Count == 0)
                {
                    return NotFound();
                }
                var (rules, errors) = await DefineAsync(store, id, body!, ct);
                if (errors is not null)
                {
                    return TypedResults.ValidationProblem(errors, title: "The rules are not valid");
                }
                if (await RoomAsync(store, rules.Count - existing.Count, options.Value.MaxRules, ct) is { } full)
                {
                    return full;
                }
                // The sensor's rule i keeps its id: a rule that changes is updated (its open alert resolved if it no longer
                // holds), rules beyond the new count are deleted.
                var existingIds = existing.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
                foreach (var rule in rules)
                {
                    var stored = existingIds.Contains(rule.Id)
                        ? await store.TryUpdateAsync(rule, ct)
                        : await store.CreateAsync(rule, options.Value.MaxRules, ct) == RuleCreation.Created;
                    if (!stored)
                    {
                        return TooMany(options.Value.MaxRules);
                    }
                    await inbox.AppendRuleChangeAsync(rule.Id, rule, ct);
                }
                foreach (var removed in existingIds.Except(rules.Select(r => r.Id), StringComparer.Ordinal))
                {
                    if (await store.TryDeleteAsync(removed, ct))
                    {
                        await inbox.AppendRuleChangeAsync(removed, null, ct);
                    }
                }
                return Ok();
            })
            .WithSummary("Replace the rules of a sensor (404 NOT_FOUND when it has none)")
            .DocumentBody(typeof(IotSensorRules), "application/json")
            .Produces<MessageResponse>()
            .Produces<MessageResponse>(StatusCodes.Status404NotFound)
            .ProducesValidationProblem();

        group.MapDelete("/query/rules/{id}", async Task<IResult> (string id, IRuleStore store, InboxWriter inbox, CancellationToken ct) =>
            {
                var existing = await RulesOfAsync(store, id, ct);
                if (existing.Count == 0)
                {
                    return NotFound();
                }
                foreach (var rule in existing)
                {
                    if (await store.TryDeleteAsync(rule.Id, ct))
                    {
                        await inbox.AppendRuleChangeAsync(rule.Id, null, ct);
                    }
                }
                return Ok();
            })
            .WithSummary("Delete the rules of a sensor; their open alerts are resolved (404 NOT_FOUND when it has none)")
            .Produces<MessageResponse>()
            .Produces<MessageResponse>(StatusCodes.Status404NotFound);

        group.MapGet("/query/metrics/{id}/{start}/{end}", async Task<IResult> (string id, string start, string end, IReadStore store, CancellationToken ct) =>
            {
                var errors = new Dictionary<string, string[]>();
                var from = Instant(start, "start", errors);
                var to = Instant(end, "end", errors);
                if (from > to)
                {
                    errors["end"] = ["end must not be before start"];
                }
                if (errors.Count > 0)
                {
                    return TypedResults.ValidationProblem(errors, title: "Invalid query");
                }
                // The iot-engine's window fetch includes a window starting at 'end'.
                var minutes = await store.GetAggregatesAsync(id, from!.Value, to!.Value + 1, null, ct);
                IReadOnlyList<IotDataMessage> result = minutes
                    .Select(m => new IotDataMessage(m.MinuteMs, id, m.Metrics.ToDictionary(s => s.Metric, s => s.Avg, StringComparer.Ordinal)))
                    .ToArray();
                return TypedResults.Json(result, IotEngineJsonContext.Default.IReadOnlyListIotDataMessage);
            })
            .WithSummary("The closed minutes of a sensor whose start is in [start, end] (ISO-8601 instants): each metric's average per minute")
            .Produces<IReadOnlyList<IotDataMessage>>()
            .ProducesValidationProblem();

        group.MapGet("/instances", async (ClusterView cluster, CancellationToken ct) =>
            {
                var described = await cluster.DescribeAsync(withEnd: false, ct);
                IReadOnlyList<HostStoreInfo> instances = described.Silos
                    .Where(s => s.Status == "active")
                    .Select(s => ToInstance(s.Id, s.Partitions))
                    .ToArray();
                return TypedResults.Json(instances, IotEngineJsonContext.Default.IReadOnlyListHostStoreInfo);
            })
            .WithSummary("The nodes of the cluster: each active silo's address and the log partitions whose readers it runs")
            .Produces<IReadOnlyList<HostStoreInfo>>();

        return routes;
    }

    /// <summary>The prefix of the ids of a sensor's rules: "iot-engine." and 16 hex digits of the SHA-256 of its id (any sensor id gives a valid rule id).</summary>
    public static string RuleIdPrefix(string sensorId) =>
        "iot-engine." + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sensorId)))[..16] + ".";

    /// <summary>The sensor's rules, in the order it gave them.</summary>
    private static async Task<List<RuleDefinition>> RulesOfAsync(IRuleStore store, string sensorId, CancellationToken ct)
    {
        var prefix = RuleIdPrefix(sensorId);
        return (await store.ListAsync(ct))
            .Where(r => r.Id.StartsWith(prefix, StringComparison.Ordinal) && r.Target.SensorIds is [var only] && only == sensorId)
            .OrderBy(r => int.TryParse(r.Id.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : int.MaxValue)
            .ToList();
    }

    /// <summary>Our rules for the sensor's iot-engine rules, validated by the rule validator; errors keyed by the iot-engine's fields.</summary>
    private static async Task<(List<RuleDefinition> Rules, Dictionary<string, string[]>? Errors)> DefineAsync(IRuleStore store, string sensorId,
        IotSensorRules body, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var rules = new List<RuleDefinition>();
        if (body.Id is not null && body.Id != sensorId)
        {
            errors["id"] = [$"id must be the sensor of the path, '{sensorId}', or absent"];
        }
        if (body.Rules is not { Count: > 0 } items)
        {
            errors["rules"] = ["rules must hold at least one rule"];
            return (rules, errors);
        }
        var version = await store.NextVersionAsync(ct);
        for (var i = 0; i < items.Count; i++)
        {
            if (items[i] is not { } item)
            {
                errors[$"rules[{i}]"] = ["a rule must be an object"];
                continue;
            }
            var request = new RuleRequest
            {
                Id = RuleIdPrefix(sensorId) + i.ToString(CultureInfo.InvariantCulture),
                Name = item.RuleName,
                Enabled = true,
                Severity = "major",
                Target = new RuleTargetDto { Kind = "sensors", SensorIds = [sensorId] },
                Condition = new RuleConditionDto { Kind = "threshold", Metric = item.MetricName, On = "raw", Operator = item.Condition, Value = item.MetricValue },
                CooldownSeconds = 0,
                ControlAction = item.ControlAction is null ? null : new ControlActionDto { Command = item.ControlAction },
            };
            if (RuleValidator.TryCreate(request, null, version, out var rule, out var ruleErrors))
            {
                rules.Add(rule);
            }
            foreach (var (key, messages) in ruleErrors)
            {
                var field = key switch
                {
                    "name" => "ruleName",
                    "condition.metric" => "metricName",
                    "condition.value" => "metricValue",
                    "condition.operator" => "condition",
                    "controlAction.command" => "controlAction",
                    _ => key,
                };
                errors[$"rules[{i}].{field}"] = messages.Select(m => m.Replace(key, field, StringComparison.Ordinal)).ToArray();
            }
        }
        return (rules, errors.Count > 0 ? errors : null);
    }

    private static IotSensorRule ToIotRule(RuleDefinition rule)
    {
        var response = RuleValidator.ToResponse(rule);
        return new IotSensorRule
        {
            RuleName = response.Name,
            MetricName = response.Condition.Metric,
            MetricValue = response.Condition.Value,
            Condition = response.Condition.Operator,
            ControlAction = response.ControlAction?.Command,
        };
    }

    /// <summary>A 409 before anything is stored when the rules would pass Rules:MaxRules.</summary>
    private static async Task<IResult?> RoomAsync(IRuleStore store, int adding, int maxRules, CancellationToken ct) =>
        adding > 0 && (await store.ListAsync(ct)).Count + adding > maxRules ? TooMany(maxRules) : null;

    private static IResult TooMany(int maxRules) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Too many rules",
            detail: $"The cluster would hold more than {maxRules} rules, its limit (Rules:MaxRules).");

    private static IResult Ok() => TypedResults.Json(new MessageResponse("OK", null), IotEngineJsonContext.Default.MessageResponse);

    private static IResult NotFound() =>
        TypedResults.Json(new MessageResponse("NOT_FOUND", null), IotEngineJsonContext.Default.MessageResponse, statusCode: StatusCodes.Status404NotFound);

    private static long? Instant(string text, string name, Dictionary<string, string[]> errors)
    {
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)
            && text.Contains('T', StringComparison.Ordinal))
        {
            return at.ToUnixTimeMilliseconds();
        }
        errors[name] = [$"{name} must be an ISO-8601 instant such as 2026-11-30T10:15:30Z, not '{text}'"];
        return null;
    }

    /// <summary>A silo's parsable address ("10.0.0.5:11111@130928302") as host and port, with its partitions as store names.</summary>
    private static HostStoreInfo ToInstance(string siloId, IReadOnlyList<int> partitions)
    {
        var endpoint = siloId.Split('@')[0];
        var colon = endpoint.LastIndexOf(':');
        var port = colon > 0 && int.TryParse(endpoint.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 0;
        return new HostStoreInfo(colon > 0 ? endpoint[..colon] : endpoint, port,
            partitions.Select(n => "partition-" + n.ToString(CultureInfo.InvariantCulture)).ToArray());
    }
}
