using System.Globalization;
using System.Text;
using System.Text.Json;
using Grains.Abstractions;
using Runtime;

namespace Api.Ingest;

/// <summary>
/// Parses telemetry request bodies (the formats of DESIGN.md "Input formats") into <see cref="Reading"/>s,
/// reading the UTF-8 bytes directly with <see cref="Utf8JsonReader"/>.
/// </summary>
/// <remarks>
/// An instance is NOT thread-safe: it reuses scratch buffers and a cache of field names. Use it from one
/// thread at a time: either pool instances (preferred; keeps the name cache warm) or create one per request.
/// Both are safe as long as no instance is used by two requests at once.
/// </remarks>
public sealed class TelemetryParser(TelemetryLimits limits)
{
    private const string MissingId = "missing sensor id: expected one of id, sensor, sensorId, deviceId, nodo";
    private const string BadTimestamp = "timestamp must be epoch seconds, epoch milliseconds or an ISO-8601 string";
    private const string NotAnObject = "item must be a JSON object";
    private const double EpochMillisecondsFrom = 100_000_000_000d;
    private const long MaxEpochMs = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    private const int MaxTimestampStringBytes = 64;

    /// <summary>
    /// The greatest magnitude of a metric value. A minute's sum of any number of readings of at most 10^15 stays a finite
    /// double (2^31 of them sum to about 2·10^24), so every aggregate can be written as JSON; integers up to it are exact.
    /// </summary>
    public const double MaxMetricMagnitude = 1e15;

    private readonly TelemetryLimits _limits = limits ?? throw new ArgumentNullException(nameof(limits));

    /// <summary>The limits this parser applies.</summary>
    public TelemetryLimits Limits => _limits;
    private readonly Utf8NameCache _names = new(512, (int)Math.Min(int.MaxValue, 3L * Math.Max(limits.MaxNameLength, 1)));

    /// <summary>Short string values that repeat across readings (ids, models, locations, "on"/"off"), decoded once.</summary>
    private readonly Utf8NameCache _values = new(4096, 64);
    private readonly List<MetricValue> _topMetrics = [];
    private readonly List<MetricValue> _objectMetrics = [];
    private readonly List<AttributeValue> _attributes = [];
    private byte[] _nameBuffer = new byte[256];
    private ItemState _item;

    /// <summary>The sensor the body being parsed is about (an MQTT topic's device), or null: see <see cref="Parse"/>.</summary>
    private string? _bodySensorId;

    /// <summary>Top-level field names with a meaning of their own. For the id fields the value is the priority.</summary>
    private enum Field
    {
        Other = 0,
        Id = 1,
        Sensor = 2,
        SensorId = 3,
        DeviceId = 4,
        Nodo = 5,
        Timestamp = 6,
        Metrics = 7,
        Metadata = 8,
        Location = 9,
        Owner = 10,
    }

    private enum MetaField
    {
        Extra = 0,
        Model = 1,
        Location = 2,
        Owner = 3,
        Version = 4,
    }

    /// <summary>What has been seen so far of the object being parsed.</summary>
    private struct ItemState
    {
        public int Seen;
        public int MetaSeen;
        public int IdRank;
        public string? Id;
        public string? IdError;
        public bool HasTimestamp;
        public long TimestampMs;
        public bool HasMetricsObject;
        public int TopMetricCount;
        public int ObjectMetricCount;
        public string? TopMetricError;
        public int AttributeCount;
        public string? Model;
        public string? Location;
        public string? Owner;
        public string? Version;
        public string? TopLocation;
        public string? TopOwner;
        public Dictionary<string, string>? Extra;
        public int ExtraCount;
    }

    /// <summary>
    /// Parses <paramref name="utf8Body"/>. Each item is accepted or rejected as a whole; a body that cannot be
    /// read at all (or holds more than <see cref="TelemetryLimits.MaxItems"/> items) yields only
    /// <see cref="TelemetryParseResult.Malformed"/>. <paramref name="receivedAtMs"/> stands in for absent
    /// timestamps and bounds future ones. With <paramref name="bodySensorId"/> (the device of an MQTT topic), items
    /// without an id field are readings of that sensor, and an item naming another sensor is rejected.
    /// </summary>
    public TelemetryParseResult Parse(ReadOnlySpan<byte> utf8Body, TelemetryBodyKind kind, long receivedAtMs, string? bodySensorId = null)
    {
        _bodySensorId = bodySensorId;
        var result = new TelemetryParseResult();
        int bomLength = utf8Body.StartsWith("\uFEFF"u8) ? 3 : 0;
        ReadOnlySpan<byte> body = utf8Body[bomLength..];
        if (body.IndexOfAnyExcept(" \t\r\n"u8) < 0)
        {
            result.Malformed = new MalformedBody("request body is empty", 1, 0);
            return result;
        }

        if (kind == TelemetryBodyKind.NdJson)
        {
            ParseNdJson(body, bomLength, receivedAtMs, result);
        }
        else
        {
            ParseJson(body, bomLength, receivedAtMs, result);
        }

        return result;
    }

