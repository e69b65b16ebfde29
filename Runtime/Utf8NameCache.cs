using System.Text;
using System.Text.Unicode;

namespace Runtime;

/// <summary>
/// A small direct-mapped cache of strings keyed by their UTF-8 bytes, so that field names repeated across
/// readings ("temperature", "humidity", ...) are decoded and allocated once. Bounded: a slot holds one entry
/// and a colliding name replaces it. Not thread-safe. Used by the Api's telemetry parser and by the decoding of log entries.
/// </summary>
public sealed class Utf8NameCache
{
    private readonly byte[]?[] _keys;
    private readonly string?[] _values;
    private readonly int _mask;
    private readonly int _maxKeyBytes;

    /// <param name="slots">Number of slots; rounded up to a power of two.</param>
    /// <param name="maxKeyBytes">Longer keys are decoded but not cached.</param>
    public Utf8NameCache(int slots, int maxKeyBytes)
    {
        int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(slots, 1));
        _keys = new byte[size][];
        _values = new string[size];
        _mask = size - 1;
        _maxKeyBytes = maxKeyBytes;
    }

    /// <summary>The decoded string for <paramref name="utf8"/>, or null when it is not valid UTF-8.</summary>
    public string? Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > _maxKeyBytes)
        {
            return Decode(utf8);
        }

        int slot = Hash(utf8) & _mask;
        byte[]? key = _keys[slot];
        if (key is not null && utf8.SequenceEqual(key))
        {
            return _values[slot];
        }

        string? value = Decode(utf8);
        if (value is not null)
        {
            _keys[slot] = utf8.ToArray();
            _values[slot] = value;
        }

        return value;
    }

    private static string? Decode(ReadOnlySpan<byte> utf8) => Utf8.IsValid(utf8) ? Encoding.UTF8.GetString(utf8) : null;

    private static int Hash(ReadOnlySpan<byte> utf8)
    {
        // FNV-1a: names are short, and a collision only costs a re-decode.
        uint hash = 2166136261;
        foreach (byte b in utf8)
        {
            hash = (hash ^ b) * 16777619;
        }

        return (int)(hash ^ (hash >> 15));
    }
}
