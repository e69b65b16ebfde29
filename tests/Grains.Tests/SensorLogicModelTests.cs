using System.Text.Json;
using System.Text.Json.Serialization;
using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

/// <summary>
/// The sensor grain against a plain reference model of its behaviour (dictionaries and lists, as the state was first
/// written), on random readings: out of order, late, repeated and new names, NaN, attributes; with wake-ups and
/// checkpoint round trips in between.
/// </summary>
public sealed class SensorGrainModelTests
{
    private static readonly JsonSerializerOptions Options = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Behaves_like_the_reference_model(int seed)
    {
        var random = new Random(seed);
        var options = new SensorGrainOptions { AllowedLatenessMs = 10_000, LastReadingsCount = 4 };
        var factory = new GrainFactory(options);
        var grain = (SensorGrain)factory.Activate(GrainId.Sensor("s1"), null);
        var context = new TestGrainContext(GrainId.Sensor("s1"));
        var model = new Model(options);
        var metricNames = new[] { "a", "b", "c", "d", "e", "f" };
        var attributeNames = new[] { "light", "door" };
        var time = M0;

        for (var step = 0; step < 400; step++)
        {
            var action = random.Next(10);
            if (action == 0 && context.WakeAtMs is { } wake)
            {
                context.StreamTimeMs = Math.Max(context.StreamTimeMs, wake + random.Next(0, 30_000));
                grain.Wake(context);
                model.Wake(context.StreamTimeMs);
            }
            else if (action == 1)
            {
                var json = factory.SerializeState(grain);
                grain = (SensorGrain)factory.Activate(GrainId.Sensor("s1"), json);
                Assert.Equal(json, factory.SerializeState(grain));
            }
            else
            {
                time += random.Next(0, 9_000);
                var t = random.Next(6) == 0 ? time - random.Next(0, 100_000) : time;
                var metrics = Enumerable.Range(0, random.Next(0, 5))
                    .Select(_ => new MetricValue(metricNames[random.Next(metricNames.Length)], random.Next(20) == 0 ? double.NaN : Math.Round(random.NextDouble() * 100, 1)))
                    .ToArray();
                var attributes = random.Next(3) == 0
                    ? null
                    : Enumerable.Range(0, random.Next(1, 3)).Select(_ => new AttributeValue(attributeNames[random.Next(2)], random.Next(2) == 0 ? "on" : "off")).ToArray();
                var reading = new Reading { SensorId = "s1", TimestampMs = t, Metrics = metrics, Attributes = attributes };
                context.StreamTimeMs = Math.Max(context.StreamTimeMs, t);
                grain.Receive(reading, context);
                model.Receive(reading, context.StreamTimeMs);
            }

            Assert.Equal(model.Describe(), Describe(grain.View()));
            Assert.Equal(JsonSerializer.Serialize(model.Emitted.ToArray(), Options), JsonSerializer.Serialize(context.Emitted.ToArray(), Options));
        }

        Assert.True(model.Emitted.Count > 5);
        Assert.True(grain.View().LateCount > 5);
        Assert.True(grain.View().Attributes.Count == 2);
    }

