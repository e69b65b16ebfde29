namespace Grains;

/// <summary>Settings of every <see cref="SensorGrain"/> of a silo.</summary>
public sealed class SensorGrainOptions
{
    /// <summary>How long after the end of a minute (in stream time) readings for it are still counted.</summary>
    public long AllowedLatenessMs { get; set; } = 10_000;

    /// <summary>How many of the most recent readings (by arrival) a sensor keeps.</summary>
    public int LastReadingsCount { get; set; } = 10;

    /// <summary>Distinct metric names a sensor may have; the Api refuses a reading that would add one more.</summary>
    public int MaxMetricNames { get; set; } = 256;

    /// <summary>Distinct attribute names a sensor may have; the Api refuses a reading that would add one more.</summary>
    public int MaxAttributeNames { get; set; } = 256;

    /// <summary>The oldest outside observation a closed minute is joined with: older conditions are not current any more.</summary>
    public long OutsideMaxAgeMs { get; set; } = 3_600_000;
}
