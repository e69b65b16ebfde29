using Microsoft.Extensions.Options;

namespace Runtime.InMemory;

/// <summary>Settings of the embedded mode's in-memory store (section "Embedded").</summary>
public sealed class EmbeddedOptions
{
    /// <summary>
    /// Minute aggregates older than this (by minute start, against the current time) are deleted every hour, so that an
    /// embedded node's memory does not grow with its running time. Seven days: the longest range a rule preview replays.
    /// </summary>
    public TimeSpan AggregateRetention { get; set; } = TimeSpan.FromDays(7);
}

public sealed class EmbeddedOptionsValidator : IValidateOptions<EmbeddedOptions>
{
    public ValidateOptionsResult Validate(string? name, EmbeddedOptions options) =>
        options.AggregateRetention <= TimeSpan.Zero
            ? ValidateOptionsResult.Fail("Embedded:AggregateRetention must be positive.")
            : ValidateOptionsResult.Success;
}
