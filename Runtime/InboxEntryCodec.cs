using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Grains.Abstractions;

namespace Runtime;

/// <summary>
/// An inbox entry as the log keeps it: one message of a RabbitMQ stream, one array in the in-memory log (a byte array
/// holds no references: the collector neither traces nor promotes thousands of reading objects per entry while the
/// entry waits for its partition's commit).
/// <para>
/// Telemetry entries, nearly all of a log, are binary (<see cref="TelemetryFormat"/>): encoded and decoded about seven
/// times faster than as JSON, in a quarter of the bytes (the log codec figure of BENCHMARKS.md). The other entries are rare and stay
/// UTF-8 JSON (<see cref="RabbitMq.RabbitMqJsonContext"/>), which always starts with <c>{</c>; telemetry entries written
/// as JSON by earlier versions still decode.
/// </para>
/// </summary>
public static class InboxEntryCodec
{
    /// <summary>
    /// The first byte of a binary telemetry entry. Then: received-at (zigzag varint, epoch ms), the idempotency key
    /// (a string: varint byte count + 1, 0 for none, then UTF-8), the number of readings (varint), and per reading: sensor id,
    /// timestamp minus received-at (zigzag varint), the metrics (varint count; per metric a name and 8 bytes of IEEE double,
    /// little-endian), the attributes (varint count + 1, 0 for none; name and value each), the metadata (0 for none, else 1
    /// and model, location, owner, version, then the extra fields as varint count + 1 and name/value pairs). Sensor ids,
    /// names and metadata values are table strings: 0 for none, 1 for a new string (varint byte count, UTF-8) that joins
    /// the entry's table, k ≥ 2 for the table's string k - 2; a fleet's metric names are written once per entry.
    /// </summary>
    public const byte TelemetryFormat = 1;

    /// <summary>
    /// The first byte of a group of telemetry entries that an Api node appended to one partition together (the requests
    /// that arrived while the partition's previous publish waited for its confirm): the number of entries (varint), then
    /// per entry its length (varint) and its bytes in <see cref="TelemetryFormat"/>. Decodes to a <see cref="TelemetryGroupEntry"/>.
    /// </summary>
    public const byte TelemetryGroupFormat = 2;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    [ThreadStatic]
    private static Dictionary<string, int>? t_encodeTable;

    [ThreadStatic]
    private static List<string>? t_decodeTable;

    public static byte[] Encode(InboxEntry entry) => entry switch
    {
        TelemetryEntry telemetry => EncodeTelemetry(telemetry),
        TelemetryGroupEntry group => EncodeGroup(group.Entries.Select(EncodeTelemetry).ToArray()),
        _ => JsonSerializer.SerializeToUtf8Bytes(entry, RabbitMq.RabbitMqJsonContext.Default.InboxEntry),
    };

