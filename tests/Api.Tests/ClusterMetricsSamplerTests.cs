using Api.Cluster;
using Grains.Abstractions;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Api.Tests;

/// <summary>The cluster load history: rates from the growth of the partition readers' counters, by silo, at given sample times.</summary>
public sealed class ClusterMetricsSamplerTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-06-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private readonly ClusterMetricsSampler _sampler = Sampler(TimeSpan.FromMinutes(15));

    private static ClusterMetricsSampler Sampler(TimeSpan history) => new(null!, TimeProvider.System,
        Options.Create(new ClusterMetricsOptions { SampleInterval = TimeSpan.FromSeconds(2), History = history }),
        NullLogger<ClusterMetricsSampler>.Instance);

    /// <summary>
    /// Partition <paramref name="partition"/>'s reader on <paramref name="silo"/>, started at <paramref name="startedAtSeconds"/>,
    /// having applied <paramref name="readings"/> when it read its counter at <paramref name="readAtSeconds"/> (when not given:
    /// at the time of the sample, see <see cref="SampleAt"/>).
    /// </summary>
    private static PartitionStatus Reader(int partition, string silo, double startedAtSeconds, long readings, double? readAtSeconds = null) =>
        new(partition, silo, T0.AddSeconds(startedAtSeconds), 0, 0, 0, readings, 0, null, readAtSeconds is { } at ? T0.AddSeconds(at) : default);

    /// <summary>
    /// A sample taken at <paramref name="seconds"/>; a reader with no time of its own is taken at the sample's time, as the
    /// sampler takes the answers of a silo whose version does not stamp them.
    /// </summary>
    private void SampleAt(double seconds, params PartitionStatus?[] partitions) => _sampler.Record(T0.AddSeconds(seconds), partitions);

    private static AlertEvent Opened(string id) => new()
    {
        Kind = AlertEventKind.Opened,
        Alert = new Alert
        {
            Id = id, RuleId = "r", RuleName = "r", RuleVersion = 1, SensorId = "s", Severity = Severity.Major, State = AlertState.Open,
            StartedAtMs = 0, OpenedAtMs = 0, Message = "",
        },
    };

    [Fact]
    public void FirstSample_IsABaselineOnly()
    {
        SampleAt(0, Reader(0, "a", -600, 1_000));

        var snapshot = _sampler.Snapshot();
        Assert.Equal((2.0, 900.0), (snapshot.SampleIntervalSeconds, snapshot.HistorySeconds));
        Assert.Empty(snapshot.Points);
        Assert.Empty(snapshot.Silos);
    }

    /// <summary>During a rolling upgrade a silo of the version before the readers stamped their answers has rates all the same.</summary>
    [Fact]
    public void AReaderThatDoesNotStampItsAnswer_IsTakenAtTheTimeOfTheSample()
    {
        _sampler.Record(T0.AddSeconds(1), [Reader(0, "old", -600, 1_000)]);
        _sampler.Record(T0.AddSeconds(3), [Reader(0, "old", -600, 1_400)]);

        var point = Assert.Single(_sampler.Snapshot().Points);
        Assert.Equal(200, point.ReadingsPerSecond);
        Assert.Equal(200, point.ReadingsPerSecondBySilo["old"]);
    }

    [Fact]
    public void Rates_AreCounterGrowth_OverTheSpanSinceTheLastAnswer_PerSiloAndInAll()
    {
        SampleAt(1, Reader(0, "a", -600, 1_000), Reader(1, "a", -600, 0), Reader(2, "b", -600, 50));
        _sampler.Observe(Opened("x"));
        _sampler.Observe(Opened("y"));
        _sampler.Observe(Opened("x"));   // the same alert again (a replay): counted once
        SampleAt(5, Reader(0, "a", -600, 1_300), Reader(1, "a", -600, 100), Reader(2, "b", -600, 250));

        var snapshot = _sampler.Snapshot();
        var point = Assert.Single(snapshot.Points);
        Assert.Equal(T0.AddSeconds(5), point.Time);
        Assert.Equal(new Dictionary<string, double> { ["a"] = 100, ["b"] = 50 }, point.ReadingsPerSecondBySilo);
        Assert.Equal(150, point.ReadingsPerSecond);
        Assert.Equal(2.0 / 4 * 60, point.AlertsPerMinute);
        Assert.Equal(["a", "b"], snapshot.Silos);
    }

    [Fact]
    public void Rates_SpanTheTimesEachReaderReadItsCounter_NotTheTimeOfTheSample()
    {
        // Every reader applies 100 readings/s all along. Partition 1's reader answers a second late at the second sample
        // (the sample waits for it); partition 2's restarts on b at 2 s and is read at 2.5 s, half a second before the sample.
        SampleAt(1, Reader(0, "a", -600, 1_000, 0), Reader(1, "a", -600, 5_000, 0), Reader(2, "b", -600, 7_000, 0));
        SampleAt(3, Reader(0, "a", -600, 1_200, 2), Reader(1, "a", -600, 5_300, 3), Reader(2, "b", 2, 50, 2.5));
        SampleAt(5, Reader(0, "a", -600, 1_400, 4), Reader(1, "a", -600, 5_400, 4), Reader(2, "b", 2, 200, 4));

        var points = _sampler.Snapshot().Points;
        Assert.Equal([3.0, 5], points.Select(p => (p.Time - T0).TotalSeconds));
        Assert.All(points, p =>
        {
            Assert.Equal(new Dictionary<string, double> { ["a"] = 200, ["b"] = 100 }, p.ReadingsPerSecondBySilo);
            Assert.Equal(300, p.ReadingsPerSecond);
        });
    }

    [Fact]
    public void AReaderThatDidNotAnswer_HasNoRate_AndItsNextRateSpansFromItsLastAnswer()
    {
        SampleAt(0, Reader(0, "a", -600, 100), Reader(1, "b", -600, 100));
        SampleAt(2, Reader(0, "a", -600, 300), null);   // b did not answer
        SampleAt(4, Reader(0, "a", -600, 300), Reader(1, "b", -600, 500));

        var points = _sampler.Snapshot().Points;
        Assert.Equal(2, points.Count);
        Assert.Equal(new Dictionary<string, double> { ["a"] = 100 }, points[0].ReadingsPerSecondBySilo);
        Assert.Equal(new Dictionary<string, double> { ["a"] = 0, ["b"] = 100 }, points[1].ReadingsPerSecondBySilo);
        Assert.Equal(0, points[1].AlertsPerMinute);
    }

    [Fact]
    public void AReaderThatMoved_CountsFromItsNewStart_AndOneUpLongerIsABaseline()
    {
        SampleAt(0, Reader(0, "a", -600, 5_000), Reader(1, "a", -600, 0));
        // Partition 0 restarted on b after a silo died (1 s after the sample), partition 1 is seen on c but was active
        // there before the last sample (it moved while this node did not look): a baseline only.
        SampleAt(4, Reader(0, "b", 1, 60), Reader(1, "c", -1, 9_999));

        var point = Assert.Single(_sampler.Snapshot().Points);
        Assert.Equal(new Dictionary<string, double> { ["b"] = 20 }, point.ReadingsPerSecondBySilo);
        Assert.Equal(20, point.ReadingsPerSecond);

        SampleAt(6, Reader(0, "b", 1, 60), Reader(1, "c", -1, 10_009));
        Assert.Equal(new Dictionary<string, double> { ["b"] = 0, ["c"] = 5 }, _sampler.Snapshot().Points[^1].ReadingsPerSecondBySilo);
    }

    [Fact]
    public void History_KeepsOnlyPointsYoungerThanItsLength()
    {
        var sampler = Sampler(TimeSpan.FromSeconds(10));
        for (var i = 0; i <= 10; i++)
        {
            sampler.Record(T0.AddSeconds(i * 2), [Reader(0, "a", -600, i * 10, i * 2)]);
        }

        var points = sampler.Snapshot().Points;
        Assert.Equal([12.0, 14, 16, 18, 20], points.Select(p => (p.Time - T0).TotalSeconds));
        Assert.All(points, p => Assert.Equal(5, p.ReadingsPerSecond));
    }

    [Theory]
    [InlineData("00:00:00.050", "00:15:00", 1)]
    [InlineData("00:02:00", "00:15:00", 1)]
    [InlineData("00:00:02", "00:00:01", 1)]
    [InlineData("00:00:02", "1.00:00:01", 1)]
    [InlineData("00:00:02", "00:15:00", 0)]
    public void Options_AreValidated(string interval, string history, int errors)
    {
        var options = new ClusterMetricsOptions
        {
            SampleInterval = TimeSpan.Parse(interval, System.Globalization.CultureInfo.InvariantCulture),
            History = TimeSpan.Parse(history, System.Globalization.CultureInfo.InvariantCulture),
        };
        Assert.Equal(errors, options.Validate().Count);
    }
}