    private static string Describe(SensorView v) => JsonSerializer.Serialize(
        new
        {
            v.LastSeenMs,
            Latest = v.Latest.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value.Value, p.Value.TimeMs).ToString()).ToArray(),
            Attributes = v.Attributes.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value.Value, p.Value.TimeMs).ToString()).ToArray(),
            Readings = v.LastReadings.Select(r => (r.TimestampMs, r.Late,
                string.Join(",", r.Metrics.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}")),
                r.Attributes is null ? "-" : string.Join(",", r.Attributes.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"))).ToString()).ToArray(),
            Windows = v.Windows.OrderBy(p => p.Key).Select(w => w.Key + ":" + string.Join(",", w.Value.OrderBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => $"{p.Key}={p.Value.Count}/{p.Value.Min}/{p.Value.Max}/{p.Value.Sum}/{p.Value.First}@{p.Value.FirstTimeMs}/{p.Value.Last}@{p.Value.LastTimeMs}"))).ToArray(),
            v.LastClosedMinuteMs,
            v.LateCount,
            LastLate = v.LastLate is { } l ? (l.TimestampMs, l.MinuteMs).ToString() : null,
        },
        Options);

    /// <summary>The sensor's behaviour written plainly: dictionaries per name, a list of readings.</summary>
    private sealed class Model(SensorGrainOptions options)
    {
        private readonly SensorView _v = new();

        public List<GrainOutput> Emitted { get; } = [];

        public void Receive(Reading reading, long streamTimeMs)
        {
            var time = reading.TimestampMs;
            var minute = time - (((time % Minute) + Minute) % Minute);
            var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var m in reading.Metrics)
            {
                metrics[m.Name] = m.Value;
            }

            var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var a in reading.Attributes ?? [])
            {
                attributes[a.Name] = a.Value;
            }

            var late = minute <= _v.LastClosedMinuteMs || minute + Minute + options.AllowedLatenessMs <= streamTimeMs;
            _v.LastReadings.Insert(0, new ReadingRecord { TimestampMs = time, Metrics = metrics, Attributes = attributes.Count == 0 ? null : attributes, Late = late });
            if (_v.LastReadings.Count > options.LastReadingsCount)
            {
                _v.LastReadings.RemoveRange(options.LastReadingsCount, _v.LastReadings.Count - options.LastReadingsCount);
            }

            if (late)
            {
                _v.LateCount++;
                _v.LastLate = new LateReadingInfo { TimestampMs = time, MinuteMs = minute };
                return;
            }

            _v.LastSeenMs = _v.LastSeenMs is { } seen ? Math.Max(seen, time) : time;
            foreach (var (name, value) in metrics)
            {
                if (!_v.Latest.TryGetValue(name, out var latest) || time >= latest.TimeMs)
                {
                    _v.Latest[name] = new TimedValue { Value = value, TimeMs = time };
                }

                if (!_v.Windows.TryGetValue(minute, out var window))
                {
                    _v.Windows[minute] = window = new Dictionary<string, RunningAggregate>(StringComparer.Ordinal);
                }

                if (!window.TryGetValue(name, out var a))
                {
                    window[name] = new RunningAggregate { Count = 1, Min = value, Max = value, Sum = value, First = value, FirstTimeMs = time, Last = value, LastTimeMs = time };
                    continue;
                }

                a.Count++;
                a.Min = Math.Min(a.Min, value);
                a.Max = Math.Max(a.Max, value);
                a.Sum += value;
                if (time < a.FirstTimeMs)
                {
                    (a.First, a.FirstTimeMs) = (value, time);
                }

                if (time >= a.LastTimeMs)
                {
                    (a.Last, a.LastTimeMs) = (value, time);
                }
            }

            foreach (var (name, value) in attributes)
            {
                if (!_v.Attributes.TryGetValue(name, out var latest) || time >= latest.TimeMs)
                {
                    _v.Attributes[name] = new TimedAttribute { Value = value, TimeMs = time };
                }
            }
        }

        public void Wake(long now)
        {
            foreach (var minute in _v.Windows.Keys.Where(m => m + Minute + options.AllowedLatenessMs <= now).Order().ToList())
            {
                Emitted.Add(new MinuteAggregate
                {
                    SensorId = "s1",
                    MinuteMs = minute,
                    Metrics = _v.Windows[minute].OrderBy(p => p.Key, StringComparer.Ordinal)
                        .Select(p => new MetricAggregate { Metric = p.Key, Count = p.Value.Count, Min = p.Value.Min, Max = p.Value.Max, Sum = p.Value.Sum, First = p.Value.First, Last = p.Value.Last })
                        .ToArray(),
                });
                _v.Windows.Remove(minute);
                _v.LastClosedMinuteMs = _v.LastClosedMinuteMs is { } last ? Math.Max(last, minute) : minute;
            }
        }

        public string Describe() => SensorGrainModelTests.Describe(_v);
    }
}
