namespace Api.Ingest;

/// <summary>Limits applied by <see cref="TelemetryParser"/> to every request body and reading.</summary>
public sealed class TelemetryLimits
{
    /// <summary>Most metrics in one reading.</summary>
    public int MaxMetrics { get; set; } = 64;

    /// <summary>Most attributes in one reading; also the most extra fields in its "metadata" object.</summary>
    public int MaxAttributes { get; set; } = 64;

    /// <summary>Longest metric, attribute or metadata field name, in UTF-16 characters.</summary>
    public int MaxNameLength { get; set; } = 64;

    /// <summary>Longest attribute or metadata value, in UTF-16 characters.</summary>
    public int MaxStringValueLength { get; set; } = 256;

    /// <summary>How far a reading's timestamp may be ahead of the time of receipt.</summary>
    public long MaxFutureSkewMs { get; set; } = 300_000;

    /// <summary>Most readings in one request body.</summary>
    public int MaxItems { get; set; } = 10_000;
}
