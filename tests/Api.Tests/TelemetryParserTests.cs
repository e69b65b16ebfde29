using System.Text;
using Api.Ingest;
using Grains.Abstractions;

namespace Api.Tests;

public sealed class TelemetryParserTests
{
    private const long ReceivedAtMs = 1_800_000_000_000;

    private static TelemetryParseResult Parse(string body, TelemetryBodyKind kind = TelemetryBodyKind.Json, TelemetryLimits? limits = null) =>
        new TelemetryParser(limits ?? new TelemetryLimits()).Parse(Encoding.UTF8.GetBytes(body), kind, ReceivedAtMs);

    private static Reading Single(TelemetryParseResult result)
    {
        Assert.Null(result.Malformed);
        Assert.Empty(result.Rejected);
        return Assert.Single(result.Accepted);
    }

    private static string SingleError(string body, TelemetryLimits? limits = null)
    {
        TelemetryParseResult result = Parse(body, limits: limits);
        Assert.Null(result.Malformed);
        Assert.Empty(result.Accepted);
        ItemError error = Assert.Single(result.Rejected);
        Assert.Equal(0, error.Index);
        return error.Error;
    }

    private static MetricValue M(string name, double value) => new(name, value);

    private static AttributeValue A(string name, string value) => new(name, value);

    // ---- the three formats of the design ----------------------------------------------------------

    [Fact]
    public void SeedSlideFormat_WithQuotedVersion()
    {
        Reading reading = Single(Parse("""
            {"sensor":"AAAA","temperature":22,"humidity":50,"light":"on",
             "volume_control":0.5,"timestamp":1234567890,
             "metadata":{"model":"HW-MD202","location":"garden","version": "1.0.0"}}
            """));

        Assert.Equal("AAAA", reading.SensorId);
        Assert.Equal(1_234_567_890_000, reading.TimestampMs);
        Assert.Equal([M("temperature", 22), M("humidity", 50), M("volume_control", 0.5)], reading.Metrics);
        Assert.Equal([A("light", "on")], reading.Attributes!);
        Assert.NotNull(reading.Metadata);
        Assert.Equal("HW-MD202", reading.Metadata.Model);
        Assert.Equal("garden", reading.Metadata.Location);
        Assert.Equal("1.0.0", reading.Metadata.Version);
        Assert.Null(reading.Metadata.Owner);
        Assert.Null(reading.Metadata.Extra);
    }

    [Fact]
    public void SeedSlideFormat_WithUnquotedVersion_IsMalformed()
    {
        TelemetryParseResult result = Parse("""
            {"sensor":"AAAA","temperature":22,"humidity":50,"light":"on",
             "volume_control":0.5,"timestamp":1234567890,
             "metadata":{"model":"HW-MD202","location":"garden","version": 1.0.0}}
            """);

        Assert.Empty(result.Accepted);
        Assert.Empty(result.Rejected);
        Assert.Equal(
            new MalformedBody("malformed JSON at line 3, position 66: '.' is an invalid end of a number. Expected 'E' or 'e'.", 3, 66),
            result.Malformed);
    }

    [Fact]
    public void KafkaEngineFormat_TakesMetricsFromMetricsObject()
    {
        Reading reading = Single(Parse("""{"id":"A","timestamp":123456789,"metrics":{"hum":49,"temp":34}}"""));

        Assert.Equal("A", reading.SensorId);
        Assert.Equal(123_456_789_000, reading.TimestampMs);
        Assert.Equal([M("hum", 49), M("temp", 34)], reading.Metrics);
        Assert.Null(reading.Attributes);
        Assert.Null(reading.Metadata);
    }

    [Fact]
    public void SerialNodeFormat_UsesNodoAndTopLevelNumbers()
    {
        Reading reading = Single(Parse("""{"nodo":"comuna_15","humedad":50,"temperatura":22,"sensacion":23,"radiacion":3.1}"""));

        Assert.Equal("comuna_15", reading.SensorId);
        Assert.Equal(ReceivedAtMs, reading.TimestampMs);
        Assert.Equal([M("humedad", 50), M("temperatura", 22), M("sensacion", 23), M("radiacion", 3.1)], reading.Metrics);
        Assert.Null(reading.Attributes);
        Assert.Null(reading.Metadata);
    }

