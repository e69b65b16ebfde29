using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Runtime.RabbitMq;

/// <summary>
/// The inbox log on RabbitMQ stream queues over AMQP 0-9-1: one durable stream "{prefix}.inbox.{p}" per partition,
/// one message per <see cref="InboxEntry"/> (<see cref="InboxEntryCodec"/>), the record's offset being the message's stream offset.
/// <list type="bullet">
/// <item>Appends publish with publisher confirms on a small pool of channels (partition p on channel p % n) and complete
/// when every entry is confirmed. A partition has one publish in flight; the telemetry of the appends that queue behind
/// it goes out as one record (see <see cref="GroupCommit"/>). Appends fail fast with <see cref="LogUnavailableException"/> while the broker is down or
/// blocks publishers, on a negative confirm, or after <see cref="RabbitMqOptions.PublishTimeout"/>.</item>
/// <item>Readers consume from a numeric x-stream-offset with bounded prefetch and, after a reconnect, resume from the
/// offset after the last record they delivered; records below that offset are skipped, so nothing repeats.</item>
/// <item><see cref="EndOffsetAsync"/> attaches a short-lived consumer at "last" (the last chunk) and takes the highest
/// offset delivered before its cancel-ok, plus one; see there for its precision.</item>
/// </list>
/// </summary>
public sealed partial class RabbitMqInboxLog : IInboxLog, IAsyncDisposable
{
    private readonly RabbitMqOptions _options;
    private readonly int _partitions;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly RabbitMqConnection _connection;
    private readonly StreamPublisher[] _publishers;
    private readonly GroupCommit[] _groupCommits;
    private readonly CachedString[] _streams;
    private readonly long[] _knownEnd;
    private int _disposed;

    public RabbitMqInboxLog(RabbitMqOptions options, int partitions, ILoggerFactory? loggers = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        options.ThrowIfInvalid();
        _options = options;
        _partitions = partitions;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        _logger = _loggers.CreateLogger<RabbitMqInboxLog>();
        _connection = new RabbitMqConnection(options, $"OrleansIot inbox {Environment.MachineName}", _logger);
        _publishers = Enumerable.Range(0, Math.Min(options.PublisherChannels, partitions)).Select(_ => new StreamPublisher()).ToArray();
        _streams = Enumerable.Range(0, partitions).Select(p => new CachedString(options.StreamName(p))).ToArray();
        _groupCommits = Enumerable.Range(0, partitions).Select(p => new GroupCommit(this, p)).ToArray();
        _knownEnd = new long[partitions];
    }

    public int Partitions => _partitions;

    public RabbitMqOptions Options => _options;

    /// <summary>
    /// Connects and declares the streams of <paramref name="partitions"/> partitions (durable, x-queue-type stream, with
    /// the retention arguments of the options). Throws <see cref="RabbitMqUnreachableException"/> naming host, port and
    /// vhost when the broker cannot be reached, and <see cref="InvalidOperationException"/> when a stream exists with
    /// other arguments.
    /// </summary>
    public async Task EnsureStreamsAsync(int partitions, CancellationToken cancellationToken)
    {
        var connection = await _connection.ConnectAsync(cancellationToken).ConfigureAwait(false);
        var arguments = StreamArguments(_options);
        var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        try
        {
            for (var p = 0; p < partitions; p++)
            {
                var name = _options.StreamName(p);
                try
                {
                    await channel.QueueDeclareAsync(name, durable: true, exclusive: false, autoDelete: false, arguments,
                        cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 406)
                {
                    throw new InvalidOperationException(
                        $"RabbitMQ at {_connection.Endpoint}: the queue '{name}' exists with other arguments than a stream with " +
                        $"x-max-age {_options.MaxAgeArgument}, x-max-length-bytes {_options.MaxLengthBytes} and " +
                        $"x-stream-max-segment-size-bytes {_options.MaxSegmentSizeBytes}: {e.ShutdownReason.ReplyText}", e);
                }
            }
        }
        finally
        {
            await RabbitMqConnection.CloseQuietlyAsync(channel).ConfigureAwait(false);
        }
        LogStreamsReady(_logger, partitions, _options.StreamPrefix, _connection.Endpoint);
    }

    /// <summary>The arguments every inbox stream is declared with.</summary>
    public static Dictionary<string, object?> StreamArguments(RabbitMqOptions options) => new()
    {
        ["x-queue-type"] = "stream",
        ["x-max-age"] = options.MaxAgeArgument,
        ["x-max-length-bytes"] = options.MaxLengthBytes,
        ["x-stream-max-segment-size-bytes"] = options.MaxSegmentSizeBytes,
    };

    public async ValueTask AppendAsync(int partition, IReadOnlyList<InboxEntry> entries, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, _partitions);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (entries.Count == 0)
        {
            return;
        }
        var bodies = new byte[entries.Count][];
        var readings = 0;
        for (var i = 0; i < bodies.Length; i++)
        {
            bodies[i] = InboxEntryCodec.Encode(entries[i]);
            readings += entries[i] is TelemetryEntry telemetry ? telemetry.Readings.Length : 0;
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.PublishTimeout);
        try
        {
            await OpenConnectionAsync(deadline.Token).ConfigureAwait(false);
            if (_connection.Blocked)
            {
                throw new LogUnavailableException($"RabbitMQ at {_connection.Endpoint} blocks publishers (a memory or disk alarm).");
            }
            var append = _groupCommits[partition].Enqueue(bodies, readings);
            try
            {
                await append.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                append.Abandon();
                throw;
            }
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new LogUnavailableException(
                $"RabbitMQ at {_connection.Endpoint} did not confirm {entries.Count} records of partition {partition} within {_options.PublishTimeout.TotalSeconds:0.###} s.", e);
        }
    }

