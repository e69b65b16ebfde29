using System.Text.Json;
using System.Text.Json.Serialization;
using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

/// <summary>
/// The sensor logic against a plain reference model of its behaviour (dictionaries and lists, as the state was first
/// written), on random readings: out of order, late, repeated and new names, NaN, attributes; with wake-ups and
/// round trips of the state through Orleans' serializer (what grain storage keeps) in between, each followed by a
/// replay of the last readings at their log positions, which the logic skips.
/// </summary>
public sealed class SensorLogicModelTests
{
    private static readonly JsonSerializerOptions Options = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <param name="skewMs">
    /// 0: each reading is received at its event time, so the sensor's clock is the greatest event time so far (the
    /// cases of the old stream-time model). Otherwise receipt times are the Api's and the device's clock is off by
    /// <paramref name="skewMs"/> (ahead when positive, behind when negative).
    /// </param>
    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 0)]
    [InlineData(3, 0)]
    [InlineData(4, 0)]
    [InlineData(5, 25_000)]
    [InlineData(6, -4 * Minute)]
    public void Behaves_like_the_reference_model(int seed, long skewMs)
    {
        var random = new Random(seed);
        var options = new SensorGrainOptions { AllowedLatenessMs = 10_000, LastReadingsCount = 4 };
        var names = new SensorNameTable();
        var logic = new SensorLogic("s1", null, options, names);
        var effects = new TestEffects();
        var model = new Model(options);
        var metricNames = new[] { "a", "b", "c", "d", "e", "f" };
        var attributeNames = new[] { "light", "door" };
        var time = M0;
        var log = new List<(Reading Reading, long ReceivedAtMs)>();

        for (var step = 0; step < 400; step++)
        {
            var action = random.Next(10);
            if (action == 0 && logic.WakeAtReceivedMs() is { } wake)
            {
                var due = logic.NextDueMs();
                var receivedAt = Math.Max(logic.ClockReceivedAtMs, wake + random.Next(0, 30_000));
                logic.Advance(receivedAt, RuleCatalog.Empty, effects);
                model.Advance(receivedAt);
                Assert.True(due <= logic.ClockMs, $"due {due}, clock {logic.ClockMs}");
            }
            else if (action == 1)
            {
                var bytes = Bytes(logic.State);
                logic = new SensorLogic("s1", Serializer.Deserialize<SensorState>(bytes), options, names);
                Assert.Equal(bytes, Bytes(logic.State));

                // The log delivers the last readings again (at least once): all already applied.
                for (var position = Math.Max(0, log.Count - 3); position < log.Count; position++)
                {
                    Assert.False(logic.Apply(position, log[position].Reading, log[position].ReceivedAtMs, RuleCatalog.Empty, effects));
                }

                Assert.Equal(bytes, Bytes(logic.State));
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
                // Skewed: the device stamps its clock's time; it is received now (time), or later when delayed.
                var reading = new Reading { SensorId = "s1", TimestampMs = skewMs == 0 ? t : t + skewMs, Metrics = metrics, Attributes = attributes };
                var receivedAt = skewMs == 0 ? t : time;
                Assert.True(logic.Apply(log.Count, reading, receivedAt, RuleCatalog.Empty, effects));
                log.Add((reading, receivedAt));
                model.Receive(reading, receivedAt);
            }

            Assert.Equal(model.Describe(), Describe(logic.View()));
            Assert.Equal(JsonSerializer.Serialize(model.Emitted.ToArray(), Options), JsonSerializer.Serialize(effects.Emitted.ToArray(), Options));
        }

        Assert.True(model.Emitted.Count > 5);
        Assert.True(logic.View().LateCount > 5);
        Assert.True(logic.View().Attributes.Count == 2);
        Assert.Equal(log.Count - 1, logic.AppliedPosition);
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
            v.ClockMs,
            LastLate = v.LastLate is { } l ? (l.TimestampMs, l.MinuteMs).ToString() : null,
        },
        Options);

    /// <summary>The sensor's behaviour written plainly: dictionaries per name, a list of readings.</summary>
    private sealed class Model(SensorGrainOptions options)
    {
        private readonly SensorView _v = new() { ClockMs = long.MinValue };

        /// <summary>For each reading so far: its event time capped at its receipt, and the greatest receipt time up to it.</summary>
        private readonly List<(long Time, long ReceivedUpTo)> _times = [];

        private long _receivedUpTo = long.MinValue;

        public List<GrainOutput> Emitted { get; } = [];

        /// <summary>
        /// The sensor's clock at receipt time <see cref="_receivedUpTo"/>: each reading's (capped) event time, run on by
        /// the receipt time that passed since, whichever is latest.
        /// </summary>
        private void RunClock(long receivedAtMs)
        {
            _receivedUpTo = Math.Max(_receivedUpTo, receivedAtMs);
            _v.ClockMs = _times.Max(r => r.Time + (_receivedUpTo - r.ReceivedUpTo));
        }

        public void Receive(Reading reading, long receivedAtMs)
        {
            _times.Add((Math.Min(reading.TimestampMs, receivedAtMs), Math.Max(_receivedUpTo, receivedAtMs)));
            RunClock(receivedAtMs);
            Close();   // changed: what is due by the reading's arrival closes first (the old grain closed only when woken)

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

            var late = minute <= _v.LastClosedMinuteMs || minute + Minute + options.AllowedLatenessMs <= _v.ClockMs;
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

        public void Advance(long receivedAtMs)
        {
            RunClock(receivedAtMs);
            Close();
        }

        /// <summary>Closes the minutes whose end plus the allowed lateness the clock reached, in minute order.</summary>
        private void Close()
        {
            var now = _v.ClockMs;
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

        public string Describe() => SensorLogicModelTests.Describe(_v);
    }
}