    // ---- body kinds -------------------------------------------------------------------------------

    [Fact]
    public void Array_AcceptsValidItemsAndRejectsOthersByIndex()
    {
        TelemetryParseResult result = Parse("""
            [
              {"id":"a","t":1},
              42,
              {"t":2},
              {"id":"b","metrics":{"t":"hot"}},
              [],
              {"id":"c","t":3}
            ]
            """);

        Assert.Null(result.Malformed);
        Assert.Equal(["a", "c"], result.Accepted.Select(r => r.SensorId));
        Assert.Equal(
            [
                new ItemError(1, "item must be a JSON object"),
                new ItemError(2, "missing sensor id: expected one of id, sensor, sensorId, deviceId, nodo"),
                new ItemError(3, "metric 't' must be a number"),
                new ItemError(4, "item must be a JSON object"),
            ],
            result.Rejected);
    }

    [Fact]
    public void EmptyArray_YieldsNothing()
    {
        TelemetryParseResult result = Parse(" [ ] ");

        Assert.Null(result.Malformed);
        Assert.Empty(result.Accepted);
        Assert.Empty(result.Rejected);
    }

    [Fact]
    public void NdJson_SkipsBlankLinesAndRejectsBadLinesOnly()
    {
        string body = "{\"id\":\"a\",\"t\":1}\r\n"
            + "\n"
            + "   \t \r\n"
            + "{\"id\":\"b\",\"t\":}\n"
            + "{\"t\":2}\n"
            + "[1]\n"
            + "{\"id\":\"c\",\"t\":3} x\n"
            + "{\"id\":\"d\",\"t\":4}\n";

        TelemetryParseResult result = Parse(body, TelemetryBodyKind.NdJson);

        Assert.Null(result.Malformed);
        Assert.Equal(["a", "d"], result.Accepted.Select(r => r.SensorId));
        Assert.Equal(
            [
                new ItemError(1, "malformed JSON at line 4, position 14: '}' is an invalid start of a value."),
                new ItemError(2, "missing sensor id: expected one of id, sensor, sensorId, deviceId, nodo"),
                new ItemError(3, "item must be a JSON object"),
                new ItemError(4, "malformed JSON at line 7, position 17: 'x' is invalid after a single JSON value. Expected end of data."),
            ],
            result.Rejected);
    }

    [Fact]
    public void NdJson_OfOnlyWhitespaceLines_IsEmpty()
    {
        TelemetryParseResult result = Parse(" \n\t\r\n\n", TelemetryBodyKind.NdJson);

        Assert.Empty(result.Accepted);
        Assert.Equal(new MalformedBody("request body is empty", 1, 0), result.Malformed);
    }

    [Theory]
    [InlineData("", TelemetryBodyKind.Json)]
    [InlineData("  \r\n ", TelemetryBodyKind.Json)]
    [InlineData("", TelemetryBodyKind.NdJson)]
    public void EmptyBody_IsMalformed(string body, TelemetryBodyKind kind)
    {
        TelemetryParseResult result = Parse(body, kind);

        Assert.Empty(result.Accepted);
        Assert.Empty(result.Rejected);
        Assert.Equal(new MalformedBody("request body is empty", 1, 0), result.Malformed);
    }

    [Fact]
    public void JsonBody_WithTrailingGarbage_IsMalformedAndAcceptsNothing()
    {
        TelemetryParseResult result = Parse("{\"id\":\"a\",\"t\":1}\n{\"id\":\"b\",\"t\":2}");

        Assert.Empty(result.Accepted);
        Assert.Empty(result.Rejected);
        Assert.Equal(
            new MalformedBody("malformed JSON at line 2, position 0: '{' is invalid after a single JSON value. Expected end of data.", 2, 0),
            result.Malformed);
    }