    /// <summary>One record of several telemetry entries, each already encoded by <see cref="Encode"/>, in their order.</summary>
    public static byte[] EncodeGroup(IReadOnlyList<byte[]> telemetryEntries)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(telemetryEntries.Count, 1);
        var writer = new Writer(16 + telemetryEntries.Sum(e => e.Length + 5));
        try
        {
            writer.Byte(TelemetryGroupFormat);
            writer.VarUInt((ulong)telemetryEntries.Count);
            foreach (var entry in telemetryEntries)
            {
                if (entry.Length == 0 || entry[0] != TelemetryFormat)
                {
                    throw new ArgumentException("A group holds binary telemetry entries only.", nameof(telemetryEntries));
                }

                writer.VarUInt((ulong)entry.Length);
                writer.Bytes(entry);
            }

            return writer.ToArray();
        }
        finally
        {
            writer.Return();
        }
    }

    /// <exception cref="InvalidDataException">The bytes are not an inbox entry.</exception>
    public static InboxEntry Decode(ReadOnlySpan<byte> bytes)
    {
        if (!bytes.IsEmpty && bytes[0] == TelemetryFormat)
        {
            return DecodeTelemetry(bytes);
        }

        if (!bytes.IsEmpty && bytes[0] == TelemetryGroupFormat)
        {
            return DecodeGroup(bytes);
        }

        try
        {
            return JsonSerializer.Deserialize(bytes, RabbitMq.RabbitMqJsonContext.Default.InboxEntry)
                   ?? throw new InvalidDataException("The entry is JSON null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }

    private static byte[] EncodeTelemetry(TelemetryEntry entry)
    {
        var table = t_encodeTable ??= new Dictionary<string, int>(StringComparer.Ordinal);
        table.Clear();
        var writer = new Writer(64 + entry.Readings.Length * 48);
        try
        {
            writer.Byte(TelemetryFormat);
            writer.ZigZag(entry.ReceivedAtMs);
            writer.PlainString(entry.IdempotencyKey);
            writer.VarUInt((ulong)entry.Readings.Length);
            foreach (var reading in entry.Readings)
            {
                writer.TableString(reading.SensorId, table);
                writer.ZigZag(reading.TimestampMs - entry.ReceivedAtMs);
                writer.VarUInt((ulong)reading.Metrics.Length);
                foreach (var metric in reading.Metrics)
                {
                    writer.TableString(metric.Name, table);
                    writer.Double(metric.Value);
                }

                if (reading.Attributes is null)
                {
                    writer.VarUInt(0);
                }
                else
                {
                    writer.VarUInt((ulong)reading.Attributes.Length + 1);
                    foreach (var attribute in reading.Attributes)
                    {
                        writer.TableString(attribute.Name, table);
                        writer.TableString(attribute.Value, table);
                    }
                }

                if (reading.Metadata is not { } metadata)
                {
                    writer.Byte(0);
                    continue;
                }

                writer.Byte(1);
                writer.TableString(metadata.Model, table);
                writer.TableString(metadata.Location, table);
                writer.TableString(metadata.Owner, table);
                writer.TableString(metadata.Version, table);
                if (metadata.Extra is null)
                {
                    writer.VarUInt(0);
                }
                else
                {
                    writer.VarUInt((ulong)metadata.Extra.Count + 1);
                    foreach (var (name, value) in metadata.Extra)
                    {
                        writer.TableString(name, table);
                        writer.TableString(value, table);
                    }
                }
            }

            return writer.ToArray();
        }
        finally
        {
            writer.Return();
            if (table.Count > 4096)
            {
                t_encodeTable = null; // an unusual entry does not pin a large table to the thread
            }
        }
    }

    private static TelemetryEntry DecodeTelemetry(ReadOnlySpan<byte> bytes)
    {
        var table = t_decodeTable ??= [];
        table.Clear();
        try
        {
            var reader = new Reader(bytes) { Position = 1 };
            var receivedAtMs = reader.ZigZag();
            var key = reader.PlainString();
            var readings = new Reading[reader.Count()];
            for (var i = 0; i < readings.Length; i++)
            {
                var sensorId = reader.TableString(table) ?? throw new InvalidDataException($"Reading {i} has no sensor id.");
                var timestampMs = receivedAtMs + reader.ZigZag();
                var metrics = new MetricValue[reader.Count()];
                for (var m = 0; m < metrics.Length; m++)
                {
                    metrics[m] = new MetricValue(reader.TableString(table) ?? throw new InvalidDataException($"A metric of reading {i} has no name."),
                        reader.Double());
                }

                AttributeValue[]? attributes = null;
                if (reader.CountPlusOne() is { } attributeCount)
                {
                    attributes = new AttributeValue[attributeCount];
                    for (var a = 0; a < attributes.Length; a++)
                    {
                        attributes[a] = new AttributeValue(
                            reader.TableString(table) ?? throw new InvalidDataException($"An attribute of reading {i} has no name."),
                            reader.TableString(table) ?? throw new InvalidDataException($"An attribute of reading {i} has no value."));
                    }
                }

                SensorMetadata? metadata = null;
                switch (reader.Byte())
                {
                    case 0:
                        break;
                    case 1:
                        var model = reader.TableString(table);
                        var location = reader.TableString(table);
                        var owner = reader.TableString(table);
                        var version = reader.TableString(table);
                        Dictionary<string, string>? extra = null;
                        if (reader.CountPlusOne() is { } extraCount)
                        {
                            extra = new Dictionary<string, string>(extraCount);
                            for (var e = 0; e < extraCount; e++)
                            {
                                var name = reader.TableString(table) ?? throw new InvalidDataException($"An extra metadata field of reading {i} has no name.");
                                extra[name] = reader.TableString(table) ?? throw new InvalidDataException($"Extra metadata field '{name}' of reading {i} has no value.");
                            }
                        }

                        metadata = new SensorMetadata { Model = model, Location = location, Owner = owner, Version = version, Extra = extra };
                        break;
                    default:
                        throw new InvalidDataException($"Reading {i} has an unknown metadata marker.");
                }

                readings[i] = new Reading { SensorId = sensorId, TimestampMs = timestampMs, Metrics = metrics, Attributes = attributes, Metadata = metadata };
            }

            if (reader.Position != bytes.Length)
            {
                throw new InvalidDataException($"{bytes.Length - reader.Position} bytes follow the last reading of the entry.");
            }

            return new TelemetryEntry(readings, key, receivedAtMs);
        }
        finally
        {
            table.Clear();
            if (table.Capacity > 4096)
            {
                t_decodeTable = null;
            }
        }
    }

    private static TelemetryGroupEntry DecodeGroup(ReadOnlySpan<byte> bytes)
    {
        var reader = new Reader(bytes) { Position = 1 };
        var entries = new TelemetryEntry[reader.Count()];
        if (entries.Length == 0)
        {
            throw new InvalidDataException("The telemetry group holds no entries.");
        }

        for (var i = 0; i < entries.Length; i++)
        {
            var at = reader.Position;
            var length = reader.Count();
            var entry = bytes.Slice(reader.Position, length);
            if (entry.IsEmpty || entry[0] != TelemetryFormat)
            {
                throw new InvalidDataException($"Entry {i} of the telemetry group (byte {at}) is not a telemetry entry.");
            }

            entries[i] = DecodeTelemetry(entry);
            reader.Position += length;
        }

        if (reader.Position != bytes.Length)
        {
            throw new InvalidDataException($"{bytes.Length - reader.Position} bytes follow the last entry of the telemetry group.");
        }

        return new TelemetryGroupEntry(entries);
    }

    private struct Writer(int capacity)
    {
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(capacity);
        private int _length;

        public void Byte(byte value)
        {
            Ensure(1);
            _buffer[_length++] = value;
        }

        public void VarUInt(ulong value)
        {
            Ensure(10);
            while (value >= 0x80)
            {
                _buffer[_length++] = (byte)(value | 0x80);
                value >>= 7;
            }

            _buffer[_length++] = (byte)value;
        }

        public void ZigZag(long value) => VarUInt((ulong)((value << 1) ^ (value >> 63)));

        public void Double(double value)
        {
            Ensure(8);
            BinaryPrimitives.WriteDoubleLittleEndian(_buffer.AsSpan(_length), value);
            _length += 8;
        }

        public void PlainString(string? value)
        {
            if (value is null)
            {
                VarUInt(0);
                return;
            }

            var count = Encoding.UTF8.GetByteCount(value);
            VarUInt((ulong)count + 1);
            Utf8(value, count);
        }

        public void TableString(string? value, Dictionary<string, int> table)
        {
            if (value is null)
            {
                VarUInt(0);
                return;
            }

            if (table.TryGetValue(value, out var index))
            {
                VarUInt((ulong)index + 2);
                return;
            }

            table.Add(value, table.Count);
            var count = Encoding.UTF8.GetByteCount(value);
            VarUInt(1);
            VarUInt((ulong)count);
            Utf8(value, count);
        }

        public void Bytes(ReadOnlySpan<byte> value)
        {
            Ensure(value.Length);
            value.CopyTo(_buffer.AsSpan(_length));
            _length += value.Length;
        }

        public readonly byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();

        public readonly void Return() => ArrayPool<byte>.Shared.Return(_buffer);

        private void Utf8(string value, int count)
        {
            Ensure(count);
            _length += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_length));
        }

        private void Ensure(int more)
        {
            if (_length + more <= _buffer.Length)
            {
                return;
            }

            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + more));
            _buffer.AsSpan(0, _length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;

        public int Position { get; set; }

        public byte Byte()
        {
            if (Position >= _bytes.Length)
            {
                throw Truncated();
            }

            return _bytes[Position++];
        }

        public ulong VarUInt()
        {
            var at = Position;
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = Byte();
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return value;
                }
            }

            throw new InvalidDataException($"A number at byte {at} of the entry is longer than 10 bytes.");
        }

        public long ZigZag()
        {
            var value = VarUInt();
            return (long)(value >> 1) ^ -(long)(value & 1);
        }

        /// <summary>A count of elements that take at least one byte each, so no larger than what is left.</summary>
        public int Count()
        {
            var at = Position;
            var count = VarUInt();
            if (count > (ulong)(_bytes.Length - Position))
            {
                throw new InvalidDataException($"The count at byte {at} of the entry ({count}) exceeds the bytes that follow it.");
            }

            return (int)count;
        }

        /// <summary>A count written plus one, 0 meaning none (null).</summary>
        public int? CountPlusOne()
        {
            var at = Position;
            var value = VarUInt();
            if (value == 0)
            {
                return null;
            }

            if (value - 1 > (ulong)(_bytes.Length - Position))
            {
                throw new InvalidDataException($"The count at byte {at} of the entry ({value - 1}) exceeds the bytes that follow it.");
            }

            return (int)(value - 1);
        }

        public double Double()
        {
            if (Position + 8 > _bytes.Length)
            {
                throw Truncated();
            }

            var value = BinaryPrimitives.ReadDoubleLittleEndian(_bytes.Slice(Position, 8));
            Position += 8;
            return value;
        }

        public string? PlainString()
        {
            var at = Position;
            var value = VarUInt();
            return value == 0 ? null : Utf8(at, value - 1);
        }

        public string? TableString(List<string> table)
        {
            var at = Position;
            var value = VarUInt();
            switch (value)
            {
                case 0:
                    return null;
                case 1:
                    var text = Utf8(at, VarUInt());
                    table.Add(text);
                    return text;
                default:
                    if (value - 2 >= (ulong)table.Count)
                    {
                        throw new InvalidDataException($"The string at byte {at} of the entry refers to string {value - 2} of {table.Count}.");
                    }

                    return table[(int)(value - 2)];
            }
        }

        private string Utf8(int at, ulong count)
        {
            if (count > (ulong)(_bytes.Length - Position))
            {
                throw Truncated();
            }

            var span = _bytes.Slice(Position, (int)count);
            Position += (int)count;
            try
            {
                return StrictUtf8.GetString(span);
            }
            catch (DecoderFallbackException)
            {
                throw new InvalidDataException($"The string at byte {at} of the entry is not valid UTF-8.");
            }
        }

        private readonly InvalidDataException Truncated() => new($"The entry ends at byte {_bytes.Length}, inside a value.");
    }
}
