using Grains.Abstractions;

namespace Runtime.Tests;

/// <summary>
/// Work handed to a sensor grain by a test standing in for its partition: one reading of metric "t" per second from
/// <see cref="R0"/>, reading k at log offset k with the value k.
/// </summary>
internal static class DirectWork
{
    public static readonly long R0 = DateTimeOffset.Parse("2026-03-02T08:00:00Z").ToUnixTimeMilliseconds();

    public static Reading Reading(string sensor, long timeMs, double value) =>
        new() { SensorId = sensor, TimestampMs = timeMs, Metrics = [new MetricValue("t", value)] };

    /// <summary>Readings at seconds <paramref name="seconds"/>, given to a sensor that reported <paramref name="appliedAtLeast"/>.</summary>
    public static SensorWork Of(long appliedAtLeast, string sensor, params int[] seconds) => new(
        [.. seconds.Select(k => new SensorWorkItem(LogPosition.Of(k, 0), R0 + k * 1_000L, Reading(sensor, R0 + k * 1_000L, k)))],
        R0 + seconds.DefaultIfEmpty(0).Max() * 1_000L, RuleCatalog.Empty, appliedAtLeast);
}