    [Fact]
    public void JsonBody_Truncated_IsMalformedAndAcceptsNothing()
    {
        TelemetryParseResult result = Parse("[{\"id\":\"a\",\"t\":1},{\"id\":\"b\",\"t\":");

        Assert.Empty(result.Accepted);
        Assert.Empty(result.Rejected);
        Assert.Equal(
            new MalformedBody("malformed JSON at line 1, position 32: Expected depth to be zero at the end of the JSON payload. There is an open JSON object or array that should be closed.", 1, 32),
            result.Malformed);
    }

    [Fact]
    public void JsonBody_ThatIsNotAnObjectOrArray_IsMalformed()
    {
        TelemetryParseResult result = Parse("  \"hello\"");

        Assert.Equal(new MalformedBody("request body must be a JSON object or an array of JSON objects", 1, 2), result.Malformed);
    }

    [Fact]
    public void TooManyItemsInArray_IsMalformedAndAcceptsNothing()
    {
        var limits = new TelemetryLimits { MaxItems = 2 };

        TelemetryParseResult result = Parse("[{\"id\":\"a\",\"t\":1},\n {\"id\":\"b\",\"t\":2},\n {\"id\":\"c\",\"t\":3}]", limits: limits);

        Assert.Empty(result.Accepted);
        Assert.Empty(result.Rejected);
        Assert.Equal(new MalformedBody("too many readings: at most 2 per request", 3, 1), result.Malformed);
    }

    [Fact]
    public void TooManyNdJsonLines_IsMalformedAndAcceptsNothing()
    {
        var limits = new TelemetryLimits { MaxItems = 2 };
        TelemetryParser parser = new(limits);

        TelemetryParseResult result = parser.Parse("{\"id\":\"a\",\"t\":1}\n\n{\"id\":\"b\",\"t\":2}\n{\"id\":\"c\",\"t\":3}\n"u8, TelemetryBodyKind.NdJson, ReceivedAtMs);

        Assert.Empty(result.Accepted);
        Assert.Empty(result.Rejected);
        Assert.Equal(new MalformedBody("too many readings: at most 2 per request", 4, 0), result.Malformed);
    }

    [Fact]
    public void ExactlyMaxItems_IsAccepted()
    {
        var limits = new TelemetryLimits { MaxItems = 2 };

        TelemetryParseResult result = Parse("[{\"id\":\"a\",\"t\":1},{\"id\":\"b\",\"t\":2}]", limits: limits);

        Assert.Null(result.Malformed);
        Assert.Equal(2, result.Accepted.Count);
    }

    [Fact]
    public void Utf8ByteOrderMark_IsSkipped()
    {
        Reading reading = Single(new TelemetryParser(new TelemetryLimits()).Parse("\uFEFF{\"id\":\"a\",\"t\":1}"u8, TelemetryBodyKind.Json, ReceivedAtMs));

        Assert.Equal("a", reading.SensorId);
    }

    // ---- timestamps -------------------------------------------------------------------------------

    [Theory]
    [InlineData("1234567890", 1_234_567_890_000)]
    [InlineData("1234567890.5", 1_234_567_890_500)]
    [InlineData("100000000000", 100_000_000_000)]
    [InlineData("1699999999123", 1_699_999_999_123)]
    [InlineData("0", 0)]
    [InlineData("\"2024-05-01T12:00:00Z\"", 1_714_564_800_000)]
    [InlineData("\"2024-05-01T14:00:00.250+02:00\"", 1_714_564_800_250)]
    [InlineData("\"2024-05-01T12:00:00\"", 1_714_564_800_000)]
    [InlineData("null", ReceivedAtMs)]
    public void Timestamp_IsEpochSecondsMillisecondsOrIso(string json, long expectedMs)
    {
        Reading reading = Single(Parse($$"""{"id":"a","t":1,"timestamp":{{json}}}"""));

        Assert.Equal(expectedMs, reading.TimestampMs);
    }

    [Fact]
    public void AbsentTimestamp_IsTimeOfReceipt()
    {
        Assert.Equal(ReceivedAtMs, Single(Parse("""{"id":"a","t":1}""")).TimestampMs);
    }

