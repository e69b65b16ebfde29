using System.Globalization;
using System.Net;

namespace Simulator;

/// <summary>What a run does; <see cref="Validate"/> lists what is wrong.</summary>
public sealed record SimulatorSettings
{
    public const int MaxSensors = 1_000_000;
    public const int MaxBatch = 10_000;
    public const int MaxConcurrency = 1024;

    public Uri Url { get; init; } = new("http://127.0.0.1:5080");

    /// <summary>How readings travel: HTTP posts, or MQTT publishes from one connection per sensor.</summary>
    public Transport Transport { get; init; } = Transport.Http;

    /// <summary>The Api's MQTT endpoint (with <see cref="Transport.Mqtt"/>).</summary>
    public Uri MqttUrl { get; init; } = new("mqtt://127.0.0.1:1883");

    /// <summary>"5" or "3.1.1".</summary>
    public string MqttVersion { get; init; } = "5";

    public string Key { get; init; } = "dev-device-key-change-me";

    public int Sensors { get; init; } = 100;

    public PayloadFormat Format { get; init; } = PayloadFormat.Slide;

    /// <summary>Readings per request: 1 is a single object, more a JSON array (or NDJSON lines).</summary>
    public int Batch { get; init; } = 1;

    public bool NdJson { get; init; }

    /// <summary>Open-loop target in readings per second over the whole fleet; 0 is as fast as possible (closed loop at <see cref="Concurrency"/>).</summary>
    public double TotalRate { get; init; }

    /// <summary>How long readings are sent; in-flight requests then get <see cref="DrainTimeout"/> to finish.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Total readings to send; null for no limit but <see cref="Duration"/>.</summary>
    public long? Count { get; init; }

    /// <summary>Requests in flight at most (also the connections to the server).</summary>
    public int Concurrency { get; init; } = 16;

    public AnomalyOptions Anomalies { get; init; } = AnomalyOptions.None;

    public int Seed { get; init; } = 1;

    /// <summary>Resends of a payload after 503 before its readings count as errors.</summary>
    public int MaxRetries { get; init; } = 10;

    /// <summary>Longest wait honoured from a Retry-After header.</summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(60);

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>After sending stops, how long in-flight requests (and their retries) may take before they are cancelled.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Allow a URL that is not a loopback address.</summary>
    public bool AllowRemote { get; init; }

    public string FormatName => Format.ToString().ToLowerInvariant();

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Url.IsAbsoluteUri || (Url.Scheme != Uri.UriSchemeHttp && Url.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add($"--url must be an absolute http or https URL, not '{Url}'");
        }
        else if (!AllowRemote && !IsLoopback(Url))
        {
            errors.Add($"--url {Url} is not a loopback address; pass --allow-remote to load another host");
        }
        if (Transport == Transport.Mqtt)
        {
            if (!MqttUrl.IsAbsoluteUri || MqttUrl.Scheme != "mqtt")
            {
                errors.Add($"--mqtt-url must be an absolute mqtt://host:port URL, not '{MqttUrl}'");
            }
            else if (!AllowRemote && !IsLoopback(MqttUrl))
            {
                errors.Add($"--mqtt-url {MqttUrl} is not a loopback address; pass --allow-remote to load another host");
            }
            if (Batch != 1)
            {
                errors.Add("--transport mqtt publishes each reading from its own sensor's connection: --batch must be 1");
            }
            if (MqttVersion is not ("5" or "3.1.1"))
            {
                errors.Add("--mqtt-version must be 5 or 3.1.1");
            }
        }
        if (string.IsNullOrWhiteSpace(Key))
        {
            errors.Add("--key must not be empty");
        }
        if (Sensors is < 1 or > MaxSensors)
        {
            errors.Add($"--sensors must be between 1 and {MaxSensors}");
        }
        if (Batch is < 1 or > MaxBatch)
        {
            errors.Add($"--batch must be between 1 and {MaxBatch}");
        }
        if (!double.IsFinite(TotalRate) || TotalRate < 0)
        {
            errors.Add("the rate must be a finite number of readings per second, 0 or more");
        }
        if (Duration <= TimeSpan.Zero || Duration > TimeSpan.FromDays(1))
        {
            errors.Add("--duration must be more than 0 and at most 24h");
        }
        if (Count is < 1)
        {
            errors.Add("--count must be at least 1");
        }
        if (Concurrency is < 1 or > MaxConcurrency)
        {
            errors.Add($"--concurrency must be between 1 and {MaxConcurrency}");
        }
        if (MaxRetries < 0)
        {
            errors.Add("--max-retries must be 0 or more");
        }
        return errors;
    }

    public static bool IsLoopback(Uri url) =>
        url.IsLoopback || (IPAddress.TryParse(url.DnsSafeHost, out var address) && IPAddress.IsLoopback(address));

    /// <summary>Parses a duration: a number with a unit ms, s, m or h (e.g. 500ms, 30s, 5m, 1.5h); a bare number is seconds.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        var s = text.Trim().ToLowerInvariant();
        (string Suffix, double Seconds)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        var factor = 1.0;
        foreach (var (suffix, seconds) in units)
        {
            if (s.EndsWith(suffix, StringComparison.Ordinal))
            {
                s = s[..^suffix.Length];
                factor = seconds;
                break;
            }
        }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value) || value < 0
            || value * factor > TimeSpan.MaxValue.TotalSeconds / 2)
        {
            return false;
        }
        duration = TimeSpan.FromSeconds(value * factor);
        return true;
    }
}

public enum Transport
{
    Http,
    Mqtt,
}
