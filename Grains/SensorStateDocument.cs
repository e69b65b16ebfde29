using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Grains;

/// <summary>
/// The checkpointed form of a <see cref="SensorState"/> (UTF-8 JSON through <see cref="GrainsJsonContext"/>). Metric
/// names are written once, in <see cref="Metrics"/>; every per-metric array (latest values, a reading's values, a
/// window's aggregates) is indexed like it, null where the metric has no value. Attributes likewise with
/// <see cref="Attributes"/>. Trailing nulls are left out. Reading it back gives a state that behaves and serializes
/// exactly the same.
/// </summary>
public sealed class SensorStateDocument
{
    public string SensorId { get; set; } = "";
    public SensorMetadata? Metadata { get; set; }
    public long? LastSeenMs { get; set; }

    /// <summary>Metric names; the per-metric arrays below are indexed like this one.</summary>
    public string[]? Metrics { get; set; }

    /// <summary>Latest value per metric; null for a metric only seen in late readings.</summary>
    public double?[]? Latest { get; set; }

    /// <summary>Event time of each latest value (0 where <see cref="Latest"/> is null).</summary>
    public long[]? LatestTimesMs { get; set; }

    /// <summary>Attribute names; the per-attribute arrays below are indexed like this one.</summary>
    public string[]? Attributes { get; set; }

    public string?[]? LatestAttributes { get; set; }
    public long[]? LatestAttributeTimesMs { get; set; }

    /// <summary>The most recent readings by arrival, newest first, late ones included (flagged).</summary>
    public SensorReadingDocument[]? LastReadings { get; set; }

    /// <summary>Open minute windows, in order of opening.</summary>
    public MinuteWindowDocument[]? Windows { get; set; }

    public long? LastClosedMinuteMs { get; set; }
    public long LateCount { get; set; }
    public LateReadingInfo? LastLate { get; set; }

    /// <summary>Per rule targeting the sensor, in rule id order: what the rule grain was last told.</summary>
    public RuleConditionDocument[]? Rules { get; set; }

    public long? WakeAtMs { get; set; }

