using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Npgsql;
using Grains.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>One reading of the known input: two metrics with exactly representable values (integers and halves).</summary>
public sealed record InputReading(string SensorId, long TimestampMs, double Temperature, double Humidity)
{
    public void WriteJson(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("id", SensorId);
        writer.WriteNumber("timestamp", TimestampMs);
        writer.WriteStartObject("metrics");
        writer.WriteNumber("temperature", Temperature);
        writer.WriteNumber("humidity", Humidity);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}

/// <summary>A batch of one partition's readings covering event seconds from <see cref="FirstSecond"/> on.</summary>
public sealed record InputBatch(int Partition, int FirstSecond, IReadOnlyList<InputReading> Readings);

/// <summary>
/// The known input: <see cref="Sensors"/> sensors, one reading each per second of event time for <see cref="Seconds"/> s
/// from <see cref="T0"/>, posted faster than real time, and then one closing reading per sensor (<see cref="Closing"/>).
/// A sensor's clock is its own event time, never beyond receipt time: <see cref="T0"/> is a minute start far enough in
/// the past that every timestamp, the closing ones included, is behind the wall clock when it is posted, so each
/// sensor's clock follows its readings and its closing reading closes its last minute at once. While the posting of a
/// sensor stalls (a broker outage), its clock runs on with receipt time; a stall longer than the allowed lateness would
/// make its next readings late, so a test with a long outage gives the silos a longer lateness.
/// The raw threshold rule <see cref="RuleId"/> (temperature &gt; 30) toggles a few times per sensor.
/// </summary>
public sealed class KnownInput
{
    public const string RuleId = "hot";
    public const double Threshold = 30;

    public KnownInput(int sensors, int seconds, int partitions, TimeSpan allowedLateness, string sensorPrefix = "s-")
    {
        if (seconds % 60 != 0 || seconds > 240)
        {
            throw new ArgumentOutOfRangeException(nameof(seconds), "whole minutes, at most 4");
        }
        Sensors = sensors;
        Seconds = seconds;
        Partitions = partitions;
        LatenessMs = (long)allowedLateness.TotalMilliseconds;
        // Every timestamp, up to the closing readings at T0 + Seconds + lateness + 1 s, at least 30 s behind now.
        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - seconds * 1000L - LatenessMs - 31_000;
        T0 = start - ((start % 60_000) + 60_000) % 60_000;
        SensorIds = Enumerable.Range(0, sensors).Select(s => $"{sensorPrefix}{s:000}").ToArray();
    }

    public long LatenessMs { get; }

    public int Sensors { get; }

    public int Seconds { get; }

    public int Partitions { get; }

    public long T0 { get; }

    public IReadOnlyList<string> SensorIds { get; }

    public int Count => Sensors * Seconds;

    /// <summary>Hot for 25 s out of every 75 s, at a different phase per sensor.</summary>
    public static bool IsHot(int s, int k) => (k + s * 11) / 25 % 3 == 0;

    public static double Temperature(int s, int k) => IsHot(s, k)
        ? 31 + (k * 3 + s) % 4 + k % 2 * 0.5
        : 20 + (k * 7 + s * 3) % 9 + k % 2 * 0.5;

    public static double Humidity(int s, int k) => 40 + (k + s) % 20;

    public InputReading Reading(int s, int k) => new(SensorIds[s], T0 + k * 1000L, Temperature(s, k), Humidity(s, k));

    /// <summary>
    /// The input as batches of about <paramref name="batchSize"/> readings, each batch of one partition (one append:
    /// all or nothing), in event-time order per partition.
    /// </summary>
    public IReadOnlyList<InputBatch>[] BatchesByPartition(int batchSize = 150)
    {
        var byPartition = new List<InputBatch>[Partitions];
        for (var p = 0; p < Partitions; p++)
        {
            var sensors = Enumerable.Range(0, Sensors).Where(s => Partitioner.PartitionOf(SensorIds[s], Partitions) == p).ToArray();
            byPartition[p] = [];
            if (sensors.Length == 0)
            {
                continue;
            }
            var window = Math.Max(1, batchSize / sensors.Length);
            for (var k0 = 0; k0 < Seconds; k0 += window)
            {
                var readings = new List<InputReading>();
                for (var k = k0; k < Math.Min(Seconds, k0 + window); k++)
                {
                    readings.AddRange(sensors.Select(s => Reading(s, k)));
                }
                byPartition[p].Add(new InputBatch(p, k0, readings));
            }
        }
        return byPartition;
    }

