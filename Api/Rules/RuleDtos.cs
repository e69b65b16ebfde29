using System.Text.Json.Serialization;

namespace Api.Rules;

/// <summary>
/// Body of POST /rules and PUT /rules/{id}. Every field is nullable so that a missing field is
/// reported by <see cref="RuleValidator"/> (with its JSON path), not by the deserializer.
/// Enum-valued fields are plain strings for the same reason. An unknown property (a misspelt field) is a
/// JSON error naming it, never silently dropped.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record RuleRequest
{
    /// <summary>Optional on POST (derived from the name when absent); must match the URL on PUT.</summary>
    public string? Id { get; init; }
    public string? Name { get; init; }

    /// <summary>Defaults to true.</summary>
    public bool? Enabled { get; init; }

    /// <summary>critical | major | minor | warning | info.</summary>
    public string? Severity { get; init; }
    public RuleTargetDto? Target { get; init; }
    public RuleConditionDto? Condition { get; init; }

    /// <summary>0..86400, defaults to 0.</summary>
    public int? CooldownSeconds { get; init; }
    public ControlActionDto? ControlAction { get; init; }

    /// <summary>Accepted so that a rule read from the API can be sent back as it is; the server assigns versions.</summary>
    public long? Version { get; init; }
}

/// <summary>A stored rule as returned by the API: the request shape, fully specified, plus <see cref="Version"/>.</summary>
public sealed record RuleResponse
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required bool Enabled { get; init; }
    public required string Severity { get; init; }
    public required RuleTargetDto Target { get; init; }
    public required RuleConditionDto Condition { get; init; }
    public required int CooldownSeconds { get; init; }
    public ControlActionDto? ControlAction { get; init; }
    public required long Version { get; init; }
}

/// <summary>Which sensors a rule applies to. Only the field belonging to <see cref="Kind"/> may be set.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record RuleTargetDto
{
    /// <summary>all | sensors | location | model.</summary>
    public string? Kind { get; init; }

    /// <summary>kind = sensors only.</summary>
    public IReadOnlyList<string?>? SensorIds { get; init; }

    /// <summary>kind = location only.</summary>
    public string? Location { get; init; }

    /// <summary>kind = model only.</summary>
    public string? Model { get; init; }
}

/// <summary>When a rule fires. Threshold fields and offline fields exclude each other.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record RuleConditionDto
{
    /// <summary>threshold | offline.</summary>
    public string? Kind { get; init; }

    /// <summary>Threshold: the metric compared.</summary>
    public string? Metric { get; init; }

    /// <summary>Threshold: raw | avg | min | max | sum | count | last (default raw).</summary>
    public string? On { get; init; }

    /// <summary>Threshold: == != &lt; &lt;= &gt; &gt;=.</summary>
    public string? Operator { get; init; }

    /// <summary>Threshold: the number compared against.</summary>
    public double? Value { get; init; }

    /// <summary>Threshold: minutes the condition must hold before an alert opens (0..1440, default 0).</summary>
    public int? ForMinutes { get; init; }

    /// <summary>
    /// Threshold on a minute statistic (on is not raw): compare the statistic minus this outside metric of the sensor's
    /// location, as joined into the minute (e.g. temperature with outsideMetric temperature: inside − outside).
    /// </summary>
    public string? OutsideMetric { get; init; }

    /// <summary>Offline: minutes without data (1..10080).</summary>
    public int? Minutes { get; init; }
}

/// <summary>A command sent to a device when the rule opens an alert.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record ControlActionDto
{
    public string? Command { get; init; }
    public IReadOnlyDictionary<string, string?>? Parameters { get; init; }

    /// <summary>The device to command; null means the sensor the alert is about.</summary>
    public string? DeviceId { get; init; }
}

/// <summary>
/// Body of POST /rules/preview: a rule as it would be created (not stored) and the past range to replay it over,
/// ISO-8601 times as in the other queries (default: the hour before now).
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record RulePreviewRequest
{
    public RuleRequest? Rule { get; init; }
    public string? From { get; init; }
    public string? To { get; init; }
}

/// <summary>What a rule would have done over a past range: the alerts it would have opened, per sensor and in total.</summary>
public sealed record RulePreviewResponse
{
    public required DateTimeOffset From { get; init; }
    public required DateTimeOffset To { get; init; }

    /// <summary>Alerts the rule would have opened in the range.</summary>
    public required int Total { get; init; }

    /// <summary>How many known sensors the rule targets, and how many of them (the first by id) were replayed.</summary>
    public required int SensorsTargeted { get; init; }
    public required int SensorsScanned { get; init; }

    /// <summary>Per sensor with at least one alert, by id.</summary>
    public required IReadOnlyList<PreviewSensorCount> Sensors { get; init; }

    /// <summary>The would-be alerts in opening order (at most <see cref="RulePreview.MaxAlertsListed"/>).</summary>
    public required IReadOnlyList<PreviewAlert> Alerts { get; init; }

    /// <summary>Set when the result is approximate (a raw-reading condition replayed on minute aggregates): how.</summary>
    public string? Approximation { get; init; }
}

public sealed record PreviewSensorCount(string SensorId, int Alerts);

/// <summary>A would-be alert; <see cref="ResolvedAt"/> is null when it would still be open at the end of the range.</summary>
public sealed record PreviewAlert(string SensorId, DateTimeOffset StartedAt, DateTimeOffset OpenedAt, DateTimeOffset? ResolvedAt, double? Value, string Message);
