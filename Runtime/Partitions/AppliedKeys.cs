using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Runtime.Partitions;

/// <summary>
/// The idempotency keys of the telemetry a partition applied, with the receipt time each was applied at. A partition
/// receives a key with every keyed request that has readings for it, so it holds one per request for the whole
/// <see cref="SiloOptions.IdempotencyWindow"/>: hundreds of thousands under a sustained load. They are kept compact and
/// cheap to snapshot:
/// <list type="bullet">
/// <item>a key is its SHA-256 cut to 128 bits with the time (24 bytes, no object per key; collisions are out of reach even
/// for a caller choosing keys and bodies);</item>
/// <item>keys are stored in segments in the order they were applied, one segment per snapshot: a snapshot shares the
/// segments taken before (immutable) and adds the keys applied since the previous one, so a checkpoint copies what arrived
/// since the last, not the window; a segment whose newest key left the window is dropped whole.</item>
/// </list>
/// Pure: the reader passes the receipt times.
/// </summary>
public sealed class AppliedKeys
{
    /// <summary>A key in a segment: its hash (16 bytes), then the receipt time it was applied at (8 bytes), little-endian.</summary>
    public const int EntryBytes = 24;

    private readonly Dictionary<UInt128, long> _index = [];
    private readonly List<byte[]> _segments = [];
    private byte[] _open = new byte[64 * EntryBytes];
    private int _openBytes;

    /// <param name="segments">Segments of a stored state, oldest first.</param>
    /// <param name="legacy">Keys of a state stored as a dictionary of whole keys (before segments): taken as one segment.</param>
    public AppliedKeys(IReadOnlyList<byte[]>? segments = null, IReadOnlyDictionary<string, long>? legacy = null)
    {
        if (legacy is { Count: > 0 })
        {
            foreach (var (key, at) in legacy.OrderBy(k => k.Value))
            {
                var hash = Hash(key);
                _index[hash] = at;
                Add(hash, at);
            }

            Close();
        }

        foreach (var segment in segments ?? [])
        {
            if (segment.Length % EntryBytes != 0)
            {
                throw new ArgumentException($"A segment of applied keys holds a multiple of {EntryBytes} bytes, not {segment.Length}.", nameof(segments));
            }

            for (var offset = 0; offset < segment.Length; offset += EntryBytes)
            {
                var (hash, at) = Read(segment, offset);
                _index[hash] = at;
            }

            _segments.Add(segment);
        }
    }

    /// <summary>Keys known (within the window, and up to a segment older).</summary>
    public int Count => _index.Count;

    /// <summary>
    /// Records <paramref name="key"/> as applied at <paramref name="atMs"/>; false (nothing recorded) when it was applied
    /// within <paramref name="windowMs"/> before.
    /// </summary>
    public bool TryApply(string key, long atMs, long windowMs)
    {
        ArgumentNullException.ThrowIfNull(key);
        var hash = Hash(key);
        if (_index.TryGetValue(hash, out var at) && atMs - at <= windowMs)
        {
            return false;
        }

        _index[hash] = atMs;
        Add(hash, atMs);
        return true;
    }

    /// <summary>
    /// The segments as of now, oldest first, to store: the keys applied since the last snapshot become a segment of their
    /// own; segments whose newest key is older than <paramref name="forgetBeforeMs"/> are dropped (here too).
    /// </summary>
    public byte[][] Snapshot(long forgetBeforeMs)
    {
        Close();
        var drop = 0;
        while (drop < _segments.Count && NewestAt(_segments[drop]) < forgetBeforeMs)
        {
            var segment = _segments[drop++];
            for (var offset = 0; offset < segment.Length; offset += EntryBytes)
            {
                var (hash, at) = Read(segment, offset);
                if (_index.TryGetValue(hash, out var indexed) && indexed == at)
                {
                    _index.Remove(hash); // not when applied again later: a newer segment holds it
                }
            }
        }

        _segments.RemoveRange(0, drop);
        return [.. _segments];
    }

    private void Add(UInt128 hash, long atMs)
    {
        if (_openBytes == _open.Length)
        {
            Array.Resize(ref _open, _open.Length * 2);
        }

        BinaryPrimitives.WriteUInt128LittleEndian(_open.AsSpan(_openBytes), hash);
        BinaryPrimitives.WriteInt64LittleEndian(_open.AsSpan(_openBytes + 16), atMs);
        _openBytes += EntryBytes;
    }

    private void Close()
    {
        if (_openBytes > 0)
        {
            _segments.Add(_open.AsSpan(0, _openBytes).ToArray());
            _openBytes = 0;
        }
    }

    private static long NewestAt(byte[] segment) => segment.Length == 0 ? long.MinValue : Read(segment, segment.Length - EntryBytes).AtMs;

    private static (UInt128 Hash, long AtMs) Read(byte[] segment, int offset) =>
        (BinaryPrimitives.ReadUInt128LittleEndian(segment.AsSpan(offset)), BinaryPrimitives.ReadInt64LittleEndian(segment.AsSpan(offset + 16)));

    private static UInt128 Hash(string key)
    {
        var length = Encoding.UTF8.GetMaxByteCount(key.Length);
        byte[]? rented = null;
        var bytes = length <= 512 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            var written = Encoding.UTF8.GetBytes(key, bytes);
            Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(bytes[..written], digest);
            return BinaryPrimitives.ReadUInt128LittleEndian(digest);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }
}