    /// <summary>The end of the input's minutes: readings at or after it are closing readings.</summary>
    public long EndMs => T0 + Seconds * 1000L;

    /// <summary>
    /// One reading for each of <paramref name="sensorIds"/> past the close of the input's last minute (its end + the
    /// allowed lateness + 1 s): it moves the sensor's clock past that close, so the minute is emitted, and it is cold, so
    /// every alert ends resolved. Its own minute stays open; the checks are about the input's minutes.
    /// </summary>
    public IReadOnlyList<InputReading> Closing(IEnumerable<string> sensorIds) =>
        sensorIds.Distinct().Select(id => new InputReading(id, EndMs + LatenessMs + 1_000, 0, 0)).ToArray();

    public static string RuleJson => $$"""
        {"id":"{{RuleId}}","name":"Too hot","enabled":true,"severity":"major","target":{"kind":"all"},
         "condition":{"kind":"threshold","metric":"temperature","on":"raw","operator":">","value":{{Threshold}}},"cooldownSeconds":0}
        """;
}

/// <summary>
/// Posts readings to the Api as a device would: JSON arrays, retried on 503 (after Retry-After) and on connection
/// errors; a batch counts as acknowledged only on 202. Remembers what was acknowledged and every answer.
/// </summary>
public sealed class TelemetryLoader(HttpClient device, Action<string> log)
{
    private readonly List<InputReading> _acknowledged = [];
    private readonly List<(TimeSpan At, int Status)> _answers = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _planned = 1;

    /// <summary>The first 503 seen: status, Retry-After, content type and body.</summary>
    public (int Status, string? RetryAfter, string? ContentType, string Body)? FirstUnavailable { get; private set; }

    public TimeSpan Now => _clock.Elapsed;

    public int AcknowledgedCount
    {
        get { lock (_acknowledged) return _acknowledged.Count; }
    }

    /// <summary>Acknowledged readings of the planned load, as a fraction of it.</summary>
    public double Progress => (double)AcknowledgedCount / _planned;

    public IReadOnlyList<InputReading> Acknowledged()
    {
        lock (_acknowledged) return _acknowledged.ToArray();
    }

    /// <summary>A reading acknowledged by another way in (an MQTT PUBACK): checked with the others.</summary>
    public void AcknowledgedElsewhere(InputReading reading)
    {
        lock (_acknowledged) _acknowledged.Add(reading);
    }

    /// <summary>Every answer: time since the loader was created and status (0: no answer, a connection error).</summary>
    public IReadOnlyList<(TimeSpan At, int Status)> Answers()
    {
        lock (_answers) return _answers.ToArray();
    }

    /// <summary>
    /// Posts the whole input, one sequential poster per partition (so each sensor's readings reach the log in order),
    /// paced at <paramref name="eventSecondsPerSecond"/> seconds of event time per second.
    /// </summary>
    public async Task RunAsync(KnownInput input, double eventSecondsPerSecond)
    {
        _planned = input.Count;
        var start = _clock.Elapsed;
        var batches = input.BatchesByPartition();
        log($"load: {input.Count} readings of {input.Sensors} sensors over {input.Seconds} s of event time from {DateTimeOffset.FromUnixTimeMilliseconds(input.T0):HH:mm:ss}, "
            + $"{batches.Sum(b => b.Count)} batches, {eventSecondsPerSecond} event s per s");
        await Task.WhenAll(batches.Select(partitionBatches => Task.Run(async () =>
        {
            foreach (var batch in partitionBatches)
            {
                var due = start + TimeSpan.FromSeconds(batch.FirstSecond / eventSecondsPerSecond);
                if (due > _clock.Elapsed)
                {
                    await Task.Delay(due - _clock.Elapsed);
                }
                await PostUntilAcceptedAsync(batch.Readings);
            }
        })));
        log($"load: done, {AcknowledgedCount} readings acknowledged");
    }

