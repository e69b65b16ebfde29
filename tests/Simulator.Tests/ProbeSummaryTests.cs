namespace Simulator.Tests;

/// <summary>The alert probe's figures from its samples.</summary>
public sealed class ProbeSummaryTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-12-01T06:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void A_sample_without_an_alert_counts_in_the_percentiles_as_the_wait_and_among_the_slowest()
    {
        // 98 samples of 1.5 ms (below 2,048 µs the histogram is exact) and two that never saw their alert: left out, the
        // p99 would be 1.5 ms.
        var measured = Enumerable.Range(0, 98).Select(i => new ProbeSample(T0.AddSeconds(i), 1.5))
            .Append(new ProbeSample(T0.AddSeconds(98), null)).Append(new ProbeSample(T0.AddSeconds(99), null)).ToList();

        var summary = ProbeSummary.Of(measured, otherTimeouts: 1);

        Assert.Equal(100, summary.Samples);
        Assert.Equal(3, summary.Timeouts); // the two measured and the first sample's
        Assert.Equal(1.5, summary.LatencyMs.P50);
        Assert.Equal(10_000.0, summary.LatencyMs.P99);
        Assert.Equal(10_000.0, summary.LatencyMs.Max);

        measured[98] = measured[98] with { LatencyMs = 1.76 };
        summary = ProbeSummary.Of(measured, otherTimeouts: 0);
        Assert.Equal(1.76, summary.LatencyMs.P99);
        Assert.Equal(1, summary.Timeouts);

        // The ten slowest, in the order sent, rounded to 0.1 ms; the timeout among them.
        Assert.Equal(ProbeSummary.SlowestKept, summary.Slowest.Length);
        Assert.Equal(summary.Slowest.OrderBy(s => s.SentAt), summary.Slowest);
        Assert.Equal(new ProbeSample(T0.AddSeconds(99), null), summary.Slowest[^1]);
        Assert.Equal(new ProbeSample(T0.AddSeconds(98), 1.8), summary.Slowest[^2]);
    }
}
