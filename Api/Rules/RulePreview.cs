using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Options;
using Runtime;

namespace Api.Rules;

/// <summary>
/// Replays an unsaved rule over the stored minute aggregates of the sensors it targets, with the grains' own logic
/// (<see cref="RuleReplay"/>), and reports the alerts it would have opened. Reads only; stores nothing.
/// </summary>
public sealed class RulePreview(IReadStore store, IOptions<SensorGrainOptions> options, IOptions<RuleOptions> limits, TimeProvider time)
    : IDisposable
{
    public const long MaxRangeMs = 7L * 24 * 3_600_000;
    public const long DefaultRangeMs = 3_600_000;
    public const int MaxAlertsListed = 1000;
    private const int PageSize = 1000;

    private readonly SemaphoreSlim _running = new(limits.Value.PreviewConcurrency, limits.Value.PreviewConcurrency);

    /// <summary>
    /// Runs the preview unless <see cref="RuleOptions.PreviewConcurrency"/> previews are running on this node already
    /// (then false: the caller answers 429). Each one reads up to Rules:PreviewMaxSensorMinutes minute aggregates.
    /// </summary>
    public async Task<(bool Started, RulePreviewResponse? Preview, Dictionary<string, string[]>? Errors)> TryRunAsync(RulePreviewRequest request,
        CancellationToken ct)
    {
        if (!await _running.WaitAsync(0, ct))
        {
            return (false, null, null);
        }

        try
        {
            var (preview, errors) = await RunAsync(request, ct);
            return (true, preview, errors);
        }
        finally
        {
            _running.Release();
        }
    }

    public void Dispose() => _running.Dispose();

    /// <summary>The preview, or the validation errors keyed by JSON path (rule fields under "rule.").</summary>
    public async Task<(RulePreviewResponse? Preview, Dictionary<string, string[]>? Errors)> RunAsync(RulePreviewRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        RuleDefinition? rule = null;
        if (request.Rule is null)
        {
            errors["rule"] = ["rule is required: the rule to preview, as it would be sent to POST /api/v1/rules"];
        }
        else if (!RuleValidator.TryCreate(request.Rule, null, 1, out rule, out var ruleErrors))
        {
            foreach (var (key, messages) in ruleErrors)
            {
                errors["rule." + key] = messages;
            }
        }

        string? approximation = null;
        if (rule is not null)
        {
            rule = RuleReplay.Plan(rule, out approximation, out var refusal);
            if (refusal is not null)
            {
                var field = request.Rule!.Condition?.Kind == "offline" ? "rule.condition.kind" : "rule.condition.operator";
                errors[field] = [refusal];
            }
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var toMs = Query.ParseTime(request.To, "to", errors) ?? (request.To is null ? now : 0);
        var fromMs = Query.ParseTime(request.From, "from", errors) ?? (request.From is null ? toMs - DefaultRangeMs : 0);
        if (!errors.ContainsKey("from") && !errors.ContainsKey("to"))
        {
            if (fromMs >= toMs)
            {
                errors["from"] = ["from must be before to"];
            }
            else if (toMs - fromMs > MaxRangeMs)
            {
                errors["to"] = ["the range may span at most 7 days"];
            }
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var (targeted, sensors) = await TargetsAsync(rule!, ct);
        var rangeMinutes = (toMs - fromMs + 59_999) / 60_000;
        var budget = limits.Value.PreviewMaxSensorMinutes;
        if (sensors.Count * rangeMinutes > budget)
        {
            return (null, new Dictionary<string, string[]>(StringComparer.Ordinal)
            {
                ["to"] = [$"the preview would replay {sensors.Count} sensors over {rangeMinutes} minutes ({sensors.Count * rangeMinutes} sensor-minutes); "
                    + $"at most {budget} (Rules:PreviewMaxSensorMinutes): shorten the range or narrow the target"],
            });
        }

        // Timers (forMinutes, cooldown) run to the end of the range, never past now.
        var endMs = Math.Min(toMs, now);
        var alerts = new List<Alert>();
        foreach (var sensor in sensors)
        {
            var minutes = await store.GetAggregatesAsync(sensor.SensorId, fromMs, toMs, null, ct);
            if (minutes.Count > 0)
            {
                alerts.AddRange(RuleReplay.ReplaySensor(rule!, sensor.SensorId, sensor.Metadata, minutes, endMs, options.Value));
            }
        }

        var ordered = alerts.OrderBy(a => a.OpenedAtMs).ThenBy(a => a.SensorId, StringComparer.Ordinal).ToList();
        return (new RulePreviewResponse
        {
            From = Map.Time(fromMs),
            To = Map.Time(toMs),
            Total = ordered.Count,
            SensorsTargeted = targeted,
            SensorsScanned = sensors.Count,
            Sensors = ordered.GroupBy(a => a.SensorId, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new PreviewSensorCount(g.Key, g.Count()))
                .ToArray(),
            Alerts = ordered.Take(MaxAlertsListed)
                .Select(a => new PreviewAlert(a.SensorId, Map.Time(a.StartedAtMs), Map.Time(a.OpenedAtMs), Map.Time(a.ResolvedAtMs), a.Value, a.Message))
                .ToArray(),
            Approximation = approximation,
        }, null);
    }

    /// <summary>How many known sensors the rule targets, and the first Rules:PreviewMaxSensors of them by id.</summary>
    private async Task<(int Targeted, List<SensorSummary> Sensors)> TargetsAsync(RuleDefinition rule, CancellationToken ct)
    {
        var maxSensors = limits.Value.PreviewMaxSensors;
        var sensors = new List<SensorSummary>();
        if (rule.Target.Kind == TargetKind.All)
        {
            // Every sensor: the first page has them and the count, with no scan of the fleet.
            var first = await store.ListSensorsAsync(null, 0, maxSensors, ct);
            return (first.Total, [.. first.Items]);
        }

        var targeted = 0;
        if (rule.Target.Kind == TargetKind.Sensors)
        {
            foreach (var id in (rule.Target.SensorIds ?? []).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                if (await store.GetSensorAsync(id, ct) is { } sensor)
                {
                    targeted++;
                    if (sensors.Count < maxSensors)
                    {
                        sensors.Add(sensor);
                    }
                }
            }

            return (targeted, sensors);
        }

        // The search narrows by substring of id, location or model; Targets then matches exactly.
        var search = rule.Target.Kind switch
        {
            TargetKind.Location => rule.Target.Location,
            TargetKind.Model => rule.Target.Model,
            _ => null,
        };
        for (var offset = 0; ; offset += PageSize)
        {
            var page = await store.ListSensorsAsync(search, offset, PageSize, ct);
            foreach (var sensor in page.Items)
            {
                if (rule.Targets(sensor.SensorId, sensor.Metadata))
                {
                    targeted++;
                    if (sensors.Count < maxSensors)
                    {
                        sensors.Add(sensor);
                    }
                }
            }

            if (page.Items.Count < PageSize || offset + PageSize >= page.Total)
            {
                return (targeted, sensors);
            }
        }
    }
}