    internal static SensorStateDocument From(SensorState s)
    {
        var metrics = s.Metrics.Length;
        var doc = new SensorStateDocument
        {
            SensorId = s.SensorId,
            Metadata = s.Metadata,
            LastSeenMs = s.LastSeenMs,
            LastClosedMinuteMs = s.LastClosedMinuteMs,
            LateCount = s.LateCount,
            LastLate = s.LastLate,
            WakeAtMs = s.WakeAtMs,
        };
        if (metrics > 0)
        {
            doc.Metrics = [.. s.Metrics];
            doc.Latest = new double?[metrics];
            doc.LatestTimesMs = new long[metrics];
            for (var slot = 0; slot < metrics; slot++)
            {
                if (!IsSet(s.LatestAbsent, slot))
                {
                    doc.Latest[slot] = s.LatestValues[slot];
                    doc.LatestTimesMs[slot] = s.LatestTimes[slot];
                }
            }
        }

        if (s.AttributeNames.Length > 0)
        {
            doc.Attributes = [.. s.AttributeNames];
            doc.LatestAttributes = [.. s.AttributeValues!];
            doc.LatestAttributeTimesMs = [.. s.AttributeTimes!];
        }

        if (s.ReadingCount > 0)
        {
            doc.LastReadings = new SensorReadingDocument[s.ReadingCount];
            var stride = s.Metrics.Length;
            var attributeStride = s.AttributeNames.Length;
            var words = SensorState.FlagWords(stride);
            for (var row = 0; row < s.ReadingCount; row++)
            {
                var flags = s.ReadingFlags.AsSpan(row * words, words);
                var reading = new SensorReadingDocument { TimestampMs = s.ReadingTimes![row], Late = (flags[0] & 1) != 0 };
                var last = -1;
                for (var slot = 0; slot < stride; slot++)
                {
                    if (IsSet(flags, slot + 1))
                    {
                        last = slot;
                    }
                }

                if (last >= 0)
                {
                    reading.Values = new double?[last + 1];
                    for (var slot = 0; slot <= last; slot++)
                    {
                        reading.Values[slot] = IsSet(flags, slot + 1) ? s.ReadingValues![row * stride + slot] : null;
                    }
                }

                if (s.ReadingAttributes is { } attributes)
                {
                    var values = attributes.AsSpan(row * attributeStride, attributeStride);
                    var lastAttribute = values.LastIndexOfAnyExcept((string?)null);
                    if (lastAttribute >= 0)
                    {
                        reading.Attributes = values[..(lastAttribute + 1)].ToArray();
                    }
                }

                doc.LastReadings[row] = reading;
            }
        }

        if (s.Windows is { } windows)
        {
            doc.Windows = new MinuteWindowDocument[windows.Length];
            for (var w = 0; w < windows.Length; w++)
            {
                var window = windows[w];
                var slots = window.Slots;
                var last = -1;
                for (var slot = 0; slot < slots.Length; slot++)
                {
                    if (slots[slot].Count > 0)
                    {
                        last = slot;
                    }
                }

                var aggregates = new MetricAggregateDocument?[last + 1];
                for (var slot = 0; slot <= last; slot++)
                {
                    ref var a = ref slots[slot];
                    aggregates[slot] = a.Count == 0 ? null : new MetricAggregateDocument
                    {
                        Count = a.Count,
                        Min = a.Min,
                        Max = a.Max,
                        Sum = a.Sum,
                        First = a.First,
                        FirstTimeMs = window.MinuteMs + a.FirstOffsetMs,
                        Last = a.Last,
                        LastTimeMs = window.MinuteMs + a.LastOffsetMs,
                    };
                }

                doc.Windows[w] = new MinuteWindowDocument { MinuteMs = window.MinuteMs, Metrics = aggregates };
            }
        }

        if (s.Rules is { } rules)
        {
            doc.Rules = Array.ConvertAll(rules, r => new RuleConditionDocument
            {
                RuleId = r.RuleId,
                Version = r.Version,
                Holding = r.Holding,
                SinceMs = r.SinceMs,
            });
        }

        return doc;
    }