    /// <summary>Posts until the Api answers 202: after Retry-After on 503, after 250 ms on a connection error.</summary>
    public async Task PostUntilAcceptedAsync(IReadOnlyList<InputReading> readings, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromMinutes(2);
        // The same key on every attempt: an attempt answered 503 that did reach the log is not counted twice.
        var idempotencyKey = Guid.NewGuid().ToString("N");
        while (true)
        {
            var answer = await PostOnceAsync(readings, idempotencyKey);
            if (answer.Status == HttpStatusCode.Accepted)
            {
                return;
            }
            if (clock.Elapsed > limit)
            {
                throw new TimeoutException($"A batch of {readings.Count} readings was not accepted within {limit}: last answer {(int)answer.Status} {answer.Body}");
            }
            var wait = answer.Status == HttpStatusCode.ServiceUnavailable && int.TryParse(answer.RetryAfter, out var seconds)
                ? TimeSpan.FromSeconds(seconds)
                : TimeSpan.FromMilliseconds(250);
            await Task.Delay(wait);
        }
    }

    /// <summary>
    /// One POST. 202: the readings are acknowledged. 503: nothing is. No answer (connection error): status 0.
    /// Any other answer fails the test.
    /// </summary>
    public async Task<(HttpStatusCode Status, string? RetryAfter, string? ContentType, string Body)> PostOnceAsync(
        IReadOnlyList<InputReading> readings, string? idempotencyKey = null)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var reading in readings)
            {
                reading.WriteJson(writer);
            }
            writer.WriteEndArray();
        }
        using var content = new ByteArrayContent(buffer.ToArray());
        content.Headers.ContentType = new("application/json");
        HttpResponseMessage response;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/telemetry") { Content = content };
            if (idempotencyKey is not null)
            {
                request.Headers.Add("Idempotency-Key", idempotencyKey);
            }
            response = await device.SendAsync(request);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            lock (_answers) _answers.Add((_clock.Elapsed, 0));
            return (0, null, null, e.Message);
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync();
            var status = (int)response.StatusCode;
            lock (_answers) _answers.Add((_clock.Elapsed, status));
            var retryAfter = response.Headers.RetryAfter?.Delta is { } delta ? ((int)delta.TotalSeconds).ToString(CultureInfo.InvariantCulture) : null;
            var contentType = response.Content.Headers.ContentType?.MediaType;
            switch (response.StatusCode)
            {
                case HttpStatusCode.Accepted:
                    using (var json = JsonDocument.Parse(body))
                    {
                        var accepted = json.RootElement.GetProperty("accepted").GetInt32();
                        if (accepted != readings.Count || json.RootElement.GetProperty("rejected").GetArrayLength() != 0)
                        {
                            throw new InvalidOperationException($"202 for {readings.Count} readings accepted {accepted}: {body}");
                        }
                    }
                    lock (_acknowledged) _acknowledged.AddRange(readings);
                    break;
                case HttpStatusCode.ServiceUnavailable:
                    lock (_answers) FirstUnavailable ??= (status, retryAfter, contentType, body);
                    break;
                default:
                    throw new InvalidOperationException($"POST /api/v1/telemetry answered {status}: {body}");
            }
            return (response.StatusCode, retryAfter, contentType, body);
        }
    }

    public int Count(int status, TimeSpan from, TimeSpan to) => Answers().Count(a => a.Status == status && a.At >= from && a.At < to);
}

