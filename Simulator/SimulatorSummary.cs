using System.Text.Json.Serialization;

namespace Simulator;

/// <summary>The JSON summary at the end of a run.</summary>
public sealed record SimulatorSummary
{
    public required DateTimeOffset StartedAt { get; init; }
    public required double DurationSeconds { get; init; }
    public required int Sensors { get; init; }
    public required string Format { get; init; }

    /// <summary>"http", or "mqtt" with its version ("mqtt 5", "mqtt 3.1.1").</summary>
    public string Transport { get; init; } = "http";
    public required int Batch { get; init; }
    public required long Sent { get; init; }
    public required long Acknowledged { get; init; }
    public required long Rejected { get; init; }
    public required long Errors { get; init; }
    public required long Retries503 { get; init; }

    /// <summary>Resends after 429 (the key's rate limit).</summary>
    public long Retries429 { get; init; }

    /// <summary>Acknowledged readings per second of the whole run (sending and draining).</summary>
    public required double ReadingsPerSecond { get; init; }

    public required LatencySummary LatencyMs { get; init; }

    /// <summary>With --wait-applied: seconds from the start until every partition had applied all it was sent; null otherwise.</summary>
    public double? AppliedSeconds { get; init; }

    /// <summary>With --wait-applied: acknowledged readings divided by <see cref="AppliedSeconds"/> (accepted and aggregated).</summary>
    public double? AppliedReadingsPerSecond { get; init; }

    /// <summary>The first few rejections and errors.</summary>
    public required IReadOnlyList<string> RejectedSamples { get; init; }
}

/// <summary>Latency of the requests answered 202, in milliseconds.</summary>
public sealed record LatencySummary(double P50, double P99, double Max);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(SimulatorSummary))]
[JsonSerializable(typeof(ProbeSummary))]
public sealed partial class SummaryJsonContext : JsonSerializerContext;
