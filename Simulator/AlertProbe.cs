using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace Simulator;

/// <summary>
/// --alert-probe N: measures ingest-to-alert latency as an operator sees it. Creates a rule (probe &gt; 0.5 on one
/// probe sensor, no cooldown), listens to the live hub with the SignalR client (the key as access token, as the
/// dashboard does), then N times posts a breaking reading and waits for the "opened" alert event of that sensor,
/// then posts a normal reading and waits for "resolved". Latency is from just before the breaking POST to the event's arrival.
/// Runs next to a load (another simulator) to measure at a given load; deletes its rule at the end. With a
/// <paramref name="timeLimit"/> it starts no sample once that time has passed since it began (it measures one at least),
/// so that a load started for a known time outlasts it even when alerts do not come (a sample then waits up to 20 s).
/// </summary>
public sealed class AlertProbe(Uri baseUrl, string deviceKey, string operatorKey, int samples, TimeSpan interval, TimeSpan? timeLimit = null)
{
    public string RuleId { get; } = "bench-probe-" + Guid.NewGuid().ToString("N")[..8];

    public string SensorId => RuleId + "-sensor";

    public async Task<ProbeSummary> RunAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var device = Client(deviceKey);
        using var operatorClient = Client(operatorKey);
        var rule = new Uri(baseUrl, "/api/v1/rules");
        var created = await operatorClient.PostAsync(rule, Json($$"""
            {"id":"{{RuleId}}","name":"Latency probe","severity":"info","enabled":true,
             "target":{"kind":"sensors","sensorIds":["{{SensorId}}"]},
             "condition":{"kind":"threshold","metric":"probe","operator":">","value":0.5},"cooldownSeconds":0}
            """), cancellationToken).ConfigureAwait(false);
        if (!created.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Creating the probe rule failed: {(int)created.StatusCode} {await created.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }
        var measured = new List<ProbeSample>(samples);
        var firstTimedOut = false;
        try
        {
            var events = new AlertEvents(SensorId);
            await using var hub = new HubConnectionBuilder()
                .WithUrl(new Uri(baseUrl, "/hubs/live"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(operatorKey))
                .Build();
            hub.On<JsonElement>("alert", events.Received);
            await hub.StartAsync(cancellationToken).WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
            // The rule change reaches the partitions through their logs: wait until a breaking reading opens an alert once.
            var time = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            for (var i = 0; i < samples && (i < 2 || timeLimit is not { } limit || Stopwatch.GetElapsedTime(started) < limit); i++)
            {
                time = Math.Max(time + 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                var opened = events.Next("opened");
                var sentAt = DateTimeOffset.UtcNow;
                var sent = Stopwatch.GetTimestamp();
                await PostAsync(device, 1, time, cancellationToken).ConfigureAwait(false);
                var arrived = await WaitAsync(opened, i == 0 ? TimeSpan.FromSeconds(30) : ProbeSummary.SampleWait, cancellationToken).ConfigureAwait(false);
                if (i == 0)
                {
                    firstTimedOut = arrived is null;
                }
                else
                {
                    measured.Add(new ProbeSample(sentAt, arrived is { } at ? Stopwatch.GetElapsedTime(sent, at).TotalMilliseconds : null));
                }
                var resolved = events.Next("resolved");
                time = Math.Max(time + 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                await PostAsync(device, 0, time, cancellationToken).ConfigureAwait(false);
                await WaitAsync(resolved, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
                await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await operatorClient.DeleteAsync(new Uri(baseUrl, $"/api/v1/rules/{RuleId}"), CancellationToken.None).ConfigureAwait(false);
        }
        return ProbeSummary.Of(measured, firstTimedOut ? 1 : 0);
    }

    private static async Task<long?> WaitAsync(Task<long> arrival, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await arrival.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    private async Task PostAsync(HttpClient device, double probe, long timeMs, CancellationToken cancellationToken)
    {
        var body = string.Create(CultureInfo.InvariantCulture, $$"""{"sensor":"{{SensorId}}","probe":{{probe}},"timestamp":{{timeMs}}}""");
        using var response = await device.PostAsync(new Uri(baseUrl, "/api/v1/telemetry"), Json(body), cancellationToken).ConfigureAwait(false);
        if ((int)response.StatusCode != 202)
        {
            throw new InvalidOperationException($"The probe reading was answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }
    }

    private static HttpClient Client(string key)
    {
        var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>Completes the pending wait of an alert event kind for the probe sensor with its arrival time.</summary>
    private sealed class AlertEvents(string sensorId)
    {
        private readonly Lock _gate = new();
        private (string Kind, TaskCompletionSource<long> Arrival)? _waiting;

        public Task<long> Next(string kind)
        {
            var arrival = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate) _waiting = (kind, arrival);
            return arrival.Task;
        }

        public void Received(JsonElement alertEvent)
        {
            var at = Stopwatch.GetTimestamp();
            if (alertEvent.GetProperty("alert").GetProperty("sensorId").GetString() != sensorId)
            {
                return;
            }
            var kind = alertEvent.GetProperty("kind").GetString();
            lock (_gate)
            {
                if (_waiting is { } waiting && waiting.Kind == kind)
                {
                    _waiting = null;
                    waiting.Arrival.TrySetResult(at);
                }
            }
        }
    }
}

/// <summary>
/// The probe's figures: samples measured (not the first, which waits for the rule to reach the partitions), of which
/// <see cref="Timeouts"/> saw no alert within <see cref="SampleWait"/> and count in the latencies as that wait;
/// <see cref="Slowest"/>: the slowest samples in the order they were sent, to match with server logs.
/// </summary>
public sealed record ProbeSummary(long Samples, int Timeouts, LatencySummary LatencyMs, ProbeSample[] Slowest)
{
    public const int SlowestKept = 10;

    /// <summary>How long a sample waits for its alert.</summary>
    public static readonly TimeSpan SampleWait = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The figures of the measured samples (a null latency: no alert within <see cref="SampleWait"/>, counted in the
    /// percentiles as that wait, a lower bound, so that a run whose alerts did not all come does not read as the samples
    /// that did), plus <paramref name="otherTimeouts"/> (the unmeasured first sample's).
    /// </summary>
    public static ProbeSummary Of(IReadOnlyList<ProbeSample> measured, int otherTimeouts)
    {
        var histogram = new LatencyHistogram();
        foreach (var sample in measured)
        {
            histogram.Record((long)((sample.LatencyMs ?? SampleWait.TotalMilliseconds) * 1000));
        }
        var slowest = measured
            .OrderByDescending(s => s.LatencyMs ?? double.MaxValue)
            .Take(SlowestKept)
            .OrderBy(s => s.SentAt)
            .Select(s => s with { LatencyMs = s.LatencyMs is { } ms ? Math.Round(ms, 1) : null })
            .ToArray();
        return new ProbeSummary(measured.Count, measured.Count(s => s.LatencyMs is null) + otherTimeouts,
            new LatencySummary(histogram.Percentile(50) / 1000.0, histogram.Percentile(99) / 1000.0, histogram.Max / 1000.0), slowest);
    }
}

/// <summary>A probe sample: when its breaking reading was posted, and how long its alert took (null: none within the wait).</summary>
public sealed record ProbeSample(DateTimeOffset SentAt, double? LatencyMs);
