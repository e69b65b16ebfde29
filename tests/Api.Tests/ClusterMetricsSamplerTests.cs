using Api.Cluster;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Runtime;
using Runtime.InMemory;

namespace Api.Tests;

/// <summary>Issue 5 item 6: the cluster load history, rates from the growth of the silos' heartbeat counters, on a manual clock.</summary>
public sealed class ClusterMetricsSamplerTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-06-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly Dictionary<string, int> NoActivations = [];

    private readonly ManualClock _clock = new(T0);
    private readonly InMemoryStore _store;
    private readonly ClusterMetricsSampler _sampler;

    public ClusterMetricsSamplerTests()
    {
        _store = new InMemoryStore(_clock);
        _sampler = Sampler(new ClusterMetricsOptions { SampleInterval = TimeSpan.FromSeconds(2), History = TimeSpan.FromMinutes(15) });
    }

    private ClusterMetricsSampler Sampler(ClusterMetricsOptions options) =>
        new(_store, _clock, Options.Create(options), NullLogger<ClusterMetricsSampler>.Instance);

    private Task Beat(string silo, DateTimeOffset startedAt, double atSeconds, long readings, long alerts) =>
        _store.HeartbeatAsync(new SiloInfo(silo, "", startedAt, T0.AddSeconds(atSeconds), NoActivations, readings, alerts), None);

    private async Task SampleAt(double seconds)
    {
        _clock.Now = T0.AddSeconds(seconds);
        await _sampler.SampleAsync(None);
    }

    [Fact]
    public async Task FirstSample_IsABaselineOnly()
    {
        await Beat("a", T0.AddMinutes(-10), 0, 1_000, 2);
        await SampleAt(0);

        var snapshot = _sampler.Snapshot();
        Assert.Equal((2.0, 900.0), (snapshot.SampleIntervalSeconds, snapshot.HistorySeconds));
        Assert.Empty(snapshot.Points);
        Assert.Empty(snapshot.Silos);
    }

    [Fact]
    public async Task Rates_AreCounterGrowth_OverTheHeartbeatSpan_PerSiloAndInAll()
    {
        var started = T0.AddMinutes(-10);
        await Beat("a", started, 0, 1_000, 2);
        await Beat("b", started, 0.5, 0, 0);
        await SampleAt(1);
        await Beat("a", started, 2, 1_300, 3);      // +300 readings, +1 alert in 2 s
        await Beat("b", started, 4.5, 200, 2);      // +200 readings, +2 alerts in 4 s
        await SampleAt(5);

        var snapshot = _sampler.Snapshot();
        var point = Assert.Single(snapshot.Points);
        Assert.Equal(T0.AddSeconds(5), point.Time);
        Assert.Equal(new Dictionary<string, double> { ["a"] = 150, ["b"] = 50 }, point.ReadingsPerSecondBySilo);
        Assert.Equal(200, point.ReadingsPerSecond);
        Assert.Equal(1.0 / 2 * 60 + 2.0 / 4 * 60, point.AlertsPerMinute);
        Assert.Equal(["a", "b"], snapshot.Silos);
    }

    [Fact]
    public async Task ASiloWithoutANewHeartbeat_HasNoRate_AndKeepsItsBaseline()
    {
        var started = T0.AddMinutes(-10);
        await Beat("a", started, 0, 100, 0);
        await Beat("b", started, 0, 100, 0);
        await SampleAt(0);
        await Beat("a", started, 2, 300, 0);
        await SampleAt(2);                           // b did not beat: no rate for b
        await Beat("b", started, 4, 500, 0);        // b: +400 since its beat at 0 s, over 4 s
        await SampleAt(4);                           // a did not beat this time

        var points = _sampler.Snapshot().Points;
        Assert.Equal(2, points.Count);
        Assert.Equal(new Dictionary<string, double> { ["a"] = 100 }, points[0].ReadingsPerSecondBySilo);
        Assert.Equal(100, points[0].ReadingsPerSecond);
        Assert.Equal(new Dictionary<string, double> { ["b"] = 100 }, points[1].ReadingsPerSecondBySilo);
        Assert.Equal(100, points[1].ReadingsPerSecond);
        Assert.Equal(0, points[1].AlertsPerMinute);
    }

    [Fact]
    public async Task ARestartedSilo_CountsFromItsNewStart_AndANewSiloFromItsStart()
    {
        await Beat("a", T0.AddMinutes(-10), 0, 5_000, 9);
        await SampleAt(0);
        await Beat("a", T0.AddSeconds(1), 3, 60, 1);        // same id, new process: 60 readings, 1 alert in its 2 s
        await Beat("c", T0.AddSeconds(0.5), 2.5, 30, 0);    // joined after the last sample: 30 readings in 2 s
        await Beat("old", T0.AddMinutes(-30), 3, 9_999, 0); // first seen now but up long before: a baseline only
        await SampleAt(4);

        var point = Assert.Single(_sampler.Snapshot().Points);
        Assert.Equal(new Dictionary<string, double> { ["a"] = 30, ["c"] = 15 }, point.ReadingsPerSecondBySilo);
        Assert.Equal(45, point.ReadingsPerSecond);
        Assert.Equal(30, point.AlertsPerMinute);

        await Beat("old", T0.AddMinutes(-30), 5, 10_009, 0);
        await SampleAt(6);
        Assert.Equal(5, _sampler.Snapshot().Points[^1].ReadingsPerSecondBySilo["old"]);
    }

    [Fact]
    public async Task ASiloThatLeft_IsForgotten_AndCountsFromItsStartWhenItComesBack()
    {
        var started = T0.AddMinutes(-10);
        await Beat("a", started, 0, 100, 0);
        await SampleAt(0);
        await _store.LeaveAsync("a", None);
        await SampleAt(2);
        await Beat("a", T0.AddSeconds(3), 4, 20, 0);
        await SampleAt(4);

        var points = _sampler.Snapshot().Points;
        Assert.Equal(2, points.Count);
        Assert.Empty(points[0].ReadingsPerSecondBySilo);
        Assert.Equal(0, points[0].ReadingsPerSecond);
        Assert.Equal(20, points[1].ReadingsPerSecondBySilo["a"]);
    }

    [Fact]
    public async Task History_KeepsOnlyPointsYoungerThanItsLength()
    {
        var sampler = Sampler(new ClusterMetricsOptions { SampleInterval = TimeSpan.FromSeconds(2), History = TimeSpan.FromSeconds(10) });
        var started = T0.AddMinutes(-10);
        for (var i = 0; i <= 10; i++)
        {
            await Beat("a", started, i * 2, i * 10, 0);
            _clock.Now = T0.AddSeconds(i * 2);
            await sampler.SampleAsync(None);
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

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
