using System.Collections.Immutable;

namespace Grains.Abstractions;

/// <summary>What an operator or a weather integration reported of the conditions outside a location at <see cref="TimestampMs"/>.</summary>
[GenerateSerializer, Immutable, Alias("oiot.OutsideObservation")]
public sealed record OutsideObservation
{
    /// <summary>When the conditions were observed, epoch ms.</summary>
    [Id(0)] public required long TimestampMs { get; init; }

    /// <summary>The values observed, by metric name (e.g. temperature, humidity), in name order.</summary>
    [Id(1)] public required MetricValue[] Metrics { get; init; }
}

/// <summary>
/// The outside conditions of every location, as of a partition's position in the log: per location, its observations in
/// time order. Immutable: Orleans passes it to the sensor grains of the partition's silo by reference.
/// <see cref="At"/> gives the values current at a time: each metric's value from the latest observation before that time,
/// unless older than the allowed age.
/// </summary>
[Immutable]
public sealed class OutsideConditions
{
    /// <summary>
    /// Observations a location keeps at most (the oldest go first): an hour of a one-minute cadence. A closing minute joins
    /// the latest one before its end, so only backfills reach further back; the conditions are in every partition's stored
    /// state, about 5 KB per location at this bound.
    /// </summary>
    public const int MaxObservationsPerLocation = 64;

    public static readonly OutsideConditions Empty = new(ImmutableSortedDictionary<string, ImmutableArray<OutsideObservation>>.Empty.WithComparers(StringComparer.Ordinal));

    private readonly ImmutableSortedDictionary<string, ImmutableArray<OutsideObservation>> _locations;

    private OutsideConditions(ImmutableSortedDictionary<string, ImmutableArray<OutsideObservation>> locations) => _locations = locations;

    public int LocationCount => _locations.Count;

    public IEnumerable<KeyValuePair<string, ImmutableArray<OutsideObservation>>> Locations => _locations;

    public bool Knows(string location) => _locations.ContainsKey(location);

    /// <summary>
    /// The conditions with <paramref name="observations"/> of <paramref name="location"/> added (one with the timestamp of
    /// a kept one replaces it), keeping the location's observations within <paramref name="keepMs"/> of its newest one
    /// plus the latest one before that (the value current then), at most <see cref="MaxObservationsPerLocation"/>. The
    /// observations' own times decide, not when they were posted: a backfill of old weather joins old minutes.
    /// </summary>
    public OutsideConditions With(string location, IReadOnlyList<OutsideObservation> observations, long keepMs)
    {
        var merged = new SortedDictionary<long, OutsideObservation>();
        if (_locations.TryGetValue(location, out var kept))
        {
            foreach (var o in kept)
            {
                merged[o.TimestampMs] = o;
            }
        }
        foreach (var o in observations)
        {
            merged[o.TimestampMs] = o;
        }
        var ordered = merged.Values.ToList();
        if (ordered.Count == 0)
        {
            return this;
        }
        var keepFromMs = ordered[^1].TimestampMs - keepMs;
        var first = ordered.FindIndex(o => o.TimestampMs >= keepFromMs);
        var start = first < 0 ? ordered.Count - 1 : Math.Max(0, first - 1);
        start = Math.Max(start, ordered.Count - MaxObservationsPerLocation);
        return new(_locations.SetItem(location, [.. ordered.Skip(start)]));
    }

    /// <summary>
    /// The values of <paramref name="location"/> current at <paramref name="timeMs"/>: for each metric, its value in the
    /// latest observation taken before <paramref name="timeMs"/> and not more than <paramref name="maxAgeMs"/> before it;
    /// in name order, null when there is none.
    /// </summary>
    public MetricValue[]? At(string? location, long timeMs, long maxAgeMs)
    {
        if (location is null || !_locations.TryGetValue(location, out var observations))
        {
            return null;
        }
        List<MetricValue>? values = null;
        for (var i = observations.Length - 1; i >= 0; i--)
        {
            var o = observations[i];
            if (o.TimestampMs >= timeMs)
            {
                continue;
            }
            if (timeMs - o.TimestampMs > maxAgeMs)
            {
                break;
            }
            foreach (var metric in o.Metrics)
            {
                values ??= [];
                if (!values.Exists(v => string.Equals(v.Name, metric.Name, StringComparison.Ordinal)))
                {
                    values.Add(metric);
                }
            }
        }
        if (values is null)
        {
            return null;
        }
        values.Sort((x, y) => string.CompareOrdinal(x.Name, y.Name));
        return [.. values];
    }

    public static OutsideConditions From(IEnumerable<KeyValuePair<string, OutsideObservation[]>> locations) =>
        new(locations.Aggregate(Empty._locations, (d, l) => d.SetItem(l.Key, [.. l.Value.OrderBy(o => o.TimestampMs)])));
}

/// <summary>How <see cref="OutsideConditions"/> travels to another silo and is stored: its locations and their observations.</summary>
[GenerateSerializer, Immutable, Alias("oiot.OutsideConditions")]
public readonly record struct OutsideConditionsSurrogate([property: Id(0)] Dictionary<string, OutsideObservation[]> Locations);

[RegisterConverter]
public sealed class OutsideConditionsConverter : IConverter<OutsideConditions, OutsideConditionsSurrogate>
{
    public OutsideConditions ConvertFromSurrogate(in OutsideConditionsSurrogate surrogate) =>
        surrogate.Locations is null ? OutsideConditions.Empty : OutsideConditions.From(surrogate.Locations);

    public OutsideConditionsSurrogate ConvertToSurrogate(in OutsideConditions value) =>
        new(value.Locations.ToDictionary(l => l.Key, l => l.Value.ToArray(), StringComparer.Ordinal));
}