    internal SensorState ToState(SensorNameTable names)
    {
        var s = new SensorState(SensorId)
        {
            Metadata = Metadata is { } m ? SensorGrain.Shared(m, names) : null,
            LastSeenMs = LastSeenMs,
            LastClosedMinuteMs = LastClosedMinuteMs,
            LateCount = LateCount,
            LastLate = LastLate,
            WakeAtMs = WakeAtMs,
        };

        var metrics = Metrics?.Length ?? 0;
        if (metrics > 0)
        {
            s.Metrics = names.Share([.. Metrics!]);
            s.LatestValues = new double[metrics];
            s.LatestTimes = new long[metrics];
            for (var slot = 0; slot < metrics; slot++)
            {
                if (Latest is { } latest && slot < latest.Length && latest[slot] is { } value)
                {
                    s.LatestValues[slot] = value;
                    s.LatestTimes[slot] = LatestTimesMs is { } times && slot < times.Length ? times[slot] : 0;
                }
                else
                {
                    s.LatestAbsent ??= new ulong[(metrics + 63) >> 6];
                    s.LatestAbsent[slot >> 6] |= 1UL << (slot & 63);
                }
            }
        }

        var attributeCount = Attributes?.Length ?? 0;
        if (attributeCount > 0)
        {
            s.AttributeNames = names.Share([.. Attributes!]);
            s.AttributeValues = new string?[attributeCount];
            s.AttributeTimes = new long[attributeCount];
            for (var slot = 0; slot < attributeCount; slot++)
            {
                s.AttributeValues[slot] = LatestAttributes is { } values && slot < values.Length && values[slot] is { } v ? names.Intern(v) : null;
                s.AttributeTimes[slot] = LatestAttributeTimesMs is { } times && slot < times.Length ? times[slot] : 0;
            }
        }

        if (LastReadings is { Length: > 0 } readings)
        {
            var rows = readings.Length;
            var words = SensorState.FlagWords(metrics);
            s.ReadingCount = rows;
            s.ReadingTimes = new long[rows];
            s.ReadingValues = new double[rows * metrics];
            s.ReadingFlags = new ulong[rows * words];
            if (attributeCount > 0)
            {
                s.ReadingAttributes = new string?[rows * attributeCount];
            }

            for (var row = 0; row < rows; row++)
            {
                var reading = readings[row];
                s.ReadingTimes[row] = reading.TimestampMs;
                var flags = s.ReadingFlags.AsSpan(row * words, words);
                flags[0] = reading.Late ? 1UL : 0;
                var values = reading.Values ?? [];
                for (var slot = 0; slot < Math.Min(values.Length, metrics); slot++)
                {
                    if (values[slot] is { } v)
                    {
                        s.ReadingValues[row * metrics + slot] = v;
                        flags[(slot + 1) >> 6] |= 1UL << ((slot + 1) & 63);
                    }
                }

                var attributes = reading.Attributes ?? [];
                for (var slot = 0; slot < Math.Min(attributes.Length, attributeCount); slot++)
                {
                    s.ReadingAttributes![row * attributeCount + slot] = attributes[slot] is { } a ? names.Intern(a) : null;
                }
            }
        }

        if (Windows is { Length: > 0 } windows)
        {
            s.Windows = new MinuteWindow[windows.Length];
            for (var w = 0; w < windows.Length; w++)
            {
                var doc = windows[w];
                var window = new MinuteWindow(doc.MinuteMs, metrics);
                var aggregates = doc.Metrics ?? [];
                for (var slot = 0; slot < Math.Min(aggregates.Length, metrics); slot++)
                {
                    if (aggregates[slot] is { Count: > 0 } a)
                    {
                        window.Slots[slot] = new Accumulator
                        {
                            Count = a.Count,
                            Min = a.Min,
                            Max = a.Max,
                            Sum = a.Sum,
                            First = a.First,
                            Last = a.Last,
                            FirstOffsetMs = (int)(a.FirstTimeMs - doc.MinuteMs),
                            LastOffsetMs = (int)(a.LastTimeMs - doc.MinuteMs),
                        };
                    }
                }

                s.Windows[w] = window;
            }
        }

        if (Rules is { Length: > 0 } rules)
        {
            s.Rules = Array.ConvertAll(rules, r => new RuleSlot(r.RuleId, r.Version) { Holding = r.Holding, SinceMs = r.SinceMs });
        }

        return s;
    }

    private static bool IsSet(ReadOnlySpan<ulong> bits, int index) => (index >> 6) < bits.Length && (bits[index >> 6] & (1UL << (index & 63))) != 0;
}

public sealed class SensorReadingDocument
{
    public long TimestampMs { get; set; }

    /// <summary>Indexed like <see cref="SensorStateDocument.Metrics"/>; null where the reading had no such metric.</summary>
    public double?[]? Values { get; set; }

    /// <summary>Indexed like <see cref="SensorStateDocument.Attributes"/>; null where the reading had no such attribute.</summary>
    public string?[]? Attributes { get; set; }

    /// <summary>True when the reading arrived after its minute closed (counted in LateCount, not aggregated).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Late { get; set; }
}

public sealed class MinuteWindowDocument
{
    public long MinuteMs { get; set; }

    /// <summary>Indexed like <see cref="SensorStateDocument.Metrics"/>; null where the minute has no reading of the metric.</summary>
    public MetricAggregateDocument?[]? Metrics { get; set; }
}

public sealed class MetricAggregateDocument
{
    public long Count { get; set; }
    public double Min { get; set; }
    public double Max { get; set; }
    public double Sum { get; set; }
    public double First { get; set; }
    public long FirstTimeMs { get; set; }
    public double Last { get; set; }
    public long LastTimeMs { get; set; }
}

public sealed class RuleConditionDocument
{
    public string RuleId { get; set; } = "";
    public long Version { get; set; }
    public bool Holding { get; set; }
    public long? SinceMs { get; set; }
}
