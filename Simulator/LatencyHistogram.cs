namespace Simulator;

/// <summary>
/// A thread-safe latency histogram in microseconds with fixed log-linear buckets, in the manner of HdrHistogram:
/// values below 2048 µs have a bucket each (exact); above, each power of two is split into 1024 buckets, so a
/// value is known to 1/1024 of itself (percentiles report a bucket's highest value, never less than the true
/// value, and never more than the maximum). The maximum is kept exactly.
/// Values above 2^40 µs (about 12 days) are counted as 2^40.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBucketBits = 11;
    private const int SubBucketCount = 1 << SubBucketBits;  // 2048
    private const int HalfCount = SubBucketCount / 2;        // 1024
    private const int MaxBits = 40;
    private const long MaxValue = 1L << MaxBits;

    private readonly long[] _counts = new long[SubBucketCount + (MaxBits - SubBucketBits + 1) * HalfCount];
    private long _count;
    private long _max;

    public long Count => Interlocked.Read(ref _count);

    public long Max => Interlocked.Read(ref _max);

    public void Record(long micros)
    {
        var value = Math.Clamp(micros, 0, MaxValue);
        Interlocked.Increment(ref _counts[IndexOf(value)]);
        Interlocked.Increment(ref _count);
        var max = Interlocked.Read(ref _max);
        while (value > max)
        {
            var seen = Interlocked.CompareExchange(ref _max, value, max);
            if (seen == max)
            {
                break;
            }
            max = seen;
        }
    }

    /// <summary>
    /// The nearest-rank percentile: the lowest recorded value v such that at least p % of the recorded values are
    /// at most v (exact below 2048 µs, else the highest value of v's bucket, at most the maximum); 0 when empty.
    /// </summary>
    public long Percentile(double percentile)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(percentile);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percentile, 100);
        long total = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            total += Volatile.Read(ref _counts[i]);
        }
        if (total == 0)
        {
            return 0;
        }
        var rank = Math.Max(1, (long)Math.Ceiling(percentile / 100 * total));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += Volatile.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return Math.Min(HighestValueAt(i), Max);
            }
        }
        return Max;
    }

    internal static int IndexOf(long value)
    {
        if (value < SubBucketCount)
        {
            return (int)value;
        }
        var magnitude = 63 - (int)long.LeadingZeroCount(value) - (SubBucketBits - 1); // >= 1
        var sub = (int)(value >> magnitude);                                     // in [1024, 2048)
        return SubBucketCount + (magnitude - 1) * HalfCount + (sub - HalfCount);
    }

    internal static long LowestValueAt(int index)
    {
        if (index < SubBucketCount)
        {
            return index;
        }
        var magnitude = (index - SubBucketCount) / HalfCount + 1;
        var sub = (index - SubBucketCount) % HalfCount + HalfCount;
        return (long)sub << magnitude;
    }

    internal static long HighestValueAt(int index) =>
        index < SubBucketCount ? index : LowestValueAt(index + 1) - 1;
}
