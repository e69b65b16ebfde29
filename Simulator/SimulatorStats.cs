using System.Collections.Concurrent;

namespace Simulator;

/// <summary>Counters of a run, updated by the sending tasks and read by the live view (all thread-safe).</summary>
public sealed class SimulatorStats
{
    public const int MaxSamples = 10;

    private readonly ConcurrentQueue<string> _samples = new();
    private long _sent;
    private long _acknowledged;
    private long _rejected;
    private long _errors;
    private long _retries503;
    private long _retries429;
    private long _requests;
    private long _inFlight;
    private int _sampleCount;

    /// <summary>Latency of requests answered 202, from sending the (last) attempt to the response, in µs.</summary>
    public LatencyHistogram Latency { get; } = new();

    /// <summary>Readings handed to a request (counted once, whatever its retries).</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Readings a 202 response counted as accepted.</summary>
    public long Acknowledged => Interlocked.Read(ref _acknowledged);

    /// <summary>Readings the server rejected: the rejected items of a 202, or all readings of a 4xx.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Readings whose request failed: network error, timeout, 5xx, 503 past the retries, or cancelled at the end.</summary>
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>Resends after a 503.</summary>
    public long Retries503 => Interlocked.Read(ref _retries503);

    /// <summary>Resends after a 429 (the key's rate limit).</summary>
    public long Retries429 => Interlocked.Read(ref _retries429);

    /// <summary>HTTP requests sent, retries included.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>The first few rejections and errors, in the order they happened.</summary>
    public IReadOnlyList<string> Samples => _samples.ToArray();

    internal void AddSent(int readings) => Interlocked.Add(ref _sent, readings);

    internal void AddAcknowledged(int readings) => Interlocked.Add(ref _acknowledged, readings);

    internal void AddRejected(int readings) => Interlocked.Add(ref _rejected, readings);

    internal void AddErrors(int readings) => Interlocked.Add(ref _errors, readings);

    internal void AddRetry(int status) => Interlocked.Increment(ref status == 429 ? ref _retries429 : ref _retries503);

    internal void AddRequest() => Interlocked.Increment(ref _requests);

    internal void AddInFlight(int delta) => Interlocked.Add(ref _inFlight, delta);

    internal bool WantsSamples => Volatile.Read(ref _sampleCount) < MaxSamples;

    internal void AddSample(string sample)
    {
        if (Interlocked.Increment(ref _sampleCount) <= MaxSamples)
        {
            _samples.Enqueue(sample.Length > 300 ? sample[..300] + "…" : sample);
        }
    }
}
