using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Runtime.Outputs;

/// <summary>The output streams other systems consume: closed minute aggregates, alert events and device commands.</summary>
public enum OutputStream
{
    Aggregates,
    Alerts,
    Commands,
}

/// <summary>One message of an output stream: the output's deterministic id, its type and its JSON body (UTF-8).</summary>
public sealed record OutputMessage(OutputStream Stream, string Id, string Type, byte[] Body);

/// <summary>A message as read back from an output stream, at its offset.</summary>
public sealed record OutputRecord(long Offset, string Id, string Type, byte[] Body);

/// <summary>
/// How grain outputs become output-stream messages. The JSON of each type is documented in the README ("Output
/// streams"); times are ISO-8601 UTC strings, metric statistics an object per metric name. Sensor summaries are read
/// models only and have no stream.
/// </summary>
public static class OutputMessages
{
    public static readonly IReadOnlyList<OutputStream> Streams = [OutputStream.Aggregates, OutputStream.Alerts, OutputStream.Commands];

    /// <summary>The stream's name after the cluster's prefix: "aggregates", "alerts" or "commands".</summary>
    public static string Name(OutputStream stream) => stream switch
    {
        OutputStream.Aggregates => "aggregates",
        OutputStream.Alerts => "alerts",
        OutputStream.Commands => "commands",
        _ => throw new ArgumentOutOfRangeException(nameof(stream), stream, null),
    };

    public static bool TryParse(string? name, out OutputStream stream)
    {
        foreach (var candidate in Streams)
        {
            if (string.Equals(name, Name(candidate), StringComparison.Ordinal))
            {
                stream = candidate;
                return true;
            }
        }
        stream = default;
        return false;
    }

    /// <summary>The stream of an output, or null for outputs that have no stream (sensor summaries).</summary>
    public static OutputStream? StreamOf(GrainOutput output) => output switch
    {
        MinuteAggregate => OutputStream.Aggregates,
        AlertEvent => OutputStream.Alerts,
        DeviceCommand => OutputStream.Commands,
        _ => null,
    };

    /// <summary>The message type of an output that has a stream: "aggregate", "alert.opened", "alert.resolved", "alert.acknowledged" or "command".</summary>
    public static string TypeOf(GrainOutput output) => output switch
    {
        MinuteAggregate => "aggregate",
        AlertEvent e => e.Kind switch
        {
            AlertEventKind.Opened => "alert.opened",
            AlertEventKind.Resolved => "alert.resolved",
            _ => "alert.acknowledged",
        },
        DeviceCommand => "command",
        _ => throw new ArgumentOutOfRangeException(nameof(output), output.GetType().Name, "Sensor summaries have no output stream."),
    };

    /// <summary>The JSON body (UTF-8) of an output that has a stream.</summary>
    public static byte[] BodyOf(GrainOutput output) => output switch
    {
        MinuteAggregate a => JsonSerializer.SerializeToUtf8Bytes(AggregateMessage.Of(a), OutputJsonContext.Default.AggregateMessage),
        AlertEvent e => JsonSerializer.SerializeToUtf8Bytes(AlertMessage.Of(e), OutputJsonContext.Default.AlertMessage),
        DeviceCommand c => JsonSerializer.SerializeToUtf8Bytes(CommandMessage.Of(c), OutputJsonContext.Default.CommandMessage),
        _ => throw new ArgumentOutOfRangeException(nameof(output), output.GetType().Name, "Sensor summaries have no output stream."),
    };

    /// <summary>
    /// The messages of the outputs that have one of <paramref name="streams"/>, each id once (the first occurrence), in
    /// output order.
    /// </summary>
    public static List<OutputMessage> Of(IReadOnlyList<GrainOutput> outputs, IReadOnlyList<OutputStream> streams)
    {
        var messages = new List<OutputMessage>();
        HashSet<(OutputStream, string)>? seen = null;
        foreach (var output in outputs)
        {
            if (StreamOf(output) is { } stream && streams.Contains(stream) && (seen ??= []).Add((stream, output.Id)))
            {
                messages.Add(new OutputMessage(stream, output.Id, TypeOf(output), BodyOf(output)));
            }
        }
        return messages;
    }

    internal static string Time(long ms) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    internal static string? Time(long? ms) => ms is { } v ? Time(v) : null;
}

public sealed record AggregateMessage(string Id, string SensorId, string Minute, long MinuteMs, Dictionary<string, MetricStatsMessage> Metrics,
    Dictionary<string, double>? Outside)
{
    public static AggregateMessage Of(MinuteAggregate a)
    {
        var metrics = new Dictionary<string, MetricStatsMessage>(a.Metrics.Length, StringComparer.Ordinal);
        foreach (var m in a.Metrics)
        {
            metrics[m.Metric] = new(m.Count, m.Min, m.Max, m.Sum, m.Avg, m.First, m.Last);
        }
        return new(a.Id, a.SensorId, OutputMessages.Time(a.MinuteMs), a.MinuteMs, metrics,
            a.Outside?.ToDictionary(o => o.Name, o => o.Value, StringComparer.Ordinal));
    }
}

public sealed record MetricStatsMessage(long Count, double Min, double Max, double Sum, double Avg, double First, double Last);

public sealed record AlertMessage(string Id, string Kind, AlertBody Alert)
{
    public static AlertMessage Of(AlertEvent e) => new(e.Id, e.Kind switch
    {
        AlertEventKind.Opened => "opened",
        AlertEventKind.Resolved => "resolved",
        _ => "acknowledged",
    }, AlertBody.Of(e.Alert));
}

public sealed record AlertBody(string Id, string RuleId, string RuleName, long RuleVersion, string SensorId, string Severity, string State,
    string StartedAt, string OpenedAt, string? ResolvedAt, string? ResolvedReason, string? AcknowledgedAt, string? AcknowledgedBy,
    double? Value, double? Threshold, string Message)
{
    public static AlertBody Of(Alert a) => new(a.Id, a.RuleId, a.RuleName, a.RuleVersion, a.SensorId, a.Severity.ToString().ToLowerInvariant(),
        a.State.ToString().ToLowerInvariant(), OutputMessages.Time(a.StartedAtMs), OutputMessages.Time(a.OpenedAtMs), OutputMessages.Time(a.ResolvedAtMs),
        a.ResolvedReason, OutputMessages.Time(a.AcknowledgedAtMs), a.AcknowledgedBy, a.Value, a.Threshold, a.Message);
}

public sealed record CommandMessage(string Id, string DeviceId, string Command, Dictionary<string, string>? Parameters, string RuleId,
    string AlertId, string CreatedAt)
{
    public static CommandMessage Of(DeviceCommand c) =>
        new(c.CommandId, c.DeviceId, c.Command, c.Parameters, c.RuleId, c.AlertId, OutputMessages.Time(c.CreatedAtMs));
}

/// <summary>camelCase, nulls omitted, non-finite doubles as names (a metric may be NaN or infinite only if a device sent it).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(AggregateMessage))]
[JsonSerializable(typeof(AlertMessage))]
[JsonSerializable(typeof(CommandMessage))]
internal sealed partial class OutputJsonContext : JsonSerializerContext;
