using System.Text;

namespace Grains.Abstractions;

/// <summary>Maps a grain key to its partition with a fixed hash (FNV-1a 32 over UTF-8), identical on every node and run.</summary>
public static class Partitioner
{
    public static int PartitionOf(string key, int partitions)
    {
        uint hash = 2166136261;
        Span<byte> buffer = stackalloc byte[256];
        var bytes = Encoding.UTF8.GetMaxByteCount(key.Length) <= buffer.Length
            ? buffer[..Encoding.UTF8.GetBytes(key, buffer)]
            : Encoding.UTF8.GetBytes(key);
        foreach (var b in bytes)
        {
            hash ^= b;
            hash *= 16777619;
        }
        return (int)(hash % (uint)partitions);
    }
}

/// <summary>
/// A reading's place in its partition's log as one increasing number: the record's offset and the reading's index within
/// the record (a record holds up to 2^20 readings). A sensor grain remembers the greatest position it applied and skips
/// the positions at or below it, so a replayed log counts every reading once.
/// </summary>
public static class LogPosition
{
    public const int IndexBits = 20;

    public const int MaxReadingsPerRecord = 1 << IndexBits;

    public static long Of(long offset, int index) => (offset << IndexBits) | (uint)index;

    /// <summary>The log offset of the record holding <paramref name="position"/>.</summary>
    public static long OffsetOf(long position) => position >> IndexBits;
}