    [Theory]
    [InlineData("true")]
    [InlineData("\"yesterday\"")]
    [InlineData("\"1234567890\"")]
    [InlineData("\"12:00\"")]
    [InlineData("{}")]
    [InlineData("[1]")]
    [InlineData("1e300")]
    public void Timestamp_OfWrongTypeOrUnparseable_IsRejected(string json)
    {
        Assert.Equal(
            "timestamp must be epoch seconds, epoch milliseconds or an ISO-8601 string",
            SingleError($$"""{"id":"a","t":1,"timestamp":{{json}}}"""));
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("\"1969-12-31T23:59:59Z\"")]
    public void NegativeTimestamp_IsRejected(string json)
    {
        Assert.Equal("timestamp must not be negative", SingleError($$"""{"id":"a","t":1,"timestamp":{{json}}}"""));
    }

    [Fact]
    public void FutureTimestamp_BeyondSkew_IsRejected()
    {
        // ReceivedAtMs + 3600.5 s
        Assert.Equal(
            "timestamp is 3601 s in the future (at most 300 s allowed)",
            SingleError("""{"id":"a","t":1,"timestamp":1800003600500}"""));

        // Just below 1e11 is still epoch seconds (year 5138).
        Assert.Equal(
            "timestamp is 98199999999 s in the future (at most 300 s allowed)",
            SingleError("""{"id":"a","t":1,"timestamp":99999999999}"""));
    }

    [Fact]
    public void FutureTimestamp_WithinSkew_IsAccepted()
    {
        Assert.Equal(1_800_000_300_000, Single(Parse("""{"id":"a","t":1,"timestamp":1800000300}""")).TimestampMs);
    }

    // ---- sensor id --------------------------------------------------------------------------------

    [Theory]
    [InlineData("""{"t":1}""")]
    [InlineData("""{"id":"","t":1}""")]
    [InlineData("""{"id":null,"t":1}""")]
    [InlineData("""{"Id":"a","t":1}""")]
    public void MissingId_IsRejected(string body)
    {
        Assert.Equal("missing sensor id: expected one of id, sensor, sensorId, deviceId, nodo", SingleError(body));
    }

    [Fact]
    public void OversizedId_IsRejected()
    {
        Assert.Equal("sensor id is longer than 128 characters", SingleError($$"""{"id":"{{new string('x', 129)}}","t":1}"""));
        Assert.Equal(new string('x', 128), Single(Parse($$"""{"id":"{{new string('x', 128)}}","t":1}""")).SensorId);
    }

    /// <summary>
    /// Sensor ids are ASCII (issue 10 item 2): look-alikes from other scripts, full-width and accented forms are refused,
    /// so that two ids that look the same are the same id.
    /// </summary>
    [Theory]
    [InlineData("a b", "contains U+0020")]
    [InlineData("a/b", "contains '/' (U+002F)")]
    [InlineData("a\\u0000", "contains U+0000")]
    [InlineData("a#", "contains '#' (U+0023)")]
    [InlineData("s\\u0430nsor", "contains 'а' (U+0430)")] // Cyrillic a, looks like the Latin one
    [InlineData("ｓensor", "contains 'ｓ' (U+FF53)")] // full-width s
    [InlineData("café", "contains 'é' (U+00E9)")]
    [InlineData("cafe\\u0301", "contains '\u0301' (U+0301)")] // e and a combining acute accent
    public void IdWithBadCharacters_IsRejected(string id, string problem)
    {
        Assert.Equal(
            $"sensor id {problem}: a sensor id is 1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'",
            SingleError($$"""{"id":"{{id}}","t":1}"""));
    }

    [Fact]
    public void IdWithAllowedPunctuation_IsAccepted()
    {
        Assert.Equal("site-1_a.b:c@d", Single(Parse("""{"deviceId":"site-1_a.b:c@d","t":1}""")).SensorId);
    }