    /// <summary>Streams keep their history by their own retention (age and size): a committed position deletes nothing.</summary>
    public void Committed(int partition, long beforeOffset)
    {
    }

    public IInboxReader OpenReader(int partition, long fromOffset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, _partitions);
        ArgumentOutOfRangeException.ThrowIfNegative(fromOffset);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return new StreamReader(this, partition, fromOffset);
    }

    /// <summary>
    /// The offset the next record appended to the partition will get. A short-lived consumer attaches at "last", which
    /// makes the broker deliver the last chunk of the stream right away; cancelling it and waiting for the cancel-ok
    /// (which the channel sends after those deliveries) bounds the wait without a timer. The result is the highest offset
    /// delivered plus one (0 for a stream never written: retention never deletes the last segment), never less than what
    /// this process has already read. Precision: exact as of the probe while the last chunk holds at most 10,000 records
    /// (a chunk is a batch the stream writer flushed at once: one publish burst); a lower bound otherwise; it never
    /// exceeds the true end. Records appended while the probe runs may or may not be counted.
    /// </summary>
    public async ValueTask<long> EndOffsetAsync(int partition, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(partition);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(partition, _partitions);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.PublishTimeout);
        IChannel? channel = null;
        try
        {
            var connection = await OpenConnectionAsync(deadline.Token).ConfigureAwait(false);
            channel = await connection.CreateChannelAsync(cancellationToken: deadline.Token).ConfigureAwait(false);
            var probe = await StreamTailProbe.RunAsync(channel, _options.StreamName(partition), deadline.Token).ConfigureAwait(false);
            Observe(partition, probe.MaxOffset);
            return Volatile.Read(ref _knownEnd[partition]);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new LogUnavailableException($"RabbitMQ at {_connection.Endpoint} did not answer the end-offset probe of partition {partition} in time.", e);
        }
        catch (Exception e) when (e is OperationInterruptedException or AlreadyClosedException or IOException)
        {
            throw new LogUnavailableException($"RabbitMQ at {_connection.Endpoint}: the end offset of partition {partition} is unavailable: {e.Message}", e);
        }
        finally
        {
            if (channel is not null)
            {
                await RabbitMqConnection.CloseQuietlyAsync(channel).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The open connection; on first use connects inline, afterwards fails at once while the reconnect loop runs.</summary>
    private async Task<IConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        if (_connection.Current is { } open)
        {
            return open;
        }
        if (!_connection.EverConnected)
        {
            try
            {
                return await _connection.ConnectAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (RabbitMqUnreachableException e)
            {
                throw new LogUnavailableException(e.Message, e);
            }
        }
        _connection.EnsureReconnecting();
        throw new LogUnavailableException($"RabbitMQ at {_connection.Endpoint} is unreachable; reconnecting.");
    }

    /// <summary>Records that <paramref name="offset"/> exists in the partition, so the end is beyond it.</summary>
    private void Observe(int partition, long offset)
    {
        var end = offset + 1;
        ref var known = ref _knownEnd[partition];
        var current = Volatile.Read(ref known);
        while (end > current)
        {
            var seen = Interlocked.CompareExchange(ref known, end, current);
            if (seen == current)
            {
                return;
            }
            current = seen;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        foreach (var publisher in _publishers)
        {
            await publisher.DisposeAsync().ConfigureAwait(false);
        }
        await _connection.DisposeAsync().ConfigureAwait(false);
    }

    internal static long? ReadOffset(IReadOnlyBasicProperties properties) =>
        properties.Headers?.TryGetValue("x-stream-offset", out var value) == true
            ? value switch
            {
                long l => l,
                int i => i,
                _ => null,
            }
            : null;

    [LoggerMessage(Level = LogLevel.Information, Message = "RabbitMQ inbox: {Partitions} streams '{Prefix}.inbox.*' ready at {Endpoint}")]
    private static partial void LogStreamsReady(ILogger logger, int partitions, string prefix, string endpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "RabbitMQ inbox partition {Partition}: reader (re)started at offset {Offset}")]
    private static partial void LogReaderRestarted(ILogger logger, int partition, long offset);

    [LoggerMessage(Level = LogLevel.Warning, Message = "RabbitMQ inbox partition {Partition}: consumer from offset {Offset} failed; retrying: {Error}")]
    private static partial void LogReaderFailed(ILogger logger, int partition, long offset, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "RabbitMQ inbox partition {Partition}: records from {Expected} to {First} are gone (stream retention); reading on at {First}")]
    private static partial void LogGap(ILogger logger, int partition, long expected, long first);

    [LoggerMessage(Level = LogLevel.Error, Message = "RabbitMQ inbox partition {Partition}: record {Offset} cannot be read")]
    private static partial void LogBadRecord(ILogger logger, Exception exception, int partition, long offset);
}
