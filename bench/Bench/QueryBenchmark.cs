using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Bench;

/// <summary>
/// Latency of the chart query an operator makes most: one metric of one sensor over 24 hours, 1,440 minute points.
/// Posts 24 hours of minute readings (5 metrics) for a new sensor, oldest first, then one reading at the current
/// time so that every minute closes; waits until all 1,440 minutes are stored; then times sequential
/// GET /api/v1/sensors/{id}/metrics requests after a warm-up of 1,000 (--warm-up): the latency of a running Api, not of
/// one whose query path is still being compiled (after 100 warm-up requests, a freshly started durable Api's p99 was
/// 29-32 ms against 11 ms once warm). The readings are old, and still aggregated on a busy Api: a sensor's minutes close
/// by its own clock.
/// </summary>
public static class QueryBenchmark
{
    private const long Minute = 60_000;
    private const int Points = 1_440;

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new Options(args);
        var url = new Uri(options.Get("url", "http://127.0.0.1:5080"));
        var requests = options.Int("requests", 1_000);
        using var device = Client(options.Get("device-key", "dev-device-key-change-me"));
        using var operatorClient = Client(options.Get("operator-key", "dev-operator-key-change-me"));
        var sensor = "bench-query-" + Guid.NewGuid().ToString("N")[..8];
        var nowMinute = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / Minute * Minute;
        var from = nowMinute - (Points + 2) * Minute;

        var readings = Enumerable.Range(0, Points + 1).Select(i => Reading(sensor, from + i * Minute + 30_000, i)).ToList();
        foreach (var chunk in readings.Chunk(500))
        {
            await PostAsync(device, url, "[" + string.Join(",", chunk) + "]");
        }
        await PostAsync(device, url, Reading(sensor, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Points + 1));

        var query = new Uri(url, string.Create(CultureInfo.InvariantCulture,
            $"/api/v1/sensors/{sensor}/metrics?metric=temperature&from={Iso(from)}&to={Iso(from + Points * Minute)}"));
        var deadline = Stopwatch.StartNew();
        int points;
        while ((points = await PointsAsync(operatorClient, query)) != Points)
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new InvalidOperationException($"Only {points} of {Points} minutes were stored after 60 s.");
            }
            await Task.Delay(100);
        }

        var warmUp = options.Int("warm-up", 1_000);
        for (var i = 0; i < warmUp; i++)
        {
            await PointsAsync(operatorClient, query);
        }
        var latencies = new double[requests];
        long bytes = 0;
        for (var i = 0; i < requests; i++)
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await operatorClient.GetAsync(query);
            var body = await response.Content.ReadAsByteArrayAsync();
            latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            bytes = body.Length;
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new InvalidOperationException($"The query was answered {(int)response.StatusCode}.");
            }
        }
        Array.Sort(latencies);
        double At(double p) => latencies[Math.Max(0, (int)Math.Ceiling(p / 100 * requests) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"benchmark\":\"query\",\"points\":{Points},\"responseBytes\":{bytes},\"requests\":{requests},\"latencyMs\":{{\"p50\":{At(50):F2},\"p99\":{At(99):F2},\"max\":{latencies[^1]:F2}}}}}"));
        return 0;
    }

    private static string Reading(string sensor, long timeMs, int i) => string.Create(CultureInfo.InvariantCulture,
        $$$"""{"id":"{{{sensor}}}","timestamp":{{{timeMs}}},"metrics":{"temperature":{{{20 + i % 10}}},"humidity":{{{50 + i % 7}}},"heat_index":{{{21 + i % 5}}},"radiation":{{{i % 900}}},"pressure":{{{1000 + i % 13}}}}}""");

    private static string Iso(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    private static async Task PostAsync(HttpClient client, Uri url, string body)
    {
        using var response = await client.PostAsync(new Uri(url, "/api/v1/telemetry"), new StringContent(body, Encoding.UTF8, "application/json"));
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"Posting history was answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    private static async Task<int> PointsAsync(HttpClient client, Uri query)
    {
        using var response = await client.GetAsync(query);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return 0;
        }
        response.EnsureSuccessStatusCode();
        using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        return body.RootElement.GetProperty("points").GetArrayLength();
    }

    private static HttpClient Client(string key)
    {
        var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }
}
