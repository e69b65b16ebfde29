using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Runtime.RabbitMq;

/// <summary>Settings of the RabbitMQ inbox log and live events (section "RabbitMq").</summary>
public sealed partial class RabbitMqOptions
{
    /// <summary>Broker address: amqp://user:password@host:port/vhost (amqps:// for TLS). An empty path is the vhost "/".</summary>
    public string Uri { get; set; } = "amqp://guest:guest@127.0.0.1:5672/";

    /// <summary>Prefix of every name this cluster uses: streams "{prefix}.inbox.{p}", exchange "{prefix}.live".</summary>
    public string StreamPrefix { get; set; } = "oiot";

    /// <summary>Stream retention by age (x-max-age): segments whose messages are all older are deleted.</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Stream retention by size per partition (x-max-length-bytes).</summary>
    public long MaxLengthBytes { get; set; } = 20_000_000_000;

    /// <summary>Size of a stream segment file (x-stream-max-segment-size-bytes); retention deletes whole segments.</summary>
    public long MaxSegmentSizeBytes { get; set; } = 500_000_000;

    /// <summary>Unacknowledged deliveries a reader's consumer may hold (basic.qos prefetch) and the size of its buffer.</summary>
    public int Prefetch { get; set; } = 1000;

    /// <summary>Longest time an append waits for its publisher confirms before it fails with <see cref="LogUnavailableException"/>.</summary>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Whether the telemetry of requests that queue behind a partition's publish shares one record (a group, binary format
    /// 2). Silos of releases before the group commit cannot read such a record: an upgrade from one runs its Api nodes with
    /// this off until no old silo is left.
    /// </summary>
    public bool GroupCommit { get; set; } = true;

    /// <summary>Channels that publish to the streams; partition p publishes on channel p % PublisherChannels.</summary>
    public int PublisherChannels { get; set; } = 4;

    /// <summary>Pause between attempts to reconnect after the broker went away.</summary>
    public TimeSpan ReconnectInterval { get; set; } = TimeSpan.FromSeconds(1);

    public string StreamName(int partition) => $"{StreamPrefix}.inbox.{partition}";

    public string LiveExchange => $"{StreamPrefix}.live";

    /// <summary>The value of x-max-age: whole seconds with the unit "s".</summary>
    public string MaxAgeArgument => $"{(long)MaxAge.TotalSeconds}s";

    /// <summary>host:port and vhost of <see cref="Uri"/>, never the credentials.</summary>
    public string Describe()
    {
        if (!System.Uri.TryCreate(Uri, UriKind.Absolute, out var uri))
        {
            return "(invalid URI)";
        }
        var port = uri.IsDefaultPort || uri.Port < 0 ? (uri.Scheme == "amqps" ? 5671 : 5672) : uri.Port;
        var vhost = uri.AbsolutePath.Length <= 1 ? "/" : System.Uri.UnescapeDataString(uri.AbsolutePath[1..]);
        return $"{uri.Host}:{port} vhost '{vhost}'";
    }

    /// <summary>Every problem with these settings; empty when they are valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!System.Uri.TryCreate(Uri, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps") || uri.Host.Length == 0)
        {
            errors.Add("RabbitMq:Uri must be an absolute amqp:// or amqps:// URI with a host, e.g. amqp://user:password@127.0.0.1:5672/vhost");
        }
        if (!NamePattern().IsMatch(StreamPrefix ?? ""))
        {
            errors.Add("RabbitMq:StreamPrefix must be 1 to 100 letters, digits, '.', '-' or '_'");
        }
        if (MaxAge < TimeSpan.FromSeconds(1))
        {
            errors.Add("RabbitMq:MaxAge must be at least 1 second");
        }
        if (MaxLengthBytes <= 0)
        {
            errors.Add("RabbitMq:MaxLengthBytes must be positive");
        }
        if (MaxSegmentSizeBytes <= 0 || MaxSegmentSizeBytes > 3_000_000_000)
        {
            errors.Add("RabbitMq:MaxSegmentSizeBytes must be between 1 and 3000000000");
        }
        else if (MaxLengthBytes > 0 && MaxSegmentSizeBytes > MaxLengthBytes)
        {
            errors.Add("RabbitMq:MaxSegmentSizeBytes must not exceed MaxLengthBytes");
        }
        if (Prefetch is < 1 or > ushort.MaxValue)
        {
            errors.Add("RabbitMq:Prefetch must be between 1 and 65535");
        }
        if (PublishTimeout <= TimeSpan.Zero || PublishTimeout > TimeSpan.FromMinutes(5))
        {
            errors.Add("RabbitMq:PublishTimeout must be positive and at most 5 minutes");
        }
        if (PublisherChannels is < 1 or > 64)
        {
            errors.Add("RabbitMq:PublisherChannels must be between 1 and 64");
        }
        if (ReconnectInterval <= TimeSpan.Zero || ReconnectInterval > TimeSpan.FromMinutes(1))
        {
            errors.Add("RabbitMq:ReconnectInterval must be positive and at most 1 minute");
        }
        return errors;
    }

    public void ThrowIfInvalid()
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new OptionsValidationException(nameof(RabbitMqOptions), typeof(RabbitMqOptions), errors);
        }
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,100}$")]
    private static partial Regex NamePattern();
}

/// <summary>Validates <see cref="RabbitMqOptions"/> at start (use with ValidateOnStart).</summary>
public sealed class RabbitMqOptionsValidator : IValidateOptions<RabbitMqOptions>
{
    public ValidateOptionsResult Validate(string? name, RabbitMqOptions options)
    {
        var errors = options.Validate();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
