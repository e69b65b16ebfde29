using Grains.Abstractions;

namespace Api.Ingest;

/// <summary>How a request body is framed.</summary>
public enum TelemetryBodyKind
{
    /// <summary>One JSON object, or a JSON array of objects.</summary>
    Json,

    /// <summary>One JSON object per line; blank lines are skipped.</summary>
    NdJson,
}

/// <summary>
/// A rejected item: <paramref name="Index"/> is its 0-based position (array element, or NDJSON line counted
/// among the non-blank lines); <paramref name="Error"/> names the field at fault.
/// </summary>
public sealed record ItemError(int Index, string Error);

/// <summary>The body as a whole could not be used: <paramref name="Line"/> is 1-based, <paramref name="Position"/> a 0-based byte offset in that line.</summary>
public sealed record MalformedBody(string Error, long Line, long Position);

/// <summary>
/// Outcome of <see cref="TelemetryParser.Parse"/>. When <see cref="Malformed"/> is set, <see cref="Accepted"/>
/// and <see cref="Rejected"/> are empty: nothing of the body is used.
/// </summary>
public sealed class TelemetryParseResult
{
    public List<Reading> Accepted { get; } = [];

    /// <summary>The item index of each accepted reading (same order as <see cref="Accepted"/>).</summary>
    public List<int> AcceptedIndexes { get; } = [];

    public List<ItemError> Rejected { get; } = [];

    public MalformedBody? Malformed { get; internal set; }
}