/// <summary>What PostgreSQL must hold after the load, computed from the acknowledged readings alone.</summary>
public static class Expected
{
    /// <summary>
    /// Every (sensor, minute, metric) row of minute_aggregates of the input's minutes (before <paramref name="endMs"/>)
    /// equals count, min, max, sum, first and last computed from the acknowledged readings, and there is no other such row.
    /// </summary>
    public static async Task AssertExactAggregatesAsync(string connectionString, IReadOnlyList<InputReading> acknowledged, long endMs)
    {
        var expected = new Dictionary<(string Sensor, long Minute, string Metric), (long Count, double Min, double Max, double Sum, double First, double Last)>();
        foreach (var group in acknowledged.Where(r => r.TimestampMs < endMs).GroupBy(r => (r.SensorId, Minute: r.TimestampMs - r.TimestampMs % 60_000)))
        {
            var ordered = group.OrderBy(r => r.TimestampMs).ToArray();
            foreach (var (metric, value) in new (string, Func<InputReading, double>)[] { ("humidity", r => r.Humidity), ("temperature", r => r.Temperature) })
            {
                var values = ordered.Select(value).ToArray();
                expected[(group.Key.SensorId, group.Key.Minute, metric)] = (values.Length, values.Min(), values.Max(), values.Sum(), values[0], values[^1]);
            }
        }

        var actual = new Dictionary<(string, long, string), (long, double, double, double, double, double)>();
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT sensor_id, minute_ms, metric, count, min, max, sum, first, last FROM minute_aggregates WHERE minute_ms < $1", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = endMs });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                actual[(reader.GetString(0), reader.GetInt64(1), reader.GetString(2))] =
                    (reader.GetInt64(3), reader.GetDouble(4), reader.GetDouble(5), reader.GetDouble(6), reader.GetDouble(7), reader.GetDouble(8));
            }
        }

        var problems = new List<string>();
        foreach (var (key, value) in expected)
        {
            if (!actual.TryGetValue(key, out var stored))
            {
                problems.Add($"missing {key}: expected {value}");
            }
            else if (stored != value)
            {
                problems.Add($"{key}: expected (count, min, max, sum, first, last) {value}, stored {stored}");
            }
        }
        problems.AddRange(actual.Keys.Where(k => !expected.ContainsKey(k)).Select(k => $"extra row {k}: {actual[k]}"));
        Assert.True(problems.Count == 0,
            $"{problems.Count} of {expected.Count} minute aggregates wrong:\n{string.Join('\n', problems.Take(30))}");
        Assert.True(expected.Count > 0);
    }

    /// <summary>
    /// The alerts of <see cref="KnownInput.RuleId"/>: per sensor, one row per incident (the condition starting to hold,
    /// in the acknowledged readings in time order) with that start time, none twice, at most one open: the last
    /// incident, when the sensor's last reading still holds.
    /// </summary>
    public static async Task<int> AssertAlertsOpenedOnceAsync(string connectionString, IReadOnlyList<InputReading> acknowledged)
    {
        var expected = new Dictionary<string, (List<long> Starts, bool LastHolds)>();
        foreach (var sensor in acknowledged.GroupBy(r => r.SensorId))
        {
            var starts = new List<long>();
            var holding = false;
            foreach (var reading in sensor.OrderBy(r => r.TimestampMs))
            {
                var holds = reading.Temperature > KnownInput.Threshold;
                if (holds && !holding)
                {
                    starts.Add(reading.TimestampMs);
                }
                holding = holds;
            }
            expected[sensor.Key] = (starts, holding);
        }

        var rows = new List<(string Id, string Sensor, string State, long StartedAt)>();
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT alert_id, sensor_id, state, started_at_ms FROM alerts WHERE rule_id = $1", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = KnownInput.RuleId });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3)));
            }
        }

        var problems = new List<string>();
        var bySensor = rows.ToLookup(r => r.Sensor);
        foreach (var (sensor, (starts, lastHolds)) in expected)
        {
            var alerts = bySensor[sensor].OrderBy(a => a.StartedAt).ToList();
            var stored = alerts.Select(a => a.StartedAt).ToList();
            if (!stored.SequenceEqual(starts))
            {
                problems.Add($"{sensor}: incident starts expected [{string.Join(", ", starts)}], stored [{string.Join(", ", stored)}]");
                continue;
            }
            var open = alerts.Where(a => a.State != "Resolved").ToList();
            var expectedOpen = lastHolds && starts.Count > 0 ? 1 : 0;
            if (open.Count != expectedOpen || (expectedOpen == 1 && open[0].StartedAt != starts[^1]))
            {
                problems.Add($"{sensor}: {open.Count} open alerts ({string.Join(", ", open.Select(o => o.Id))}), expected {expectedOpen}");
            }
        }
        problems.AddRange(bySensor.Where(g => !expected.ContainsKey(g.Key)).Select(g => $"alerts of an unknown sensor {g.Key}"));
        if (rows.Select(r => r.Id).Distinct().Count() != rows.Count)
        {
            problems.Add("alert ids repeat");
        }
        Assert.True(problems.Count == 0, $"{problems.Count} sensors with wrong alerts:\n{string.Join('\n', problems.Take(30))}");
        var total = expected.Values.Sum(e => e.Starts.Count);
        Assert.True(total > 0, "the input opens alerts");
        return total;
    }
}
