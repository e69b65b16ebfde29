using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Simulator;

/// <summary>
/// Runs a fleet against <c>POST /api/v1/telemetry</c> (or, with <see cref="Transport.Mqtt"/>, MQTT publishes from one
/// connection per sensor: <see cref="MqttSender"/>). One dispatcher hands out batches: sensors round-robin (slot s
/// is sensor s mod N, a silent sensor's slot is skipped), every batch stamped with the wall clock when it is made.
/// With a rate the dispatch is open loop (request k is due at k·batch/rate, whatever the responses); with rate 0
/// it is closed loop at <see cref="SimulatorSettings.Concurrency"/> requests in flight. Either way no more than that
/// many requests are in flight. Sending stops at the duration or the count; in-flight requests then get the drain
/// timeout. A reading is acknowledged only by a 202 (its body's accepted count); 503 and 429 wait the Retry-After and
/// resends the same body; 4xx rejects; anything else is an error. At the end sent = acknowledged + rejected + errors.
/// </summary>
public sealed class SimulatorEngine : IDisposable
{
    private readonly SimulatorSettings _settings;
    private readonly HttpClient _client;
    private readonly Uri _endpoint;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _slots;
    private readonly MqttSender? _mqtt;
    private FleetModel? _model;
    private PayloadWriter? _writer;