    private void ParseJson(ReadOnlySpan<byte> body, int bomLength, long receivedAtMs, TelemetryParseResult result)
    {
        var reader = new Utf8JsonReader(body);
        try
        {
            Read(ref reader);
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    AddItem(ParseItem(ref reader, receivedAtMs, out Reading? single), single, 0, result);
                    break;

                case JsonTokenType.StartArray:
                    for (int index = 0; ; index++)
                    {
                        Read(ref reader);
                        if (reader.TokenType == JsonTokenType.EndArray)
                        {
                            break;
                        }

                        if (index >= _limits.MaxItems)
                        {
                            (long line, long position) = LineAndPosition(body, reader.TokenStartIndex, bomLength);
                            Fail(result, new MalformedBody(TooManyItems(), line, position));
                            return;
                        }

                        if (reader.TokenType == JsonTokenType.StartObject)
                        {
                            AddItem(ParseItem(ref reader, receivedAtMs, out Reading? reading), reading, index, result);
                        }
                        else
                        {
                            reader.Skip();
                            result.Rejected.Add(new ItemError(index, NotAnObject));
                        }
                    }

                    break;

                default:
                    {
                        (long line, long position) = LineAndPosition(body, reader.TokenStartIndex, bomLength);
                        Fail(result, new MalformedBody("request body must be a JSON object or an array of JSON objects", line, position));
                        return;
                    }
            }

            // Anything but whitespace after the value makes the reader throw.
            reader.Read();
        }
        catch (JsonException ex)
        {
            (long line, long position, string error) = Describe(ex, body, 1, bomLength);
            Fail(result, new MalformedBody(error, line, position));
        }
    }

    private void ParseNdJson(ReadOnlySpan<byte> body, int bomLength, long receivedAtMs, TelemetryParseResult result)
    {
        int index = 0;
        long lineNumber = 0;
        ReadOnlySpan<byte> rest = body;
        while (true)
        {
            lineNumber++;
            int end = rest.IndexOf((byte)'\n');
            ReadOnlySpan<byte> line = end < 0 ? rest : rest[..end];
            if (line.IndexOfAnyExcept(" \t\r"u8) >= 0)
            {
                if (index >= _limits.MaxItems)
                {
                    Fail(result, new MalformedBody(TooManyItems(), lineNumber, 0));
                    return;
                }

                ParseNdJsonLine(line, lineNumber, lineNumber == 1 ? bomLength : 0, index, receivedAtMs, result);
                index++;
            }

            if (end < 0)
            {
                return;
            }

            rest = rest[(end + 1)..];
        }
    }

    private void ParseNdJsonLine(ReadOnlySpan<byte> line, long lineNumber, int bomLength, int index, long receivedAtMs, TelemetryParseResult result)
    {
        var reader = new Utf8JsonReader(line);
        Reading? reading = null;
        string? error;
        try
        {
            Read(ref reader);
            if (reader.TokenType == JsonTokenType.StartObject)
            {
                error = ParseItem(ref reader, receivedAtMs, out reading);
            }
            else
            {
                reader.Skip();
                error = NotAnObject;
            }

            // Anything but whitespace after the object makes the reader throw.
            reader.Read();
        }
        catch (JsonException ex)
        {
            reading = null;
            error = Describe(ex, line, lineNumber, bomLength).Error;
        }

        AddItem(error, reading, index, result);
    }

    private static void AddItem(string? error, Reading? reading, int index, TelemetryParseResult result)
    {
        if (error is null)
        {
            result.Accepted.Add(reading!);
            result.AcceptedIndexes.Add(index);
        }
        else
        {
            result.Rejected.Add(new ItemError(index, error));
        }
    }

    private static void Fail(TelemetryParseResult result, MalformedBody malformed)
    {
        result.Accepted.Clear();
        result.AcceptedIndexes.Clear();
        result.Rejected.Clear();
        result.Malformed = malformed;
    }

    private string TooManyItems() => $"too many readings: at most {_limits.MaxItems} per request";

    /// <summary>Line (1-based), position (0-based bytes) and message of a reader error in <paramref name="text"/>, which starts at <paramref name="firstLine"/>.</summary>
    private static (long Line, long Position, string Error) Describe(JsonException ex, ReadOnlySpan<byte> text, long firstLine, int bomLength)
    {
        long line;
        long position;
        if (ex.LineNumber is long l && ex.BytePositionInLine is long p)
        {
            line = firstLine + l;
            position = p + (l == 0 ? bomLength : 0);
        }
        else
        {
            (line, position) = LineAndPosition(text, text.Length, bomLength);
            line += firstLine - 1;
        }

        string detail = ex.Message;
        int suffix = detail.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (suffix >= 0)
        {
            detail = detail[..suffix];
        }

        return (line, position, $"malformed JSON at line {line}, position {position}: {detail}");
    }

    private static (long Line, long Position) LineAndPosition(ReadOnlySpan<byte> text, long offset, int bomLength)
    {
        ReadOnlySpan<byte> before = text[..(int)offset];
        int lastNewLine = before.LastIndexOf((byte)'\n');
        return lastNewLine < 0
            ? (1, offset + bomLength)
            : (before.Count((byte)'\n') + 1, offset - lastNewLine - 1);
    }

    private static void Read(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new JsonException("unexpected end of data");
        }
    }

    // ---- one object -------------------------------------------------------------------------------

    /// <summary>Parses the object at the reader (on its StartObject) and leaves the reader on its EndObject.</summary>
    private string? ParseItem(ref Utf8JsonReader reader, long receivedAtMs, out Reading? reading)
    {
        int depth = reader.CurrentDepth;
        string? error = ParseObject(ref reader, receivedAtMs, out reading);
        if (error is not null)
        {
            reading = null;
            while (reader.TokenType != JsonTokenType.EndObject || reader.CurrentDepth != depth)
            {
                Read(ref reader);
            }
        }

        return error;
    }

    private string? ParseObject(ref Utf8JsonReader reader, long receivedAtMs, out Reading? reading)
    {
        reading = null;
        ResetItem();
        while (true)
        {
            Read(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                return Finish(receivedAtMs, out reading);
            }

            if (!TryGetName(ref reader, out ReadOnlySpan<byte> name))
            {
                return "a field name is not valid UTF-16";
            }

            Field field = Classify(name);
            Read(ref reader);
            if (field != Field.Other)
            {
                int bit = 1 << (int)field;
                if ((_item.Seen & bit) != 0)
                {
                    return $"duplicate field '{Keyword(field)}'";
                }

                _item.Seen |= bit;
            }

            string? error = field switch
            {
                Field.Other => OnOtherField(ref reader, name),
                Field.Timestamp => OnTimestamp(ref reader, receivedAtMs),
                Field.Metrics => OnMetrics(ref reader),
                Field.Metadata => OnMetadata(ref reader),
                Field.Location or Field.Owner => OnLocationOrOwner(ref reader, field),
                _ => OnId(ref reader, field),
            };
            if (error is not null)
            {
                return error;
            }

            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                reader.Skip(); // a value that was ignored
            }
        }
    }

    private void ResetItem()
    {
        _item = default;
        _item.IdRank = int.MaxValue;
        _topMetrics.Clear();
        _objectMetrics.Clear();
        _attributes.Clear();
    }

    private string? Finish(long receivedAtMs, out Reading? reading)
    {
        reading = null;
        if (_item.IdError is not null)
        {
            return _item.IdError;
        }

        if (_item.Id is null)
        {
            if (_bodySensorId is null)
            {
                return MissingId;
            }
            _item.Id = _bodySensorId;
        }
        else if (_bodySensorId is not null && !string.Equals(_item.Id, _bodySensorId, StringComparison.Ordinal))
        {
            return $"the item names sensor '{_item.Id}', but this body is for sensor '{_bodySensorId}' only";
        }

        List<MetricValue> metrics;
        int metricCount;
        if (_item.HasMetricsObject)
        {
            metrics = _objectMetrics;
            metricCount = _item.ObjectMetricCount;
        }
        else
        {
            if (_item.TopMetricError is not null)
            {
                return _item.TopMetricError;
            }

            metrics = _topMetrics;
            metricCount = _item.TopMetricCount;
        }

        if (metricCount > _limits.MaxMetrics)
        {
            return $"too many metrics: {metricCount} (at most {_limits.MaxMetrics})";
        }

        if (_item.AttributeCount > _limits.MaxAttributes)
        {
            return $"too many attributes: {_item.AttributeCount} (at most {_limits.MaxAttributes})";
        }

        string? location = _item.Location ?? _item.TopLocation;
        string? owner = _item.Owner ?? _item.TopOwner;
        SensorMetadata? metadata = _item.Model is null && location is null && owner is null && _item.Version is null && _item.Extra is null
            ? null
            : new SensorMetadata { Model = _item.Model, Location = location, Owner = owner, Version = _item.Version, Extra = _item.Extra };

        if (metricCount == 0 && _item.AttributeCount == 0 && metadata is null)
        {
            return "reading has no metrics";
        }

        reading = new Reading
        {
            SensorId = _item.Id,
            TimestampMs = _item.HasTimestamp ? _item.TimestampMs : receivedAtMs,
            Metrics = metrics.Count == 0 ? [] : metrics.ToArray(),
            Attributes = _attributes.Count == 0 ? null : _attributes.ToArray(),
            Metadata = metadata,
        };
        return null;
    }

    // ---- fields -----------------------------------------------------------------------------------

    private string? OnId(ref Utf8JsonReader reader, Field field)
    {
        int rank = (int)field;
        if (reader.TokenType == JsonTokenType.Null || rank > _item.IdRank)
        {
            return null; // absent, or a field of higher priority was already found
        }

        string name = Keyword(field);
        string? id = null;
        string? error = null;
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                if (reader.ValueSpan.IsEmpty)
                {
                    return null; // an empty id counts as absent
                }

                if (!TryDecodeString(ref reader, out id))
                {
                    error = $"sensor id field '{name}' is not valid text (invalid UTF-8 or a lone surrogate)";
                }

                break;

            case JsonTokenType.Number when IsInteger(reader.ValueSpan):
                id = Encoding.UTF8.GetString(reader.ValueSpan);
                break;

            default:
                error = $"sensor id field '{name}' must be a string or an integer";
                break;
        }

        if (id is not null)
        {
            error = ValidateId(id);
        }

        _item.IdRank = rank;
        _item.Id = error is null ? id : null;
        _item.IdError = error;
        return null;
    }

    private static string? ValidateId(string id) => SensorIds.Problem(id) is { } problem ? "sensor id " + problem : null;

    private static bool IsInteger(ReadOnlySpan<byte> number)
    {
        if (!number.IsEmpty && number[0] == (byte)'-')
        {
            number = number[1..];
        }

        return !number.IsEmpty && number.IndexOfAnyExceptInRange((byte)'0', (byte)'9') < 0;
    }

    private string? OnTimestamp(ref Utf8JsonReader reader, long receivedAtMs)
    {
        long ms;
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;

            case JsonTokenType.Number:
                if (!reader.TryGetDouble(out double value) || !double.IsFinite(value))
                {
                    return BadTimestamp;
                }

                if (value < 0)
                {
                    return "timestamp must not be negative";
                }

                double msValue = value < EpochMillisecondsFrom ? value * 1000d : value;
                if (msValue > MaxEpochMs)
                {
                    return BadTimestamp;
                }

                ms = (long)Math.Round(msValue, MidpointRounding.AwayFromZero);
                break;

            case JsonTokenType.String:
                if (!TryParseIsoTimestamp(ref reader, out ms))
                {
                    return BadTimestamp;
                }

                if (ms < 0)
                {
                    return "timestamp must not be negative";
                }

                break;

            default:
                return BadTimestamp;
        }

        long ahead = ms - receivedAtMs;
        if (ahead > _limits.MaxFutureSkewMs)
        {
            return $"timestamp is {(ahead + 999) / 1000} s in the future (at most {_limits.MaxFutureSkewMs / 1000} s allowed)";
        }

        _item.HasTimestamp = true;
        _item.TimestampMs = ms;
        return null;
    }

    private static bool TryParseIsoTimestamp(ref Utf8JsonReader reader, out long ms)
    {
        ms = 0;
        ReadOnlySpan<byte> raw = reader.ValueSpan;

        // ISO-8601 starts with a four-digit year; this keeps DateTimeOffset.TryParse from accepting
        // culture-style dates or a bare time of day (which it would place on today's date).
        if (raw.Length < 5 || raw.Length > MaxTimestampStringBytes
            || raw[..4].IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0 || raw[4] != (byte)'-')
        {
            return false;
        }

        Span<char> chars = stackalloc char[MaxTimestampStringBytes];
        int length;
        try
        {
            length = reader.CopyString(chars);
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        if (!DateTimeOffset.TryParse(chars[..length], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset time))
        {
            return false;
        }

        ms = time.ToUnixTimeMilliseconds();
        return true;
    }

    private string? OnMetrics(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return "metrics must be an object";
        }

        _item.HasMetricsObject = true;
        while (true)
        {
            Read(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                return null;
            }

            if (!TryGetName(ref reader, out ReadOnlySpan<byte> utf8Name))
            {
                return "a metric name is not valid UTF-16";
            }

            string? name = GetName(utf8Name, "metric", out string? error);
            if (name is null)
            {
                return error;
            }

            Read(ref reader);
            if (reader.TokenType != JsonTokenType.Number)
            {
                return $"metric '{name}' must be a number";
            }

            if (MetricValueProblem(ref reader, name, out double value) is { } problem)
            {
                return problem;
            }

            if (Contains(_objectMetrics, name))
            {
                return $"duplicate metric '{name}'";
            }

            if (_item.ObjectMetricCount++ < _limits.MaxMetrics)
            {
                _objectMetrics.Add(new MetricValue(name, value));
            }
        }
    }

    /// <summary>Reads a metric's number; what is wrong with it (not finite, or beyond <see cref="MaxMetricMagnitude"/>), or null.</summary>
    private static string? MetricValueProblem(ref Utf8JsonReader reader, string name, out double value)
    {
        if (!reader.TryGetDouble(out value) || !double.IsFinite(value))
        {
            return $"metric '{name}' is not a finite number";
        }

        return Math.Abs(value) > MaxMetricMagnitude
            ? $"metric '{name}' is {value.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}: values must be between -1e15 and 1e15"
            : null;
    }

    /// <summary>A top-level field that is not one of the known names: a metric, an attribute, or ignored.</summary>
    private string? OnOtherField(ref Utf8JsonReader reader, scoped ReadOnlySpan<byte> utf8Name)
    {
        string? name;
        string? error;
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;

            case JsonTokenType.Number:
                // Top-level numbers are ignored when a "metrics" object is present (possibly further on), so
                // their errors are only reported at the end, if no such object turned up.
                name = GetName(utf8Name, "metric", out error);
                if (name is null)
                {
                    _item.TopMetricError ??= error;
                    return null;
                }

                if (IsTopLevelDuplicate(name))
                {
                    return $"duplicate field '{name}'";
                }

                if (MetricValueProblem(ref reader, name, out double value) is { } problem)
                {
                    _item.TopMetricError ??= problem;
                    return null;
                }

                if (_item.TopMetricCount++ < _limits.MaxMetrics)
                {
                    _topMetrics.Add(new MetricValue(name, value));
                }

                return null;

            case JsonTokenType.String or JsonTokenType.True or JsonTokenType.False:
                name = GetName(utf8Name, "attribute", out error);
                if (name is null)
                {
                    return error;
                }

                if (IsTopLevelDuplicate(name))
                {
                    return $"duplicate field '{name}'";
                }

                if (!TryGetScalarText(ref reader, out string? text))
                {
                    return $"attribute '{name}' is not valid text (invalid UTF-8 or a lone surrogate)";
                }

                if (TextRules.Problem(text) is { } attributeProblem)
                {
                    return $"attribute '{name}' contains {attributeProblem}";
                }

                if (text.Length > _limits.MaxStringValueLength)
                {
                    return $"attribute '{name}' is longer than {_limits.MaxStringValueLength} characters";
                }

                if (_item.AttributeCount++ < _limits.MaxAttributes)
                {
                    _attributes.Add(new AttributeValue(name, text));
                }

                return null;

            default:
                return $"field '{Display(utf8Name)}' must be a number, string or boolean";
        }
    }

    private string? OnLocationOrOwner(ref Utf8JsonReader reader, Field field)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        string name = Keyword(field);
        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
        {
            return $"field '{name}' must be a number, string or boolean";
        }

        if (!TryGetScalarText(ref reader, out string? text))
        {
            return $"field '{name}' is not valid text (invalid UTF-8 or a lone surrogate)";
        }

        if (TextRules.Problem(text) is { } problem)
        {
            return $"field '{name}' contains {problem}";
        }

        if (text.Length > _limits.MaxStringValueLength)
        {
            return $"field '{name}' is longer than {_limits.MaxStringValueLength} characters";
        }

        if (field == Field.Location)
        {
            _item.TopLocation = text;
        }
        else
        {
            _item.TopOwner = text;
        }

        return null;
    }

    private string? OnMetadata(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return "metadata must be an object";
        }

        while (true)
        {
            Read(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                break;
            }

            if (!TryGetName(ref reader, out ReadOnlySpan<byte> utf8Name))
            {
                return "a metadata field name is not valid UTF-16";
            }

            MetaField field = ClassifyMeta(utf8Name);
            string name;
            if (field == MetaField.Extra)
            {
                string? extraName = GetName(utf8Name, "metadata field", out string? error);
                if (extraName is null)
                {
                    return error;
                }

                name = extraName;
            }
            else
            {
                name = MetaKeyword(field);
                int bit = 1 << (int)field;
                if ((_item.MetaSeen & bit) != 0)
                {
                    return $"duplicate field 'metadata.{name}'";
                }

                _item.MetaSeen |= bit;
            }

            Read(ref reader);
            if (reader.TokenType == JsonTokenType.Null)
            {
                continue;
            }

            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                return $"metadata.{name} must be a string, number or boolean";
            }

            if (!TryGetScalarText(ref reader, out string? text))
            {
                return $"metadata.{name} is not valid text (invalid UTF-8 or a lone surrogate)";
            }

            if (TextRules.Problem(text) is { } problem)
            {
                return $"metadata.{name} contains {problem}";
            }

            if (text.Length > _limits.MaxStringValueLength)
            {
                return $"metadata.{name} is longer than {_limits.MaxStringValueLength} characters";
            }

            switch (field)
            {
                case MetaField.Model:
                    _item.Model = text;
                    break;
                case MetaField.Location:
                    _item.Location = text;
                    break;
                case MetaField.Owner:
                    _item.Owner = text;
                    break;
                case MetaField.Version:
                    _item.Version = text;
                    break;
                default:
                    _item.Extra ??= new Dictionary<string, string>(StringComparer.Ordinal);
                    if (_item.Extra.ContainsKey(name))
                    {
                        return $"duplicate field 'metadata.{name}'";
                    }

                    if (_item.ExtraCount++ < _limits.MaxAttributes)
                    {
                        _item.Extra.Add(name, text);
                    }

                    break;
            }
        }

        if (_item.ExtraCount > _limits.MaxAttributes)
        {
            return $"too many metadata fields: {_item.ExtraCount} (at most {_limits.MaxAttributes})";
        }

        return null;
    }

    // ---- helpers ----------------------------------------------------------------------------------

    /// <summary>The unescaped UTF-8 bytes of the property name at the reader; valid until the next name is read.</summary>
    private bool TryGetName(ref Utf8JsonReader reader, out ReadOnlySpan<byte> name)
    {
        if (!reader.ValueIsEscaped)
        {
            name = reader.ValueSpan;
            return true;
        }

        if (_nameBuffer.Length < reader.ValueSpan.Length)
        {
            _nameBuffer = new byte[reader.ValueSpan.Length];
        }

        try
        {
            name = _nameBuffer.AsSpan(0, reader.CopyString(_nameBuffer));
            return true;
        }
        catch (InvalidOperationException)
        {
            name = default;
            return false; // an escaped lone surrogate
        }
    }

    /// <summary>A metric, attribute or metadata field name, from the cache; null (with an error naming <paramref name="kind"/>) when unusable.</summary>
    private string? GetName(ReadOnlySpan<byte> utf8, string kind, out string? error)
    {
        error = null;
        if (utf8.IsEmpty)
        {
            error = $"{kind} name must not be empty";
            return null;
        }

        // A UTF-8 name has at least a third as many UTF-16 characters as bytes.
        if (utf8.Length <= 3L * _limits.MaxNameLength)
        {
            string? name = _names.Get(utf8);
            if (name is null)
            {
                error = $"{kind} name '{Display(utf8)}' is not valid text (invalid UTF-8 or a lone surrogate)";
                return null;
            }

            if (name.Length <= _limits.MaxNameLength)
            {
                if (TextRules.Problem(name) is { } problem)
                {
                    error = $"{kind} name contains {problem}";
                    return null;
                }

                return name;
            }
        }

        error = $"{kind} name '{Display(utf8)}' is longer than {_limits.MaxNameLength} characters";
        return null;
    }

    /// <summary>A field name for an error message, cut short when long.</summary>
    private string Display(ReadOnlySpan<byte> utf8)
    {
        int max = Math.Max(_limits.MaxNameLength, 16);
        string text = Encoding.UTF8.GetString(utf8.Length > 4 * max ? utf8[..(4 * max)] : utf8);
        return text.Length > max ? string.Concat(text.AsSpan(0, max), "...") : text;
    }

    /// <summary>A string value through the cache of repeated values (sensor ids are too many to cache: see <see cref="TryDecodeString"/>).</summary>
    private bool TryGetString(ref Utf8JsonReader reader, out string? value)
    {
        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            value = _values.Get(reader.ValueSpan);
            return value is not null; // null: not valid UTF-8
        }
        return TryDecodeString(ref reader, out value);
    }

    private static bool TryDecodeString(ref Utf8JsonReader reader, out string? value)
    {
        try
        {
            value = reader.GetString();
            return value is not null;
        }
        catch (InvalidOperationException)
        {
            value = null;
            return false; // invalid UTF-8, or an escaped lone surrogate
        }
    }

    /// <summary>Text of a string, number (its JSON text, so 1.0 stays "1.0") or boolean value.</summary>
    private bool TryGetScalarText(ref Utf8JsonReader reader, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? text)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.True:
                text = "true";
                return true;
            case JsonTokenType.False:
                text = "false";
                return true;
            case JsonTokenType.Number:
                text = Encoding.UTF8.GetString(reader.ValueSpan);
                return true;
            default:
                return TryGetString(ref reader, out text);
        }
    }

    private static bool Contains(List<MetricValue> metrics, string name)
    {
        foreach (MetricValue metric in metrics)
        {
            if (string.Equals(metric.Name, name, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private bool IsTopLevelDuplicate(string name)
    {
        if (Contains(_topMetrics, name))
        {
            return true;
        }

        foreach (AttributeValue attribute in _attributes)
        {
            if (string.Equals(attribute.Name, name, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static Field Classify(ReadOnlySpan<byte> name) => name.Length switch
    {
        2 when name.SequenceEqual("id"u8) => Field.Id,
        4 when name.SequenceEqual("nodo"u8) => Field.Nodo,
        5 when name.SequenceEqual("owner"u8) => Field.Owner,
        6 when name.SequenceEqual("sensor"u8) => Field.Sensor,
        7 when name.SequenceEqual("metrics"u8) => Field.Metrics,
        8 when name.SequenceEqual("sensorId"u8) => Field.SensorId,
        8 when name.SequenceEqual("deviceId"u8) => Field.DeviceId,
        8 when name.SequenceEqual("metadata"u8) => Field.Metadata,
        8 when name.SequenceEqual("location"u8) => Field.Location,
        9 when name.SequenceEqual("timestamp"u8) => Field.Timestamp,
        _ => Field.Other,
    };

    private static string Keyword(Field field) => field switch
    {
        Field.Id => "id",
        Field.Sensor => "sensor",
        Field.SensorId => "sensorId",
        Field.DeviceId => "deviceId",
        Field.Nodo => "nodo",
        Field.Timestamp => "timestamp",
        Field.Metrics => "metrics",
        Field.Metadata => "metadata",
        Field.Location => "location",
        Field.Owner => "owner",
        _ => throw new ArgumentOutOfRangeException(nameof(field)),
    };

    private static MetaField ClassifyMeta(ReadOnlySpan<byte> name) => name.Length switch
    {
        5 when name.SequenceEqual("model"u8) => MetaField.Model,
        5 when name.SequenceEqual("owner"u8) => MetaField.Owner,
        7 when name.SequenceEqual("version"u8) => MetaField.Version,
        8 when name.SequenceEqual("location"u8) => MetaField.Location,
        _ => MetaField.Extra,
    };

    private static string MetaKeyword(MetaField field) => field switch
    {
        MetaField.Model => "model",
        MetaField.Location => "location",
        MetaField.Owner => "owner",
        MetaField.Version => "version",
        _ => throw new ArgumentOutOfRangeException(nameof(field)),
    };
}