    [Fact]
    public void IntegerId_IsItsDecimalText()
    {
        Assert.Equal("12345678901234567890", Single(Parse("""{"sensorId":12345678901234567890,"t":1}""")).SensorId);
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("true")]
    [InlineData("{}")]
    public void IdOfWrongType_IsRejected(string json)
    {
        Assert.Equal("sensor id field 'sensor' must be a string or an integer", SingleError($$"""{"sensor":{{json}},"t":1}"""));
    }

    [Fact]
    public void IdFields_FirstInPriorityOrderWins_OthersAreIgnored()
    {
        Reading reading = Single(Parse("""{"nodo":7,"deviceId":{"x":1},"sensor":"S","id":"I","sensorId":"X","t":1}"""));

        Assert.Equal("I", reading.SensorId);
        Assert.Equal([M("t", 1)], reading.Metrics);
        Assert.Null(reading.Attributes);
    }

    // ---- metrics ----------------------------------------------------------------------------------

    [Fact]
    public void NonFiniteMetric_IsRejected()
    {
        Assert.Equal("metric 'temp' is not a finite number", SingleError("""{"id":"a","temp":1e400}"""));
        Assert.Equal("metric 'temp' is not a finite number", SingleError("""{"id":"a","metrics":{"temp":-1e400}}"""));
    }

    [Fact]
    public void ControlCharactersInNamesAndValues_AreRejected_WithTheFieldNamed()
    {
        Assert.Equal("attribute 'light' contains the control character U+0000", SingleError("""{"id":"a","t":1,"light":"o\u0000n"}"""));
        Assert.Equal("attribute 'light' contains the control character U+0009", SingleError("""{"id":"a","t":1,"light":"o\tn"}"""));
        Assert.Equal("metadata.location contains the control character U+000A", SingleError("""{"id":"a","t":1,"metadata":{"location":"x\ny"}}"""));
        Assert.Equal("field 'location' contains the control character U+007F", SingleError("""{"id":"a","t":1,"location":"x\u007f"}"""));
        Assert.Equal("metric name contains the control character U+0001", SingleError("""{"id":"a","metrics":{"te\u0001mp":1}}"""));
        Assert.Equal("attribute name contains the control character U+0085", SingleError("""{"id":"a","t":1,"x\u0085":"on"}"""));
        // A lone surrogate cannot be stored either.
        Assert.Equal("attribute 'light' is not valid text (invalid UTF-8 or a lone surrogate)", SingleError("""{"id":"a","t":1,"light":"\ud800"}"""));
        // Other Unicode text round-trips as sent.
        Assert.Equal([new AttributeValue("light", "é ☀ 中 🌡")], Parse("""{"id":"a","t":1,"light":"é ☀ 中 🌡"}""").Accepted[0].Attributes!);
    }

    [Fact]
    public void MetricBeyondTheMagnitudeLimit_IsRejected_SoThatMinuteSumsStayFinite()
    {
        // Two readings of 1e308 in one minute summed to Infinity, which no JSON writer accepts.
        Assert.Equal("metric 'temp' is 1E+308: values must be between -1e15 and 1e15", SingleError("""{"id":"a","temp":1e308}"""));
        Assert.Equal("metric 'temp' is -1000000000000001: values must be between -1e15 and 1e15",
            SingleError("""{"id":"a","metrics":{"temp":-1000000000000001}}"""));
        Assert.Equal([M("temp", 1e15), M("low", -1e15)], Parse("""{"id":"a","metrics":{"temp":1e15,"low":-1e15}}""").Accepted[0].Metrics);
    }

    [Fact]
    public void MetricsObject_MakesTopLevelNumbersIgnored_EvenInvalidOnes()
    {
        Reading reading = Single(Parse("""{"id":"a","bad":1e400,"extra":5,"metrics":{"temp":21.5},"mode":"eco"}"""));

        Assert.Equal([M("temp", 21.5)], reading.Metrics);
        Assert.Equal([A("mode", "eco")], reading.Attributes!);
    }

