using System.Net;
using System.Text;
using System.Text.Json;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>POST /api/v1/telemetry in each input format and body framing, and what GET /api/v1/sensors shows of it.</summary>
public sealed class TelemetryApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    private static object Stats(string metric, params double[] values) => new
    {
        metric,
        count = values.Length,
        min = values.Min(),
        max = values.Max(),
        sum = values.Sum(),
        avg = values.Sum() / values.Length,
        first = values[0],
        last = values[^1],
    };

    private async Task<JsonElement> PostAsync(HttpContent content, HttpStatusCode expected = HttpStatusCode.Accepted, HttpClient? client = null)
    {
        var response = await (client ?? _operator).PostAsync("/api/v1/telemetry", content);
        return await response.ExpectAsync(expected);
    }

    /// <summary>Polls GET /sensors/{id} until <paramref name="ready"/> holds for the body.</summary>
    private Task<JsonElement> SensorAsync(string id, Func<JsonElement, bool> ready) =>
        Eventually.Json(async () =>
        {
            var response = await _operator.GetAsync($"/api/v1/sensors/{id}");
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return null;
            }
            var body = await response.BodyAsync();
            return ready(body) ? body : null;
        }, what: $"sensor {id}");

    [Fact]
    public async Task SeedSlideFormat_AsOneObject_IsStored_AndShownLive()
    {
        var window = factory.NextWindow();
        var t0 = window + 5_000;
        var id = Ids.New("slide");

        var accepted = await PostAsync(Json($$$"""
            {"sensor":"{{{id}}}","temperature":22,"humidity":50,"light":"on",
             "volume_control":0.5,"timestamp":{{{t0 / 1000}}},
             "metadata":{"model":"HW-MD202","location":"garden","version":"1.0.0"}}
            """));
        JsonAssert.Equal(new { accepted = 1, rejected = Array.Empty<object>() }, accepted);

        var sensor = await SensorAsync(id, _ => true);
        JsonAssert.Equal(new
        {
            id,
            lastSeen = T(t0),
            metadata = new { model = "HW-MD202", location = "garden", version = "1.0.0" },
            latest = new Dictionary<string, double> { ["humidity"] = 50, ["temperature"] = 22, ["volume_control"] = 0.5 },
            attributes = new Dictionary<string, string> { ["light"] = "on" },
            lastReadings = new[]
            {
                new
                {
                    timestamp = T(t0),
                    metrics = new Dictionary<string, double> { ["temperature"] = 22, ["humidity"] = 50, ["volume_control"] = 0.5 },
                    attributes = new Dictionary<string, string> { ["light"] = "on" },
                    late = false,
                },
            },
            currentMinute = new
            {
                minute = T(window),
                metrics = new[] { Stats("humidity", 50), Stats("temperature", 22), Stats("volume_control", 0.5) },
            },
            lateCount = 0,
            // What the device sent; no operator set anything, so it is also the metadata in effect.
            deviceMetadata = new { model = "HW-MD202", location = "garden", version = "1.0.0" },
        }, sensor);
    }

    [Fact]
    public async Task KafkaEngineFormat_AsArray_IsStoredPerSensor()
    {
        var window = factory.NextWindow();
        var t0 = window + 1_000;
        var a = Ids.New("kafka");
        var b = Ids.New("kafka");

        var accepted = await PostAsync(Json($$$"""
            [
              {"id":"{{{a}}}","timestamp":{{{t0}}},"metrics":{"hum":49,"temp":34}},
              {"id":"{{{a}}}","timestamp":{{{t0 + 10_000}}},"metrics":{"hum":51,"temp":35.5}},
              {"id":"{{{b}}}","timestamp":{{{t0 + 20_000}}},"metrics":{"hum":60}}
            ]
            """));
        JsonAssert.Equal(new { accepted = 3, rejected = Array.Empty<object>() }, accepted);

        var sensorA = await SensorAsync(a, s => s.GetProperty("lastReadings").GetArrayLength() == 2);
        JsonAssert.Equal(new
        {
            id = a,
            lastSeen = T(t0 + 10_000),
            latest = new Dictionary<string, double> { ["hum"] = 51, ["temp"] = 35.5 },
            lastReadings = new[]
            {
                new { timestamp = T(t0 + 10_000), metrics = new Dictionary<string, double> { ["hum"] = 51, ["temp"] = 35.5 }, late = false },
                new { timestamp = T(t0), metrics = new Dictionary<string, double> { ["hum"] = 49, ["temp"] = 34 }, late = false },
            },
            currentMinute = new { minute = T(window), metrics = new[] { Stats("hum", 49, 51), Stats("temp", 34, 35.5) } },
            lateCount = 0,
        }, sensorA);

        var sensorB = await SensorAsync(b, _ => true);
        JsonAssert.Equal(new Dictionary<string, double> { ["hum"] = 60 }, sensorB.GetProperty("latest"));
    }

    [Fact]
    public async Task SerialNodeFormat_AsNdJson_IsStored()
    {
        var window = factory.NextWindow();
        var id = Ids.New("comuna");

        var accepted = await PostAsync(NdJson(
            $$$"""{"nodo":"{{{id}}}","humedad":50,"temperatura":22,"sensacion":23,"radiacion":3.1,"timestamp":"{{{Iso(window + 2_000)}}}"}""" + "\n"
            + "\n"
            + $$$"""{"nodo":"{{{id}}}","humedad":52,"temperatura":21,"sensacion":22,"radiacion":2.9,"timestamp":"{{{Iso(window + 32_000)}}}"}""" + "\r\n"));
        JsonAssert.Equal(new { accepted = 2, rejected = Array.Empty<object>() }, accepted);

        var sensor = await SensorAsync(id, s => s.GetProperty("lastReadings").GetArrayLength() == 2);
        JsonAssert.Equal(new
        {
            id,
            lastSeen = T(window + 32_000),
            latest = new Dictionary<string, double> { ["humedad"] = 52, ["radiacion"] = 2.9, ["sensacion"] = 22, ["temperatura"] = 21 },
            lastReadings = new[]
            {
                new
                {
                    timestamp = T(window + 32_000),
                    metrics = new Dictionary<string, double> { ["humedad"] = 52, ["temperatura"] = 21, ["sensacion"] = 22, ["radiacion"] = 2.9 },
                    late = false,
                },
                new
                {
                    timestamp = T(window + 2_000),
                    metrics = new Dictionary<string, double> { ["humedad"] = 50, ["temperatura"] = 22, ["sensacion"] = 23, ["radiacion"] = 3.1 },
                    late = false,
                },
            },
            currentMinute = new
            {
                minute = T(window),
                metrics = new[] { Stats("humedad", 50, 52), Stats("radiacion", 3.1, 2.9), Stats("sensacion", 23, 22), Stats("temperatura", 22, 21) },
            },
            lateCount = 0,
        }, sensor);
    }

    [Fact]
    public async Task EachFormat_IsAccepted_AsObjectArrayAndNdJson()
    {
        var window = factory.NextWindow();
        var slide = Ids.New("fmt-slide");
        var kafka = Ids.New("fmt-kafka");
        var serial = Ids.New("fmt-serial");
        string Slide(int i) => $$$"""{"sensor":"{{{slide}}}","temperature":{{{20 + i}}},"light":"on","timestamp":{{{(window + i * 1_000) / 1000}}}}""";
        string Kafka(int i) => $$$"""{"id":"{{{kafka}}}","timestamp":{{{window + i * 1_000}}},"metrics":{"temp":{{{20 + i}}}}}""";
        string Serial(int i) => $$$"""{"nodo":"{{{serial}}}","temperatura":{{{20 + i}}},"timestamp":"{{{Iso(window + i * 1_000)}}}"}""";

        foreach (var format in new Func<int, string>[] { Slide, Kafka, Serial })
        {
            JsonAssert.Equal(new { accepted = 1, rejected = Array.Empty<object>() }, await PostAsync(Json(format(1))));
            JsonAssert.Equal(new { accepted = 2, rejected = Array.Empty<object>() }, await PostAsync(Json($"[{format(2)},{format(3)}]")));
            JsonAssert.Equal(new { accepted = 2, rejected = Array.Empty<object>() }, await PostAsync(NdJson($"{format(4)}\n{format(5)}\n")));
        }

        foreach (var (id, metric) in new[] { (slide, "temperature"), (kafka, "temp"), (serial, "temperatura") })
        {
            var sensor = await SensorAsync(id, s => s.GetProperty("lastReadings").GetArrayLength() == 5);
            JsonAssert.Equal(new { minute = T(window), metrics = new[] { Stats(metric, 21, 22, 23, 24, 25) } }, sensor.GetProperty("currentMinute"));
            Assert.Equal(25, sensor.GetProperty("latest").GetProperty(metric).GetDouble());
        }
    }

    [Fact]
    public async Task ReadingForAClosedMinute_IsCountedLate_AndNotAggregated()
    {
        var window = factory.NextWindow();
        var id = Ids.New("late");
        await PostAsync(Json($$$"""{"id":"{{{id}}}","timestamp":{{{window + 5_000}}},"v":1}"""));
        await factory.CloseMinuteAsync(window);

        var accepted = await PostAsync(Json($$$"""{"id":"{{{id}}}","timestamp":{{{window + 6_000}}},"v":2}"""));
        JsonAssert.Equal(new { accepted = 1, rejected = Array.Empty<object>() }, accepted);

        var sensor = await SensorAsync(id, s => s.GetProperty("lateCount").GetInt64() == 1);
        JsonAssert.Equal(new
        {
            id,
            lastSeen = T(window + 5_000),
            latest = new Dictionary<string, double> { ["v"] = 1 },
            lastReadings = new[]
            {
                new { timestamp = T(window + 6_000), metrics = new Dictionary<string, double> { ["v"] = 2 }, late = true },
                new { timestamp = T(window + 5_000), metrics = new Dictionary<string, double> { ["v"] = 1 }, late = false },
            },
            lateCount = 1,
            lastLate = T(window + 6_000),
        }, sensor);

        var metrics = await Eventually.Json(async () =>
        {
            var body = await (await _operator.GetAsync($"/api/v1/sensors/{id}/metrics?from={Iso(window)}&to={Iso(window + 10 * 60_000)}")).ExpectAsync(HttpStatusCode.OK);
            return body.GetProperty("points").GetArrayLength() > 0 ? body : null;
        });
        JsonAssert.Equal(new[] { new { minute = T(window), metric = "v", count = 1, min = 1, max = 1, sum = 1, avg = 1, first = 1, last = 1 } },
            metrics.GetProperty("points"));
    }

    [Fact]
    public async Task Metrics_ReturnClosedMinutes_WithExactAggregates_FilteredByMetric()
    {
        var window = factory.NextWindow();
        var id = Ids.New("metrics");
        await PostAsync(NdJson($$$"""
            {"id":"{{{id}}}","timestamp":{{{window + 1_000}}},"metrics":{"temp":20,"hum":40}}
            {"id":"{{{id}}}","timestamp":{{{window + 30_000}}},"metrics":{"temp":22.5,"hum":41}}
            {"id":"{{{id}}}","timestamp":{{{window + 59_999}}},"metrics":{"temp":21}}
            {"id":"{{{id}}}","timestamp":{{{window + 60_000}}},"metrics":{"temp":25}}
            {"id":"{{{id}}}","timestamp":{{{window + 120_000}}},"metrics":{"temp":30}}
            """));
        await factory.CloseMinuteAsync(window + 60_000);

        var from = Iso(window);
        var to = Iso(window + 10 * 60_000);
        var all = await Eventually.Json(async () =>
        {
            var body = await (await _operator.GetAsync($"/api/v1/sensors/{id}/metrics?from={from}&to={to}")).SensorBodyAsync();
            return body is { } b && b.GetProperty("points").GetArrayLength() == 3 ? b : null;
        }, what: "two closed minutes");
        JsonAssert.Equal(new
        {
            sensorId = id,
            from = T(window),
            to = T(window + 10 * 60_000),
            points = new[]
            {
                new { minute = T(window), metric = "hum", count = 2, min = 40.0, max = 41.0, sum = 81.0, avg = 40.5, first = 40.0, last = 41.0 },
                new { minute = T(window), metric = "temp", count = 3, min = 20.0, max = 22.5, sum = 63.5, avg = 63.5 / 3, first = 20.0, last = 21.0 },
                new { minute = T(window + 60_000), metric = "temp", count = 1, min = 25.0, max = 25.0, sum = 25.0, avg = 25.0, first = 25.0, last = 25.0 },
            },
        }, all);

        var onlyHum = await (await _operator.GetAsync($"/api/v1/sensors/{id}/metrics?from={from}&to={to}&metric=hum")).ExpectAsync(HttpStatusCode.OK);
        JsonAssert.Equal(new
        {
            sensorId = id,
            from = T(window),
            to = T(window + 10 * 60_000),
            metric = "hum",
            points = new[] { new { minute = T(window), metric = "hum", count = 2, min = 40.0, max = 41.0, sum = 81.0, avg = 40.5, first = 40.0, last = 41.0 } },
        }, onlyHum);

        // [from, to): the second minute alone.
        var second = await (await _operator.GetAsync($"/api/v1/sensors/{id}/metrics?from={Iso(window + 60_000)}&to={Iso(window + 120_000)}")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(1, second.GetProperty("points").GetArrayLength());
        Assert.Equal(T(window + 60_000), second.GetProperty("points")[0].GetProperty("minute").GetDateTimeOffset());
    }

    [Fact]
    public async Task Metrics_RejectABadRange_AndUnknownSensors()
    {
        var window = factory.NextWindow();
        var id = Ids.New("range");
        await PostAsync(Json($$$"""{"id":"{{{id}}}","timestamp":{{{window + 1_000}}},"v":1}"""));
        await SensorAsync(id, _ => true);

        await (await _operator.GetAsync($"/api/v1/sensors/{id}/metrics?from={Iso(window)}&to={Iso(window)}"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]> { ["from"] = ["from must be before to"] });
        await (await _operator.GetAsync($"/api/v1/sensors/{id}/metrics?from={Iso(window + 60_000)}&to={Iso(window)}"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]> { ["from"] = ["from must be before to"] });
        await (await _operator.GetAsync($"/api/v1/sensors/{id}/metrics?from=yesterday&to=2026-06-01"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]>
            {
                ["from"] = ["from must be an ISO-8601 time such as 2026-11-22T10:00:00Z, not 'yesterday'"],
            });
        await (await _operator.GetAsync($"/api/v1/sensors/{id}/metrics?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]> { ["to"] = ["the range may span at most 31 days"] });

        var unknown = Ids.New("never-posted");
        await (await _operator.GetAsync($"/api/v1/sensors/{unknown}/metrics?from={Iso(window)}&to={Iso(window + 60_000)}"))
            .ExpectProblemAsync(HttpStatusCode.NotFound, "Sensor not found", $"No reading of sensor '{unknown}' has been received.");
        await (await _operator.GetAsync($"/api/v1/sensors/{unknown}"))
            .ExpectProblemAsync(HttpStatusCode.NotFound, "Sensor not found", $"No reading of sensor '{unknown}' has been received.");
    }

    [Fact]
    public async Task SensorList_IsPaged_AndSearchable()
    {
        var window = factory.NextWindow();
        var prefix = Ids.New("page");
        var location = Ids.New("loc");
        await PostAsync(Json($$$"""
            [
              {"id":"{{{prefix}}}-c","timestamp":{{{window + 3_000}}},"t":3},
              {"id":"{{{prefix}}}-a","timestamp":{{{window + 1_000}}},"t":1,"metadata":{"model":"M1","location":"{{{location}}}"}},
              {"id":"{{{prefix}}}-b","timestamp":{{{window + 2_000}}},"t":2}
            ]
            """));

        var first = await Eventually.Json(async () =>
        {
            var body = await (await _operator.GetAsync($"/api/v1/sensors?search={prefix}&limit=2")).ExpectAsync(HttpStatusCode.OK);
            return body.GetProperty("total").GetInt32() == 3 ? body : null;
        }, what: "three sensors in the read store");
        JsonAssert.Equal(new
        {
            items = new object[]
            {
                new
                {
                    id = $"{prefix}-a", lastSeen = T(window + 1_000), metadata = new { model = "M1", location },
                    latest = new Dictionary<string, double> { ["t"] = 1 }, lateCount = 0,
                },
                new { id = $"{prefix}-b", lastSeen = T(window + 2_000), latest = new Dictionary<string, double> { ["t"] = 2 }, lateCount = 0 },
            },
            total = 3,
            offset = 0,
            limit = 2,
        }, first);

        var second = await (await _operator.GetAsync($"/api/v1/sensors?search={prefix}&offset=2&limit=2")).ExpectAsync(HttpStatusCode.OK);
        JsonAssert.Equal(new
        {
            items = new[] { new { id = $"{prefix}-c", lastSeen = T(window + 3_000), latest = new Dictionary<string, double> { ["t"] = 3 }, lateCount = 0 } },
            total = 3,
            offset = 2,
            limit = 2,
        }, second);

        var byLocation = await (await _operator.GetAsync($"/api/v1/sensors?search={location}")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(1, byLocation.GetProperty("total").GetInt32());
        Assert.Equal(50, byLocation.GetProperty("limit").GetInt32());
        Assert.Equal($"{prefix}-a", byLocation.GetProperty("items")[0].GetProperty("id").GetString());

        await (await _operator.GetAsync("/api/v1/sensors?offset=-1&limit=0"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]>
            {
                ["offset"] = ["offset must be 0 or more"],
                ["limit"] = ["limit must be between 1 and 1000"],
            });
        await (await _operator.GetAsync("/api/v1/sensors?limit=1001"))
            .ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]> { ["limit"] = ["limit must be between 1 and 1000"] });
    }

    [Fact]
    public async Task BodyOverTheLimit_Is413_WithOrWithoutContentLength()
    {
        var window = factory.NextWindow();
        var id = Ids.New("big");
        var item = $$$"""{"id":"{{{id}}}","timestamp":{{{window + 1_000}}},"v":1}""";
        var body = new StringBuilder("[");
        while (body.Length <= ApiFactory.MaxBodyBytes)
        {
            body.Append(item).Append(',');
        }
        body.Append(item).Append(']');
        var detail = $"The body is larger than {ApiFactory.MaxBodyBytes} bytes; split the readings over several requests.";

        await (await _operator.PostAsync("/api/v1/telemetry", Json(body.ToString())))
            .ExpectProblemAsync(HttpStatusCode.RequestEntityTooLarge, "Request body too large", detail);

        var chunked = new StreamContent(new UnknownLengthStream(Encoding.UTF8.GetBytes(body.ToString())));
        chunked.Headers.ContentType = new("application/json");
        Assert.Null(chunked.Headers.ContentLength);
        await (await _operator.PostAsync("/api/v1/telemetry", chunked))
            .ExpectProblemAsync(HttpStatusCode.RequestEntityTooLarge, "Request body too large", detail);

        await (await _operator.GetAsync($"/api/v1/sensors/{id}")).ExpectAsync(HttpStatusCode.NotFound);

        // Exactly at the limit is fine (padded with trailing whitespace), with or without Content-Length.
        var fits = new StringBuilder("[");
        var count = 1;
        while (fits.Length + 2 * (item.Length + 1) <= ApiFactory.MaxBodyBytes)
        {
            fits.Append(item).Append(',');
            count++;
        }
        fits.Append(item).Append(']');
        fits.Append(' ', ApiFactory.MaxBodyBytes - fits.Length);
        var atLimit = Encoding.UTF8.GetBytes(fits.ToString());
        Assert.Equal(ApiFactory.MaxBodyBytes, atLimit.Length);
        var ok = new ByteArrayContent(atLimit);
        ok.Headers.ContentType = new("application/json");
        JsonAssert.Equal(new { accepted = count, rejected = Array.Empty<object>() }, await PostAsync(ok));
        var okChunked = new StreamContent(new UnknownLengthStream(atLimit));
        okChunked.Headers.ContentType = new("application/json");
        JsonAssert.Equal(new { accepted = count, rejected = Array.Empty<object>() }, await PostAsync(okChunked));

        // One byte more is not.
        var over = new ByteArrayContent([.. atLimit, (byte)' ']);
        over.Headers.ContentType = new("application/json");
        await (await _operator.PostAsync("/api/v1/telemetry", over))
            .ExpectProblemAsync(HttpStatusCode.RequestEntityTooLarge, "Request body too large", detail);
        var overChunked = new StreamContent(new UnknownLengthStream([.. atLimit, (byte)' ']));
        overChunked.Headers.ContentType = new("application/json");
        await (await _operator.PostAsync("/api/v1/telemetry", overChunked))
            .ExpectProblemAsync(HttpStatusCode.RequestEntityTooLarge, "Request body too large", detail);
    }

    [Fact]
    public async Task OtherMediaTypes_Are415()
    {
        var id = Ids.New("type");
        var reading = $$$"""{"id":"{{{id}}}","timestamp":{{{factory.NextWindow()}}},"v":1}""";

        await (await _operator.PostAsync("/api/v1/telemetry", new StringContent(reading, Encoding.UTF8, "text/plain")))
            .ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType, "Unsupported media type",
                "Content-Type 'text/plain; charset=utf-8' is not accepted: send application/json (an object or an array) or application/x-ndjson.");

        var none = new ByteArrayContent(Encoding.UTF8.GetBytes(reading));
        await (await _operator.PostAsync("/api/v1/telemetry", none))
            .ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType, "Unsupported media type",
                "Content-Type '' is not accepted: send application/json (an object or an array) or application/x-ndjson.");

        await (await _operator.GetAsync($"/api/v1/sensors/{id}")).ExpectAsync(HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("application/x-ndjson")]
    [InlineData("application/ndjson")]
    [InlineData("application/jsonl")]
    [InlineData("application/x-jsonlines")]
    [InlineData("application/json")]
    [InlineData("Application/JSON; charset=utf-8")]
    public async Task EveryDocumentedJsonMediaType_IsAccepted(string mediaType)
    {
        var id = Ids.New("media");
        var content = new StringContent($$$"""{"id":"{{{id}}}","timestamp":{{{factory.NextWindow()}}},"v":1}""" + "\n", Encoding.UTF8);
        content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(mediaType);
        JsonAssert.Equal(new { accepted = 1, rejected = Array.Empty<object>() }, await PostAsync(content));
        await SensorAsync(id, _ => true);
    }

    [Fact]
    public async Task NothingValid_Is400_WithEveryRejectedItem()
    {
        var window = factory.NextWindow();
        var id = Ids.New("none");
        var body = await (await _operator.PostAsync("/api/v1/telemetry", Json($$$"""
            [{"id":"{{{id}}}","timestamp":{{{window}}}}, {"timestamp":{{{window}}},"v":1}, "text"]
            """))).ExpectProblemAsync(HttpStatusCode.BadRequest, "No valid reading", "All 3 readings were rejected; see 'rejected'.");
        JsonAssert.Equal(new object[]
        {
            new { index = 0, error = "reading has no metrics" },
            new { index = 1, error = "missing sensor id: expected one of id, sensor, sensorId, deviceId, nodo" },
            new { index = 2, error = "item must be a JSON object" },
        }, body.GetProperty("rejected"));

        var empty = await (await _operator.PostAsync("/api/v1/telemetry", Json("[]")))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "No valid reading", "The body holds no reading.");
        JsonAssert.Equal(Array.Empty<object>(), empty.GetProperty("rejected"));

        await (await _operator.GetAsync($"/api/v1/sensors/{id}")).ExpectAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task SeedSlideSample_WithUnquotedVersion_IsMalformed_WithLineAndPosition()
    {
        var id = Ids.New("AAAA");
        var body = await (await _operator.PostAsync("/api/v1/telemetry", Json($$$"""
            {"sensor":"{{{id}}}","temperature":22,"humidity":50,"light":"on",
             "volume_control":0.5,"timestamp":1234567890,
             "metadata":{"model":"HW-MD202","location":"garden","version": 1.0.0}}
            """))).ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body",
                "malformed JSON at line 3, position 66: '.' is an invalid end of a number. Expected 'E' or 'e'.");
        Assert.Equal(3, body.GetProperty("line").GetInt64());
        Assert.Equal(66, body.GetProperty("position").GetInt64());

        await (await _operator.GetAsync($"/api/v1/sensors/{id}")).ExpectAsync(HttpStatusCode.NotFound);

        var empty = await (await _operator.PostAsync("/api/v1/telemetry", Json("  \n ")))
            .ExpectProblemAsync(HttpStatusCode.BadRequest, "Malformed request body", "request body is empty");
        Assert.Equal(1, empty.GetProperty("line").GetInt64());
        Assert.Equal(0, empty.GetProperty("position").GetInt64());
    }

    [Fact]
    public async Task DeviceKey_MayPostTelemetry_ButNotReadSensors()
    {
        var id = Ids.New("fleet");
        var device = factory.Device();
        var accepted = await PostAsync(Json($$$"""{"id":"{{{id}}}","timestamp":{{{factory.NextWindow()}}},"v":1}"""), client: device);
        JsonAssert.Equal(new { accepted = 1, rejected = Array.Empty<object>() }, accepted);

        await (await device.GetAsync($"/api/v1/sensors/{id}")).ExpectProblemAsync(HttpStatusCode.Forbidden, "Forbidden",
            $"This API key has the role 'device', which may not use GET /api/v1/sensors/{id}.");
        await SensorAsync(id, _ => true);
    }

    /// <summary>A stream that does not tell its length, so the request goes out chunked without Content-Length.</summary>
    private sealed class UnknownLengthStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }

    private static ByteArrayContent Compressed(string body, string encoding)
    {
        using var compressed = new MemoryStream();
        using (Stream zip = encoding switch
        {
            "gzip" => new System.IO.Compression.GZipStream(compressed, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true),
            "br" => new System.IO.Compression.BrotliStream(compressed, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true),
            _ => new System.IO.Compression.ZLibStream(compressed, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true),
        })
        {
            zip.Write(Encoding.UTF8.GetBytes(body));
        }

        var content = new ByteArrayContent(compressed.ToArray());
        content.Headers.ContentType = new("application/json");
        content.Headers.ContentEncoding.Add(encoding);
        return content;
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("br")]
    [InlineData("deflate")]
    public async Task CompressedBodies_AreDecoded_AndTheLimitCountsDecodedBytes(string encoding)
    {
        var window = factory.NextWindow();
        var id = Ids.New("zip");
        var body = $$$"""[{"id":"{{{id}}}","timestamp":{{{window + 1_000}}},"t":21.5},{"id":"{{{id}}}","timestamp":{{{window + 2_000}}},"t":22.5}]""";
        JsonAssert.Equal(new { accepted = 2, rejected = Array.Empty<object>() }, await PostAsync(Compressed(body, encoding)));
        await SensorAsync(id, s => s.GetProperty("lastSeen").ValueKind != JsonValueKind.Null);

        // A few hundred compressed bytes that decode to more than the limit: refused as the decoded body, nothing stored.
        var bomb = Ids.New("bomb");
        var big = $$$"""[{"id":"{{{bomb}}}","timestamp":{{{window + 1_000}}},"t":1}""" + new string(' ', ApiFactory.MaxBodyBytes) + "]";
        var content = Compressed(big, encoding);
        Assert.True(content.Headers.ContentLength < ApiFactory.MaxBodyBytes / 10);
        await (await _operator.PostAsync("/api/v1/telemetry", content)).ExpectProblemAsync(HttpStatusCode.RequestEntityTooLarge,
            "Request body too large", $"The body is larger than {ApiFactory.MaxBodyBytes} bytes; split the readings over several requests.");
        await (await _operator.GetAsync($"/api/v1/sensors/{bomb}")).ExpectAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task OtherEncodingsAndCharsets_Are415_AndNothingIsStored()
    {
        var window = factory.NextWindow();
        var id = Ids.New("enc");
        var body = $$$"""{"id":"{{{id}}}","timestamp":{{{window + 1_000}}},"t":1}""";

        var zstd = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        zstd.Headers.ContentType = new("application/json");
        zstd.Headers.ContentEncoding.Add("zstd");
        await (await _operator.PostAsync("/api/v1/telemetry", zstd)).ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType,
            "Unsupported media type", "Content-Encoding 'zstd' is not accepted: send the body uncompressed or compressed with gzip, br or deflate.");

        var utf16 = new StringContent(body, Encoding.Unicode, "application/json");
        await (await _operator.PostAsync("/api/v1/telemetry", utf16)).ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType,
            "Unsupported media type", "charset 'utf-16' is not accepted: bodies are UTF-8.");

        // Rules take UTF-8 only as well.
        var rule = new StringContent("{}", Encoding.Latin1, "application/json");
        await (await _operator.PostAsync("/api/v1/rules", rule)).ExpectProblemAsync(HttpStatusCode.UnsupportedMediaType,
            "Unsupported media type", "charset 'iso-8859-1' is not accepted: bodies are UTF-8.");

        await (await _operator.GetAsync($"/api/v1/sensors/{id}")).ExpectAsync(HttpStatusCode.NotFound);
        JsonAssert.Equal(new { accepted = 1, rejected = Array.Empty<object>() }, await PostAsync(Json(body)));
    }
}