    public SimulatorEngine(SimulatorSettings settings, TimeProvider? time = null)
    {
        var errors = settings.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(settings));
        }
        _settings = settings;
        _time = time ?? TimeProvider.System;
        _endpoint = new Uri(settings.Url, "/api/v1/telemetry");
        _slots = new SemaphoreSlim(settings.Concurrency, settings.Concurrency);
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = settings.Concurrency,
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ConnectTimeout = TimeSpan.FromSeconds(5),
        };
        _client = new HttpClient(handler) { Timeout = settings.RequestTimeout };
        _client.DefaultRequestHeaders.Add("X-Api-Key", settings.Key);
        _mqtt = settings.Transport == Transport.Mqtt ? new MqttSender(settings) : null;
    }

    public SimulatorStats Stats { get; } = new();

    /// <summary>Elapsed time of the run so far (zero before it starts).</summary>
    public TimeSpan Elapsed => _startTimestamp == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_startTimestamp, _endTimestamp == 0 ? Stopwatch.GetTimestamp() : _endTimestamp);

    private long _startTimestamp;
    private long _endTimestamp;

    /// <summary>Runs until the duration or the count is reached or <paramref name="cancellationToken"/> fires, then drains.</summary>
    public async Task<SimulatorSummary> RunAsync(CancellationToken cancellationToken = default)
    {
        var startedAt = _time.GetUtcNow();
        _model = new FleetModel(_settings.Sensors, _settings.Seed, _settings.Anomalies, startedAt.ToUnixTimeMilliseconds());
        _writer = new PayloadWriter(_model, _settings.Format, _settings.Batch, _settings.NdJson);
        _startTimestamp = Stopwatch.GetTimestamp();
        using var abort = new CancellationTokenSource();
        try
        {
            await DispatchAsync(abort.Token, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped from outside: drain what is in flight.
        }

        // Drain: every slot back means every request finished; past the drain timeout, cancel what is left.
        abort.CancelAfter(_settings.DrainTimeout);
        for (var i = 0; i < _settings.Concurrency; i++)
        {
            await _slots.WaitAsync(CancellationToken.None);
        }
        _slots.Release(_settings.Concurrency);
        _endTimestamp = Stopwatch.GetTimestamp();
        return Summarize(startedAt);
    }

    private SimulatorSummary Summarize(DateTimeOffset startedAt)
    {
        var seconds = Elapsed.TotalSeconds;
        var latency = Stats.Latency;
        return new SimulatorSummary
        {
            StartedAt = startedAt,
            DurationSeconds = Math.Round(seconds, 3),
            Sensors = _settings.Sensors,
            Format = _settings.FormatName,
            Transport = _settings.Transport == Transport.Mqtt ? $"mqtt {_settings.MqttVersion}" : "http",
            Batch = _settings.Batch,
            Sent = Stats.Sent,
            Acknowledged = Stats.Acknowledged,
            Rejected = Stats.Rejected,
            Errors = Stats.Errors,
            Retries503 = Stats.Retries503,
            Retries429 = Stats.Retries429,
            ReadingsPerSecond = seconds > 0 ? Math.Round(Stats.Acknowledged / seconds, 1) : 0,
            LatencyMs = new LatencySummary(Ms(latency.Percentile(50)), Ms(latency.Percentile(99)), Ms(latency.Max)),
            RejectedSamples = Stats.Samples,
        };
    }

    private static double Ms(long micros) => Math.Round(micros / 1000.0, 3);

    private async Task DispatchAsync(CancellationToken abort, CancellationToken stop)
    {
        var writer = _writer!;
        var batch = _settings.Batch;
        var duration = _settings.Duration;
        var remaining = _settings.Count ?? long.MaxValue;
        var interval = _settings.TotalRate > 0 ? batch / _settings.TotalRate : 0; // seconds between requests
        long slot = 0;
        long request = 0;
        while (remaining > 0 && !stop.IsCancellationRequested)
        {
            var now = Elapsed;
            if (now >= duration)
            {
                return;
            }
            if (interval > 0)
            {
                var due = TimeSpan.FromSeconds(request * interval);
                if (due > now)
                {
                    var wait = due - now;
                    if (now + wait >= duration)
                    {
                        wait = duration - now;
                    }
                    // Timers tick in whole milliseconds: wait at least one, then send all that fell due meanwhile.
                    await Task.Delay(wait < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : wait, stop);
                    continue;
                }
            }
            // A free slot (at most Concurrency requests in flight), waiting no longer than the run lasts.
            if (!await _slots.WaitAsync(duration - now, stop))
            {
                return;
            }
            var timeMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var readings = writer.CountReadings(slot, batch, (int)Math.Min(remaining, batch), timeMs);
            var firstSlot = slot;
            slot += batch;
            request++;
            if (readings == 0)
            {
                _slots.Release();
                if (interval == 0)
                {
                    await Task.Delay(10, stop); // every sensor of this batch is silent: do not spin
                }
                continue;
            }
            remaining -= readings;
            Stats.AddSent(readings);
            Stats.AddInFlight(1);
            _ = Task.Run(() => SendBatchAsync(firstSlot, batch, readings, timeMs, abort), CancellationToken.None);
        }
    }

    private async Task SendBatchAsync(long firstSlot, int slots, int readings, long timeMs, CancellationToken abort)
    {
        using var body = new PooledBufferWriter(readings * 160 + 16);
        try
        {
            var written = _writer!.Write(body, firstSlot, slots, readings, timeMs);
            Debug.Assert(written == readings);
            if (_mqtt is not null)
            {
                await PublishWithRetriesAsync(_model!.Id((int)(firstSlot % _settings.Sensors)), body, readings, abort);
            }
            else
            {
                await SendWithRetriesAsync(body, readings, abort);
            }
        }
        catch (Exception ex)
        {
            Stats.AddErrors(readings);
            Sample(abort.IsCancellationRequested && ex is OperationCanceledException
                ? $"error: cancelled after the drain timeout ({readings} readings)"
                : $"error: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            Stats.AddInFlight(-1);
            _slots.Release();
        }
    }

    private async Task SendWithRetriesAsync(PooledBufferWriter body, int readings, CancellationToken abort)
    {
        // One key per batch, sent again with every resend: the server counts the batch once even if an attempt
        // that failed (503, timeout) did reach the log.
        var idempotencyKey = Guid.NewGuid().ToString("N");
        for (var attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint)
            {
                Content = new ByteArrayContent(body.Buffer, 0, body.WrittenCount),
            };
            request.Headers.Add("Idempotency-Key", idempotencyKey);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(_writer!.ContentType);
            Stats.AddRequest();
            var started = Stopwatch.GetTimestamp();
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead, abort);
            var bytes = await response.Content.ReadAsByteArrayAsync(abort);
            var elapsed = Stopwatch.GetElapsedTime(started);
            var status = (int)response.StatusCode;
            if (status == StatusCodes.Accepted)
            {
                OnAccepted(bytes, readings, elapsed);
                return;
            }
            if (status is StatusCodes.ServiceUnavailable or StatusCodes.TooManyRequests)
            {
                // 503: the log cannot take writes now; 429: this key's rate limit. Both say when to come back.
                if (attempt >= _settings.MaxRetries)
                {
                    Stats.AddErrors(readings);
                    Sample($"error: {status} after {attempt} retries ({readings} readings)");
                    return;
                }
                Stats.AddRetry(status);
                await Task.Delay(RetryDelay(response), abort);
                continue;
            }
            if (status is >= 400 and < 500)
            {
                // Nothing of a 4xx is stored: all readings of the request are rejected.
                Stats.AddRejected(readings);
                if (Stats.WantsSamples)
                {
                    Sample(DescribeProblem(status, bytes));
                }
                return;
            }
            Stats.AddErrors(readings);
            if (Stats.WantsSamples)
            {
                Sample($"error: {DescribeProblem(status, bytes)}");
            }
            return;
        }
    }

    /// <summary>MQTT: a PUBACK with reason code 0 acknowledges; quota and log refusals are sent again after a second; others reject.</summary>
    private async Task PublishWithRetriesAsync(string sensorId, PooledBufferWriter body, int readings, CancellationToken abort)
    {
        for (var attempt = 0; ; attempt++)
        {
            Stats.AddRequest();
            var (outcome, reason, elapsed) = await _mqtt!.PublishAsync(sensorId, body.Buffer.AsMemory(0, body.WrittenCount), _writer!.ContentType, abort);
            switch (outcome)
            {
                case PublishOutcome.Acknowledged:
                    Stats.Latency.Record((long)(elapsed.Ticks / (TimeSpan.TicksPerMillisecond / 1000)));
                    Stats.AddAcknowledged(readings);
                    return;
                case PublishOutcome.RetryLater when attempt < _settings.MaxRetries:
                    Stats.AddRetry(reason!.StartsWith("151", StringComparison.Ordinal) ? StatusCodes.TooManyRequests : StatusCodes.ServiceUnavailable);
                    await Task.Delay(TimeSpan.FromSeconds(1), abort);
                    continue;
                case PublishOutcome.RetryLater:
                    Stats.AddErrors(readings);
                    Sample($"error: {reason} after {attempt} retries ({readings} readings)");
                    return;
                default:
                    Stats.AddRejected(readings);
                    if (Stats.WantsSamples)
                    {
                        Sample(reason!);
                    }
                    return;
            }
        }
    }

    private void OnAccepted(byte[] bytes, int readings, TimeSpan elapsed)
    {
        long accepted;
        var rejected = 0;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            accepted = doc.RootElement.GetProperty("accepted").GetInt64();
            if (doc.RootElement.TryGetProperty("rejected", out var items) && items.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in items.EnumerateArray())
                {
                    rejected++;
                    if (Stats.WantsSamples)
                    {
                        Sample($"202 rejected item {Property(item, "index")}: {Property(item, "error")}");
                    }
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            Stats.AddErrors(readings);
            Sample($"error: 202 without a readable {{accepted, rejected}} body: {Excerpt(bytes)}");
            return;
        }
        Stats.Latency.Record((long)(elapsed.Ticks / (TimeSpan.TicksPerMillisecond / 1000)));
        var acknowledged = (int)Math.Clamp(accepted, 0, readings);
        rejected = Math.Min(rejected, readings - acknowledged);
        Stats.AddAcknowledged(acknowledged);
        Stats.AddRejected(rejected);
        if (acknowledged + rejected < readings)
        {
            // The server accounted for fewer readings than were sent: the rest are not acknowledged.
            Stats.AddErrors(readings - acknowledged - rejected);
            Sample($"error: 202 accounted for {acknowledged + rejected} of {readings} readings");
        }
    }

    private TimeSpan RetryDelay(HttpResponseMessage response)
    {
        var retryAfter = response.Headers.RetryAfter;
        var delay = TimeSpan.FromSeconds(1);
        if (retryAfter?.Delta is { } delta)
        {
            delay = delta;
        }
        else if (retryAfter?.Date is { } date)
        {
            delay = date - _time.GetUtcNow();
        }
        return delay < TimeSpan.Zero ? TimeSpan.Zero : delay > _settings.MaxRetryAfter ? _settings.MaxRetryAfter : delay;
    }

    private void Sample(string sample) => Stats.AddSample(sample);

    /// <summary>"400 No valid reading: item 0: ..." from a ProblemDetails body, or the status and an excerpt.</summary>
    private static string DescribeProblem(int status, byte[] bytes)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            var text = new StringBuilder().Append(status);
            if (root.TryGetProperty("title", out var title))
            {
                text.Append(' ').Append(title.GetString());
            }
            if (root.TryGetProperty("rejected", out var items) && items.ValueKind == JsonValueKind.Array && items.GetArrayLength() > 0)
            {
                var first = items[0];
                text.Append(": item ").Append(Property(first, "index")).Append(": ").Append(Property(first, "error"));
            }
            else if (root.TryGetProperty("detail", out var detail))
            {
                text.Append(": ").Append(detail.GetString());
            }
            return text.ToString();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return $"{status}: {Excerpt(bytes)}";
        }
    }

    private static string Property(JsonElement item, string name) =>
        item.ValueKind == JsonValueKind.Object && item.TryGetProperty(name, out var value) ? value.ToString() : "?";

    private static string Excerpt(byte[] bytes) => Encoding.UTF8.GetString(bytes, 0, Math.Min(bytes.Length, 200));

    public void Dispose()
    {
        _mqtt?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _client.Dispose();
        _slots.Dispose();
    }

    private static class StatusCodes
    {
        public const int Accepted = 202;
        public const int TooManyRequests = 429;
        public const int ServiceUnavailable = 503;
    }
}
