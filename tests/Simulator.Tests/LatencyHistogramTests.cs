namespace Simulator.Tests;

public sealed class LatencyHistogramTests
{
    [Fact]
    public void Percentiles_are_exact_nearest_ranks_below_2048_us()
    {
        var histogram = new LatencyHistogram();
        foreach (var v in Enumerable.Range(1, 1000).Reverse())
        {
            histogram.Record(v);
        }

        Assert.Equal(1000, histogram.Count);
        Assert.Equal(500, histogram.Percentile(50));
        Assert.Equal(990, histogram.Percentile(99));
        Assert.Equal(1000, histogram.Percentile(100));
        Assert.Equal(1, histogram.Percentile(0));
        Assert.Equal(1000, histogram.Max);
    }

    [Fact]
    public void Large_values_fall_in_buckets_of_a_1024th_of_their_size()
    {
        var histogram = new LatencyHistogram();
        long[] values = [3, 3, 3, 4096, 5000, 250_000, 1_000_000, 1_000_000, 2_000_000, 60_000_000];
        foreach (var v in values)
        {
            histogram.Record(v);
        }

        Assert.Equal(3, histogram.Percentile(30));
        Assert.Equal(4099, histogram.Percentile(40));            // 4,096 is in the bucket [4,096, 4,099]
        Assert.Equal(5003, histogram.Percentile(50));            // 5,000 in [5,000, 5,003]
        Assert.Equal(250_111, histogram.Percentile(60));        // 250,000 is in the bucket [249,984, 250,111]
        Assert.Equal(1_000_447, histogram.Percentile(80));      // 1,000,000 in [999,936, 1,000,447]
        Assert.Equal(2_000_895, histogram.Percentile(90));      // 2,000,000 in [1,999,872, 2,000,895]
        Assert.Equal(60_000_000, histogram.Percentile(99));     // in [59,998,208, 60,030,975], capped by the exact maximum
        Assert.Equal(60_000_000, histogram.Max);
    }

    [Fact]
    public void Bucket_bounds_round_trip()
    {
        for (long v = 0; v < 1L << 36; v = v * 3 / 2 + 1)
        {
            var index = LatencyHistogram.IndexOf(v);
            var low = LatencyHistogram.LowestValueAt(index);
            var high = LatencyHistogram.HighestValueAt(index);
            Assert.InRange(v, low, high);
            Assert.True(high - low <= Math.Max(0, v / 1024), $"{v}: [{low}, {high}]");
        }
    }

    [Fact]
    public void An_empty_histogram_reports_zero()
    {
        Assert.Equal(0, new LatencyHistogram().Percentile(99));
    }

    [Fact]
    public async Task Concurrent_recording_counts_every_value()
    {
        var histogram = new LatencyHistogram();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            for (var v = 1; v <= 10_000; v++)
            {
                histogram.Record(v % 100);
            }
        })));

        Assert.Equal(80_000, histogram.Count);
        Assert.Equal(49, histogram.Percentile(50));
        Assert.Equal(99, histogram.Max);
    }
}
