using Microsoft.Extensions.Options;

namespace Runtime.Outputs;

/// <summary>Settings of the output streams (section "Outputs").</summary>
public sealed class OutputOptions
{
    /// <summary>Retention by age of each RabbitMQ output stream (x-max-age).</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Retention by size of each RabbitMQ output stream (x-max-length-bytes).</summary>
    public long MaxLengthBytes { get; set; } = 10_000_000_000;

    /// <summary>
    /// How long PostgreSQL remembers the id of an output it has queued for the streams, so that the same output written
    /// again by a replay is not appended twice. A grain replays only what it emitted and had not yet recorded in its
    /// state, so this must cover the longest time a silo's partitions can stay unread (a cluster down).
    /// </summary>
    public TimeSpan DedupeWindow { get; set; } = TimeSpan.FromDays(2);

    /// <summary>Most messages the relay appends to one stream at a time.</summary>
    public int BatchSize { get; set; } = 1000;

    /// <summary>Pause of the relay when nothing waits to be appended.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Embedded mode: the messages each in-memory stream keeps (the oldest go first; offsets keep counting).</summary>
    public int InMemoryCapacity { get; set; } = 100_000;

    /// <summary>
    /// The output streams the cluster keeps, comma-separated: "aggregates,alerts,commands" (the default), any of them, or
    /// "none". Outputs of a stream left out stay in the read models only: they are not queued in the outbox, not relayed
    /// and not kept in memory, and its RabbitMQ stream is not declared. Every silo and Api node must have the same value.
    /// A fleet's minute aggregates are one message per sensor a minute, most of the broker's work when nothing consumes
    /// them (BENCHMARKS.md). An empty value is refused rather than taken for "none": a setting left blank must not stop
    /// the commands stream.
    /// </summary>
    public string Streams { get; set; } = string.Join(",", OutputMessages.Streams.Select(OutputMessages.Name));

    /// <summary>The streams of <see cref="Streams"/>, in the order of <see cref="OutputMessages.Streams"/>; names that are not streams are left out.</summary>
    public IReadOnlyList<OutputStream> KeptStreams()
    {
        var named = StreamNames();
        return OutputMessages.Streams.Where(s => named.Contains(OutputMessages.Name(s))).ToArray();
    }

    /// <summary>The streams kept, as the 404 of a stream left out and the logs name them: "alerts, commands", or "none".</summary>
    public string DescribeStreams() => KeptStreams() is { Count: > 0 } kept ? string.Join(", ", kept.Select(OutputMessages.Name)) : "none";

    private string[] StreamNames() => (Streams ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MaxAge < TimeSpan.FromSeconds(1))
        {
            errors.Add("Outputs:MaxAge must be at least 1 second");
        }
        if (MaxLengthBytes <= 0)
        {
            errors.Add("Outputs:MaxLengthBytes must be positive");
        }
        if (DedupeWindow < TimeSpan.FromMinutes(1))
        {
            errors.Add("Outputs:DedupeWindow must be at least 1 minute");
        }
        if (BatchSize is < 1 or > 10_000)
        {
            errors.Add("Outputs:BatchSize must be between 1 and 10000");
        }
        if (PollInterval < TimeSpan.FromMilliseconds(1) || PollInterval > TimeSpan.FromMinutes(1))
        {
            errors.Add("Outputs:PollInterval must be between 1 ms and 1 minute");
        }
        if (InMemoryCapacity is < 1 or > 10_000_000)
        {
            errors.Add("Outputs:InMemoryCapacity must be between 1 and 10000000");
        }
        var names = StreamNames();
        var known = string.Join(", ", OutputMessages.Streams.Select(OutputMessages.Name));
        if (names.Length == 0)
        {
            errors.Add($"Outputs:Streams must name the output streams to keep ({known}), comma-separated, or be none");
        }
        foreach (var name in names.Where(n => n != "none" && !OutputMessages.TryParse(n, out _)))
        {
            errors.Add($"Outputs:Streams: '{name}' is not an output stream ({known}, or none)");
        }
        if (names.Length > 1 && names.Contains("none"))
        {
            errors.Add("Outputs:Streams: none cannot be listed with streams");
        }
        return errors;
    }
}

/// <summary>Validates <see cref="OutputOptions"/> at start (use with ValidateOnStart).</summary>
public sealed class OutputOptionsValidator : IValidateOptions<OutputOptions>
{
    public ValidateOptionsResult Validate(string? name, OutputOptions options)
    {
        var errors = options.Validate();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
