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
