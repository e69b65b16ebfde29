using System.Text;
using System.Text.Json;
using Grains.Abstractions;
using Runtime.RabbitMq;

namespace Runtime.Tests;

public sealed class InboxEntryCodecTests
{
    private static readonly TelemetryEntry Sample = new(
    [
        new Reading
        {
            SensorId = "s-1", TimestampMs = 1_700_000_000_123,
            Metrics = [new("temperature", 21.5), new("nan", double.NaN), new("up", double.PositiveInfinity), new("down", double.NegativeInfinity), new("zero", -0.0)],
            Attributes = [new("light", "on"), new("door", "")],
            Metadata = new SensorMetadata { Model = "m", Location = "roof", Extra = new() { ["floor"] = "3", ["wing"] = "nörd" } },
        },
        new Reading { SensorId = "s-2", TimestampMs = 5, Metrics = [] },
        new Reading { SensorId = "s-1", TimestampMs = 1_700_000_000_900, Metrics = [new("temperature", 22.25)], Attributes = [], Metadata = new SensorMetadata { Extra = [] } },
        new Reading { SensorId = "t\u00e9\U0001F600", TimestampMs = long.MinValue, Metrics = [new("temperature", double.MaxValue)] },
    ], "key-1", 1_700_000_000_500);

    private static string Json(InboxEntry entry) => JsonSerializer.Serialize(entry, RabbitMqJsonContext.Default.InboxEntry);

    [Fact]
    public void A_telemetry_entry_is_binary_and_reads_back_exactly()
    {
        var bytes = InboxEntryCodec.Encode(Sample);

        Assert.Equal(InboxEntryCodec.TelemetryFormat, bytes[0]);
        var back = Assert.IsType<TelemetryEntry>(InboxEntryCodec.Decode(bytes));
        Assert.Equal(Json(Sample), Json(back));
        Assert.Equal(BitConverter.DoubleToInt64Bits(-0.0), BitConverter.DoubleToInt64Bits(back.Readings[0].Metrics[4].Value));
        Assert.Null(back.Readings[1].Attributes);
        Assert.Null(back.Readings[1].Metadata);
        Assert.Empty(back.Readings[2].Attributes!);
        Assert.Empty(back.Readings[2].Metadata!.Extra!);
        Assert.Null(back.Readings[2].Metadata!.Model);
    }