    [Fact]
    public void TooManyMetrics_IsRejected()
    {
        var limits = new TelemetryLimits { MaxMetrics = 2 };

        Assert.Equal("too many metrics: 4 (at most 2)", SingleError("""{"id":"a","m1":1,"m2":2,"m3":3,"m4":4}""", limits));
        Assert.Equal("too many metrics: 3 (at most 2)", SingleError("""{"id":"a","metrics":{"m1":1,"m2":2,"m3":3}}""", limits));
        Assert.Equal(2, Single(Parse("""{"id":"a","metrics":{"m1":1,"m2":2}}""", limits: limits)).Metrics.Length);
    }

    [Theory]
    [InlineData("""{"id":"a","metrics":{"temp":"hot"}}""", "metric 'temp' must be a number")]
    [InlineData("""{"id":"a","metrics":{"temp":null}}""", "metric 'temp' must be a number")]
    [InlineData("""{"id":"a","metrics":{"temp":{"v":1}}}""", "metric 'temp' must be a number")]
    [InlineData("""{"id":"a","metrics":[1]}""", "metrics must be an object")]
    [InlineData("""{"id":"a","metrics":{"temp":1,"temp":2}}""", "duplicate metric 'temp'")]
    [InlineData("""{"id":"a","temp":1,"temp":2}""", "duplicate field 'temp'")]
    [InlineData("""{"id":"a","temp":1,"temp":"x"}""", "duplicate field 'temp'")]
    [InlineData("""{"id":"a","t":1,"timestamp":1,"timestamp":2}""", "duplicate field 'timestamp'")]
    [InlineData("""{"id":"a","metrics":{"":1}}""", "metric name must not be empty")]
    [InlineData("""{"id":"a","":1}""", "metric name must not be empty")]
    [InlineData("""{"id":"a","t":1,"":"x"}""", "attribute name must not be empty")]
    public void BadMetrics_AreRejected(string body, string error)
    {
        Assert.Equal(error, SingleError(body));
    }

    [Fact]
    public void LongMetricName_IsRejected()
    {
        var limits = new TelemetryLimits { MaxNameLength = 20 };

        Assert.Equal(
            "metric name 'abcdefghijklmnopqrst...' is longer than 20 characters",
            SingleError("""{"id":"a","abcdefghijklmnopqrstu":1}""", limits));
    }

    [Fact]
    public void ReadingWithoutMetricsAttributesOrMetadata_IsRejected()
    {
        Assert.Equal("reading has no metrics", SingleError("""{"id":"a","timestamp":1,"x":null}"""));
        Assert.Equal("reading has no metrics", SingleError("""{"id":"a","metrics":{},"metadata":{}}"""));
    }

    [Fact]
    public void ReadingWithOnlyAttributesOrMetadata_IsAccepted()
    {
        Reading onlyAttributes = Single(Parse("""{"id":"a","door":"open","armed":true,"tamper":false}"""));
        Assert.Empty(onlyAttributes.Metrics);
        Assert.Equal([A("door", "open"), A("armed", "true"), A("tamper", "false")], onlyAttributes.Attributes!);

        Reading onlyMetadata = Single(Parse("""{"id":"a","metadata":{"model":"X1"}}"""));
        Assert.Empty(onlyMetadata.Metrics);
        Assert.Null(onlyMetadata.Attributes);
        Assert.Equal("X1", onlyMetadata.Metadata!.Model);
    }

    // ---- attributes, metadata, other types --------------------------------------------------------

    [Fact]
    public void LongAttributeValue_IsRejected()
    {
        var limits = new TelemetryLimits { MaxStringValueLength = 3 };

        Assert.Equal("attribute 'light' is longer than 3 characters", SingleError("""{"id":"a","light":"dimmed"}""", limits));
    }

    [Fact]
    public void TooManyAttributes_IsRejected()
    {
        var limits = new TelemetryLimits { MaxAttributes = 1 };

        Assert.Equal("too many attributes: 2 (at most 1)", SingleError("""{"id":"a","x":"1","y":true}""", limits));
    }

