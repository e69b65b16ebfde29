using Grains.Abstractions;
using Runtime;
using Xunit;

namespace Tests.Shared;

/// <summary>
/// A known input for the exactness tests (silos in one process, and silo processes on Redis, RabbitMQ and PostgreSQL): N sensors sending one reading a
/// second of temperature and humidity, with values exactly representable so that sums are exact in any grouping,
/// and a raw "temperature &gt; 30" rule; and the checks that every minute aggregate and every alert is exactly
/// what that input must give, whatever was killed or replayed on the way.
/// </summary>
public sealed class KnownInput(string sensorPrefix, int sensors, int seconds)
{
    public static readonly long T0 = DateTimeOffset.Parse("2026-01-05T10:00:00Z").ToUnixTimeMilliseconds();

    public static readonly RuleDefinition HotRule = new()
    {
        Id = "hot",
        Name = "Hot",
        Enabled = true,
        Severity = Severity.Major,
        Version = 1,
        Target = new RuleTarget { Kind = TargetKind.All },
        Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "temperature", Source = ConditionSource.Raw, Operator = ComparisonOperator.Greater, Value = 30 },
    };

    public int Sensors => sensors;

    public int Seconds => seconds;

    public string SensorId(int s) => $"{sensorPrefix}-{s:000}";

    public static double Temperature(int s, int k) => 20 + (k * 7 + s * 3) % 15 + (k % 2) * 0.5;

    public static double Humidity(int s, int k) => 40 + (k + s) % 20;

    /// <summary>The readings of second <paramref name="k"/>, one per sensor.</summary>
    public Reading[] Second(int k) => Enumerable.Range(0, sensors).Select(s => new Reading
    {
        SensorId = SensorId(s),
        TimestampMs = T0 + k * 1000L,
        Metrics = [new MetricValue("temperature", Temperature(s, k)), new MetricValue("humidity", Humidity(s, k))],
    }).ToArray();

    /// <summary>Posts seconds [from, to) through an Api node's inbox writer, in order.</summary>
    public async Task PostAsync(InboxWriter inbox, int from, int to)
    {
        for (var k = from; k < to; k++)
        {
            await inbox.AppendTelemetryAsync(Second(k), null, CancellationToken.None);
            if (k % 10 == 0)
            {
                await Task.Yield();
            }
        }
    }

    /// <summary>Every minute of every sensor is stored once, with exactly the statistics of its 60 readings.</summary>
    public async Task AssertExactAggregatesAsync(IReadStore store)
    {
        for (var s = 0; s < sensors; s++)
        {
            var stored = await store.GetAggregatesAsync(SensorId(s), T0, T0 + 3_600_000, null, CancellationToken.None);
            Assert.Equal(Enumerable.Range(0, seconds / 60).Select(m => T0 + m * 60_000L), stored.Select(a => a.MinuteMs));
            for (var minute = 0; minute < seconds / 60; minute++)
            {
                var ks = Enumerable.Range(minute * 60, 60).ToArray();
                var aggregate = stored[minute];
                Assert.Equal(["humidity", "temperature"], aggregate.Metrics.Select(m => m.Metric));
                if (aggregate.Metrics[1].Count != ks.Length)
                {
                    // Which readings the minute holds (first and last by value) and whether the others were counted late.
                    var summary = await store.GetSensorAsync(SensorId(s), CancellationToken.None);
                    var first = Array.FindIndex(ks, k => Temperature(s, k) == aggregate.Metrics[1].First && Humidity(s, k) == aggregate.Metrics[0].First);
                    var last = Array.FindLastIndex(ks, k => Temperature(s, k) == aggregate.Metrics[1].Last && Humidity(s, k) == aggregate.Metrics[0].Last);
                    Assert.Fail($"{SensorId(s)} minute {minute}: {aggregate.Metrics[1].Count} of {ks.Length} readings, first at second "
                        + $"{(first < 0 ? "?" : (minute * 60 + first).ToString(System.Globalization.CultureInfo.InvariantCulture))}, last at second "
                        + $"{(last < 0 ? "?" : (minute * 60 + last).ToString(System.Globalization.CultureInfo.InvariantCulture))}; the sensor's late count {summary?.LateCount}");
                }
                AssertMetric(ks.Select(k => Humidity(s, k)).ToArray(), aggregate.Metrics[0]);
                AssertMetric(ks.Select(k => Temperature(s, k)).ToArray(), aggregate.Metrics[1]);
            }
        }

        static void AssertMetric(double[] values, MetricAggregate actual)
        {
            Assert.Equal(values.Length, actual.Count);
            Assert.Equal(values.Min(), actual.Min);
            Assert.Equal(values.Max(), actual.Max);
            Assert.Equal(values.Sum(), actual.Sum);
            Assert.Equal(values.Sum() / values.Length, actual.Avg);
            Assert.Equal(values[0], actual.First);
            Assert.Equal(values[^1], actual.Last);
        }
    }

    /// <summary>
    /// Each time the raw condition starts holding for a sensor is one alert, with its deterministic id, resolved when
    /// the condition stopped holding (open only if it still holds at the end); every "opened" event published,
    /// replays included, belongs to one of them.
    /// </summary>
    public async Task AssertAlertsOpenedOnceAsync(IReadStore store, IReadOnlyList<GrainOutput> published)
    {
        var alerts = await store.QueryAlertsAsync(new AlertQuery(null, HotRule.Id, null, null, null, 100_000), CancellationToken.None);
        var opened = published.OfType<AlertEvent>().Where(e => e.Kind == AlertEventKind.Opened).ToList();
        var expectedTotal = 0;
        for (var s = 0; s < sensors; s++)
        {
            var expectedStarts = new List<long>();
            var holding = false;
            for (var k = 0; k < seconds; k++)
            {
                var now = Temperature(s, k) > 30;
                if (now && !holding)
                {
                    expectedStarts.Add(T0 + k * 1000L);
                }
                holding = now;
            }
            expectedTotal += expectedStarts.Count;
            var mine = alerts.Where(a => a.SensorId == SensorId(s)).OrderBy(a => a.StartedAtMs).ToList();
            Assert.Equal(expectedStarts, mine.Select(a => a.StartedAtMs));
            Assert.Equal(mine.Select(a => AlertIds.For(HotRule.Id, 1, SensorId(s), a.StartedAtMs)), mine.Select(a => a.Id));
            Assert.Equal(mine.Select((_, i) => i == mine.Count - 1 && holding ? AlertState.Open : AlertState.Resolved), mine.Select(a => a.State));
            var openedIds = opened.Where(e => e.Alert.SensorId == SensorId(s)).Select(e => e.Alert.Id).Distinct().Order().ToList();
            Assert.Equal(mine.Select(a => a.Id).Order().ToList(), openedIds);
        }
        Assert.Equal(expectedTotal, alerts.Count);
        Assert.True(expectedTotal > sensors, "the input must open several alerts per sensor");
    }
}