    [Fact]
    public void Strings_repeated_in_an_entry_are_written_and_read_once()
    {
        var readings = Enumerable.Range(0, 100).Select(i => new Reading
        {
            SensorId = "sensor-42", TimestampMs = 1_000 + i,
            Metrics = [new("temperature", i), new("humidity", 50)],
            Attributes = [new("light", "on")],
        }).ToArray();
        var bytes = InboxEntryCodec.Encode(new TelemetryEntry(readings, null, 1_000));

        var back = (TelemetryEntry)InboxEntryCodec.Decode(bytes);

        Assert.Equal(1, CountOf(bytes, "temperature"u8));
        Assert.Equal(1, CountOf(bytes, "sensor-42"u8));
        Assert.Same(back.Readings[0].SensorId, back.Readings[99].SensorId);
        Assert.Same(back.Readings[0].Metrics[1].Name, back.Readings[99].Metrics[1].Name);
        Assert.Same(back.Readings[0].Attributes![0].Value, back.Readings[99].Attributes![0].Value);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (double)i), back.Readings.Select(r => r.Metrics[0].Value));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => 1_000L + i), back.Readings.Select(r => r.TimestampMs));
        // The same entry as JSON: more than twice the bytes.
        Assert.True(Encoding.UTF8.GetByteCount(Json(new TelemetryEntry(readings, null, 1_000))) > 2 * bytes.Length);
    }

    [Fact]
    public void Other_entries_stay_json_and_telemetry_written_as_json_by_earlier_versions_still_reads()
    {
        InboxEntry[] entries =
        [
            new TickEntry(7),
            new RuleChangeEntry("r-1", null, 9),
            new SensorMetadataEntry("s-1", new OperatorMetadata { Location = "roof", Tags = new() { ["a"] = "b" } }, 11),
            new OutsideConditionsEntry("roof", [new OutsideObservation { TimestampMs = 3, Metrics = [new("temperature", 4)] }], 12),
        ];
        foreach (var entry in entries)
        {
            var bytes = InboxEntryCodec.Encode(entry);
            Assert.Equal((byte)'{', bytes[0]);
            Assert.Equal(Json(entry), Json(InboxEntryCodec.Decode(bytes)));
        }

        var old = JsonSerializer.SerializeToUtf8Bytes<InboxEntry>(Sample, RabbitMqJsonContext.Default.InboxEntry);
        Assert.Equal(Json(Sample), Json(InboxEntryCodec.Decode(old)));
    }

    [Fact]
    public void Every_truncation_of_a_binary_entry_is_refused_as_invalid_data()
    {
        var bytes = InboxEntryCodec.Encode(Sample);
        for (var length = 1; length < bytes.Length; length++)
        {
            var error = Assert.Throws<InvalidDataException>(() => InboxEntryCodec.Decode(bytes.AsSpan(0, length)));
            Assert.False(string.IsNullOrEmpty(error.Message));
        }
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 0, 1, 1, 9, 65 }, "The entry ends at byte 7, inside a value.")]
    [InlineData(new byte[] { 1, 2, 0, 0x80, 0x80, 0x01 }, "The count at byte 3 of the entry (16384) exceeds the bytes that follow it.")]
    [InlineData(new byte[] { 1, 2, 0, 1, 5 }, "The string at byte 4 of the entry refers to string 3 of 0.")]
    [InlineData(new byte[] { 1, 2, 0, 1, 1, 1, 0xFF, 0, 0, 0, 0 }, "The string at byte 4 of the entry is not valid UTF-8.")]
    [InlineData(new byte[] { 1, 2, 0, 1, 0 }, "Reading 0 has no sensor id.")]
    [InlineData(new byte[] { 1, 2, 0, 1, 1, 1, 65, 0, 0, 0, 2 }, "Reading 0 has an unknown metadata marker.")]
    [InlineData(new byte[] { 1, 2, 0, 0, 7, 7 }, "2 bytes follow the last reading of the entry.")]
    [InlineData(new byte[] { 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, "A number at byte 1 of the entry is longer than 10 bytes.")]
    public void A_corrupt_binary_entry_is_refused_with_what_was_wrong(byte[] bytes, string message)
    {
        var error = Assert.Throws<InvalidDataException>(() => InboxEntryCodec.Decode(bytes));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void A_group_of_telemetry_entries_reads_back_as_the_entries_in_their_order()
    {
        var second = new TelemetryEntry([new Reading { SensorId = "s-9", TimestampMs = 7, Metrics = [new("temperature", 1.5)] }], null, 8);
        var third = Sample with { IdempotencyKey = "key-3" };

        var bytes = InboxEntryCodec.EncodeGroup([InboxEntryCodec.Encode(Sample), InboxEntryCodec.Encode(second), InboxEntryCodec.Encode(third)]);

        Assert.Equal(InboxEntryCodec.TelemetryGroupFormat, bytes[0]);
        var group = Assert.IsType<TelemetryGroupEntry>(InboxEntryCodec.Decode(bytes));
        Assert.Equal([Json(Sample), Json(second), Json(third)], group.Entries.Select(e => Json(e)));
        Assert.Equal(bytes, InboxEntryCodec.Encode(group));
    }

    [Fact]
    public void A_group_holds_telemetry_entries_only_and_every_truncation_of_it_is_refused()
    {
        var rule = InboxEntryCodec.Encode(new RuleChangeEntry("r-1", null, 9));
        Assert.Throws<ArgumentException>(() => InboxEntryCodec.EncodeGroup([InboxEntryCodec.Encode(Sample), rule]));
        Assert.Throws<ArgumentOutOfRangeException>(() => InboxEntryCodec.EncodeGroup([]));

        var bytes = InboxEntryCodec.EncodeGroup([InboxEntryCodec.Encode(Sample), InboxEntryCodec.Encode(Sample)]);
        for (var length = 1; length < bytes.Length; length++)
        {
            Assert.Throws<InvalidDataException>(() => InboxEntryCodec.Decode(bytes.AsSpan(0, length)));
        }
    }

    [Theory]
    [InlineData(new byte[] { 2, 0 }, "The telemetry group holds no entries.")]
    [InlineData(new byte[] { 2, 1, 2, 2, 0 }, "Entry 0 of the telemetry group (byte 2) is not a telemetry entry.")]
    [InlineData(new byte[] { 2, 1, 4, 1, 2, 0, 0, 9 }, "1 bytes follow the last entry of the telemetry group.")]
    [InlineData(new byte[] { 2, 1, 9, 1, 2, 0, 0 }, "The count at byte 2 of the entry (9) exceeds the bytes that follow it.")]
    public void A_corrupt_group_is_refused_with_what_was_wrong(byte[] bytes, string message)
    {
        var error = Assert.Throws<InvalidDataException>(() => InboxEntryCodec.Decode(bytes));
        Assert.Equal(message, error.Message);
    }

    [Theory]
    [InlineData("""{"$type":"unknown"}""")]
    [InlineData("null")]
    [InlineData("")]
    public void Bytes_that_are_no_entry_are_refused_as_invalid_data(string text)
    {
        Assert.Throws<InvalidDataException>(() => InboxEntryCodec.Decode(Encoding.UTF8.GetBytes(text)));
    }

    private static int CountOf(byte[] haystack, ReadOnlySpan<byte> needle)
    {
        var count = 0;
        for (var span = haystack.AsSpan(); span.IndexOf(needle) is var at and >= 0; span = span[(at + needle.Length)..])
        {
            count++;
        }
        return count;
    }
}