    [Theory]
    [InlineData("""{"id":"a","t":1,"metadata":5}""", "metadata must be an object")]
    [InlineData("""{"id":"a","t":1,"metadata":{"site":{"x":1}}}""", "metadata.site must be a string, number or boolean")]
    [InlineData("""{"id":"a","t":1,"metadata":{"model":["a"]}}""", "metadata.model must be a string, number or boolean")]
    [InlineData("""{"id":"a","t":1,"metadata":{"model":"a","model":"b"}}""", "duplicate field 'metadata.model'")]
    [InlineData("""{"id":"a","t":1,"metadata":{"k":"a","k":"b"}}""", "duplicate field 'metadata.k'")]
    [InlineData("""{"id":"a","t":1,"config":{"x":1}}""", "field 'config' must be a number, string or boolean")]
    [InlineData("""{"id":"a","t":1,"samples":[1,2]}""", "field 'samples' must be a number, string or boolean")]
    [InlineData("""{"id":"a","t":1,"location":{"lat":1}}""", "field 'location' must be a number, string or boolean")]
    public void WrongTypes_AreRejected(string body, string error)
    {
        Assert.Equal(error, SingleError(body));
    }

    [Fact]
    public void Metadata_KnownFieldsExtraAndTopLevelLocationOwner()
    {
        Reading reading = Single(Parse("""
            {"id":"a","t":1,"location":"roof","owner":"ops",
             "metadata":{"version":1.0,"owner":"lab","firmware":"2.1","slot":3,"indoor":false,"gone":null}}
            """));

        SensorMetadata metadata = reading.Metadata!;
        Assert.Null(metadata.Model);
        Assert.Equal("roof", metadata.Location);
        Assert.Equal("lab", metadata.Owner);
        Assert.Equal("1.0", metadata.Version);
        Assert.Equal(
            new Dictionary<string, string> { ["firmware"] = "2.1", ["slot"] = "3", ["indoor"] = "false" },
            metadata.Extra);
        Assert.Null(reading.Attributes);
        Assert.Equal([M("t", 1)], reading.Metrics);
    }

    [Fact]
    public void TopLevelNulls_AreIgnored()
    {
        Reading reading = Single(Parse("""{"id":"a","x":null,"metrics":null,"metadata":null,"timestamp":null,"t":1}"""));

        Assert.Equal([M("t", 1)], reading.Metrics);
        Assert.Null(reading.Metadata);
    }

    [Fact]
    public void EscapedNamesAndValues_AreUnescaped()
    {
        Reading reading = Single(Parse("""{"\u0069d":"s\u0031","temp\u00e9":1,"note":"a\"b"}"""));

        Assert.Equal("s1", reading.SensorId);
        Assert.Equal([M("tempé", 1)], reading.Metrics);
        Assert.Equal([A("note", "a\"b")], reading.Attributes!);
    }

    [Fact]
    public void ErrorInsideAnItem_SkipsTheRestOfThatItemOnly()
    {
        TelemetryParseResult result = Parse("""[{"id":"a","metrics":{"t":"x","u":{"deep":[1,{"k":2}]}},"v":3},{"id":"b","t":1}]""");

        Assert.Null(result.Malformed);
        Assert.Equal([new ItemError(0, "metric 't' must be a number")], result.Rejected);
        Assert.Equal("b", Assert.Single(result.Accepted).SensorId);
    }

    // ---- name cache -------------------------------------------------------------------------------

    [Fact]
    public void MetricNames_AreTheSameStringInstanceAcrossReadings()
    {
        var parser = new TelemetryParser(new TelemetryLimits());

        TelemetryParseResult first = parser.Parse("[{\"id\":\"a\",\"temperature\":1},{\"id\":\"b\",\"temperature\":2}]"u8, TelemetryBodyKind.Json, ReceivedAtMs);
        TelemetryParseResult second = parser.Parse("{\"id\":\"c\",\"metrics\":{\"temperature\":3},\"light\":\"on\"}"u8, TelemetryBodyKind.Json, ReceivedAtMs);

        string name = first.Accepted[0].Metrics[0].Name;
        Assert.Equal("temperature", name);
        Assert.Same(name, first.Accepted[1].Metrics[0].Name);
        Assert.Same(name, second.Accepted[0].Metrics[0].Name);
    }
}
