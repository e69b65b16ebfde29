using Microsoft.AspNetCore.Http;

namespace Simulator.Tests;

/// <summary>The engine against a stub telemetry endpoint: exact counts of sent, acknowledged, rejected and retries.</summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task Counts_a_reading_as_acknowledged_only_from_a_202_and_resends_after_503_and_429_with_their_retry_after()
    {
        await using var stub = await StubApi.StartAsync((number, readings) => number switch
        {
            1 => StubApi.Unavailable(retryAfterSeconds: 1),
            3 => StubApi.TooManyRequests(retryAfterSeconds: 1),
            5 => Results.Problem(statusCode: 400, title: "No valid reading", detail: "All readings were rejected; see 'rejected'.",
                extensions: new Dictionary<string, object?> { ["rejected"] = Enumerable.Range(0, readings).Select(i => new { index = i, error = "bad" }).ToList() }),
            7 => StubApi.Accepted(readings - 2, (3, "humidity must be finite"), (7, "bad timestamp")),
            _ => StubApi.Accepted(readings),
        });
        var settings = new SimulatorSettings
        {
            Url = stub.Url, Key = "test-device-key-0123", Sensors = 10, Batch = 10, Count = 100, TotalRate = 0, Concurrency = 1,
            Duration = TimeSpan.FromSeconds(30),
        };
        using var engine = new SimulatorEngine(settings);

        var summary = await engine.RunAsync();

        Assert.Equal(100, summary.Sent);
        Assert.Equal(88, summary.Acknowledged);
        Assert.Equal(12, summary.Rejected);
        Assert.Equal(0, summary.Errors);
        Assert.Equal(1, summary.Retries503);
        Assert.Equal(1, summary.Retries429);
        Assert.Equal(12, stub.RequestCount);
        Assert.Equal(9, engine.Stats.Latency.Count); // one latency per 202
        Assert.Equal("slide", summary.Format);
        Assert.Equal(10, summary.Batch);
        Assert.Equal(["202 rejected item 3: humidity must be finite", "202 rejected item 7: bad timestamp"], summary.RejectedSamples.Where(s => s.StartsWith("202")));
        Assert.Contains("400 No valid reading: item 0: bad", summary.RejectedSamples);
        Assert.True(summary.LatencyMs.P50 > 0 && summary.LatencyMs.P50 <= summary.LatencyMs.P99 && summary.LatencyMs.P99 <= summary.LatencyMs.Max);

        var requests = stub.Requests.OrderBy(r => r.Number).ToList();
        Assert.All(requests, r => Assert.Equal("test-device-key-0123", r.Key));
        Assert.All(requests, r => Assert.Equal("application/json", r.ContentType));
        Assert.All(requests, r => Assert.Equal(10, r.Readings));
        Assert.True(requests[1].At - requests[0].At >= TimeSpan.FromSeconds(0.95), $"resent after {requests[1].At - requests[0].At}");
        Assert.True(requests[3].At - requests[2].At >= TimeSpan.FromSeconds(0.95), $"resent after {requests[3].At - requests[2].At}");
        // The resends after the 503 and the 429 carry their batch's idempotency key; every other batch has a key of its own.
        Assert.Equal(requests[0].IdempotencyKey, requests[1].IdempotencyKey);
        Assert.Equal(requests[2].IdempotencyKey, requests[3].IdempotencyKey);
        Assert.Equal(10, requests.Select(r => r.IdempotencyKey).Distinct().Count());
        Assert.All(requests, r => Assert.Equal(32, r.IdempotencyKey.Length));
    }

    [Fact]
    public async Task A_503_past_the_retries_and_an_unreachable_server_are_errors()
    {
        await using var stub = await StubApi.StartAsync((_, _) => StubApi.Unavailable(retryAfterSeconds: 0));
        var settings = new SimulatorSettings { Url = stub.Url, Sensors = 3, Batch = 2, Count = 6, Concurrency = 2, MaxRetries = 2 };
        using var engine = new SimulatorEngine(settings);

        var summary = await engine.RunAsync();

        Assert.Equal((6, 0, 0, 6, 6), (summary.Sent, summary.Acknowledged, summary.Rejected, summary.Errors, summary.Retries503));
        Assert.Equal(9, stub.RequestCount);
        Assert.Contains("error: 503 after 2 retries (2 readings)", summary.RejectedSamples);

        await stub.DisposeAsync();
        using var offline = new SimulatorEngine(settings);
        var unreachable = await offline.RunAsync();
        Assert.Equal((6, 0, 0, 6, 0), (unreachable.Sent, unreachable.Acknowledged, unreachable.Rejected, unreachable.Errors, unreachable.Retries503));
        Assert.StartsWith("error: HttpRequestException", unreachable.RejectedSamples[0]);
    }

    [Fact]
    public async Task An_open_loop_rate_sends_on_schedule_and_stops_at_the_duration()
    {
        await using var stub = await StubApi.StartAsync((_, readings) => StubApi.Accepted(readings));
        // 200 readings/s in requests of 10: one request every 50 ms, 20 in the second.
        var settings = new SimulatorSettings
        {
            Url = stub.Url, Sensors = 50, Batch = 10, TotalRate = 200, Duration = TimeSpan.FromSeconds(1), Format = PayloadFormat.Engine, NdJson = true,
        };
        using var engine = new SimulatorEngine(settings);

        var summary = await engine.RunAsync();

        // Never ahead of the schedule (at most 200 in the second); a busy machine may fall far behind, so the lower bound is loose.
        Assert.InRange(summary.Sent, 10, 200);
        Assert.Equal(summary.Sent, summary.Acknowledged);
        Assert.Equal(summary.Sent / 10, stub.RequestCount);
        Assert.All(stub.Requests, r => Assert.Equal("application/x-ndjson", r.ContentType));
        Assert.InRange(summary.DurationSeconds, 0.9, 10);
    }

    [Fact]
    public void Settings_refuse_a_remote_url_unless_allowed_and_parse_durations()
    {
        Assert.Contains(new SimulatorSettings { Url = new Uri("http://example.com") }.Validate(), e => e.Contains("--allow-remote"));
        Assert.Empty(new SimulatorSettings { Url = new Uri("http://example.com"), AllowRemote = true }.Validate());
        Assert.Empty(new SimulatorSettings { Url = new Uri("http://localhost:5080") }.Validate());
        Assert.Empty(new SimulatorSettings { Url = new Uri("http://[::1]:5080") }.Validate());

        Assert.True(SimulatorSettings.TryParseDuration("30s", out var d) && d == TimeSpan.FromSeconds(30));
        Assert.True(SimulatorSettings.TryParseDuration("5m", out d) && d == TimeSpan.FromMinutes(5));
        Assert.True(SimulatorSettings.TryParseDuration("250ms", out d) && d == TimeSpan.FromMilliseconds(250));
        Assert.True(SimulatorSettings.TryParseDuration("2", out d) && d == TimeSpan.FromSeconds(2));
        Assert.False(SimulatorSettings.TryParseDuration("soon", out _));
    }
}
