using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;
using Runtime.Outputs;

namespace Runtime.RabbitMq;

/// <summary>
/// The output streams in durable mode: RabbitMQ stream queues "{prefix}.out.aggregates", "{prefix}.out.alerts" and
/// "{prefix}.out.commands" (retention <see cref="OutputOptions.MaxAge"/> and <see cref="OutputOptions.MaxLengthBytes"/>).
/// A message's body is the output's JSON; its properties carry the output's id (message-id), its type (type),
/// content-type application/json, the time it was appended (timestamp) and the relay's sequence number (header
/// "oiot-seq"), by which a relay that takes over finds what its predecessor appended last.
/// </summary>
public sealed partial class RabbitMqOutputStreams : IOutputStreams, IAsyncDisposable
{
    public const string SequenceHeader = "oiot-seq";

    private static readonly TimeSpan ReadWait = TimeSpan.FromSeconds(5);

    private readonly RabbitMqOptions _options;
    private readonly OutputOptions _outputs;
    private readonly ILogger _logger;
    private readonly RabbitMqConnection _connection;
    private readonly StreamPublisher _publisher = new();

    public RabbitMqOutputStreams(RabbitMqOptions options, OutputOptions outputs, ILoggerFactory? loggers = null)
    {
        _options = options;
        _outputs = outputs;
        _logger = (loggers ?? NullLoggerFactory.Instance).CreateLogger<RabbitMqOutputStreams>();
        _connection = new RabbitMqConnection(options, $"OrleansIot outputs {Environment.MachineName}", _logger);
    }

    public string StreamName(OutputStream stream) => $"{_options.StreamPrefix}.out.{OutputMessages.Name(stream)}";

    /// <summary>Declares the streams kept (<see cref="OutputOptions.Streams"/>); fails naming the stream when one exists with other arguments.</summary>
    public async Task EnsureStreamsAsync(CancellationToken cancellationToken)
    {
        var connection = await _connection.ConnectAsync(cancellationToken).ConfigureAwait(false);
        var arguments = new Dictionary<string, object?>
        {
            ["x-queue-type"] = "stream",
            ["x-max-age"] = $"{(long)_outputs.MaxAge.TotalSeconds}s",
            ["x-max-length-bytes"] = _outputs.MaxLengthBytes,
            ["x-stream-max-segment-size-bytes"] = Math.Min(_options.MaxSegmentSizeBytes, _outputs.MaxLengthBytes),
        };
        var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var stream in _outputs.KeptStreams())
            {
                var name = StreamName(stream);
                try
                {
                    await channel.QueueDeclareAsync(name, durable: true, exclusive: false, autoDelete: false, arguments,
                        cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 406)
                {
                    throw new InvalidOperationException(
                        $"RabbitMQ at {_connection.Endpoint}: the queue '{name}' exists with other arguments than an output stream with " +
                        $"x-max-age {arguments["x-max-age"]} and x-max-length-bytes {_outputs.MaxLengthBytes}: {e.ShutdownReason.ReplyText}", e);
                }
            }
        }
        finally
        {
            await RabbitMqConnection.CloseQuietlyAsync(channel).ConfigureAwait(false);
        }
        LogStreamsReady(_logger, _options.StreamPrefix, _outputs.DescribeStreams(), _connection.Endpoint);
    }

    /// <summary>Appends the messages in order with publisher confirms; completes when all are confirmed.</summary>
    public async Task AppendAsync(OutputStream stream, IReadOnlyList<(long Seq, OutputMessage Message)> messages, CancellationToken cancellationToken)
    {
        if (messages.Count == 0)
        {
            return;
        }
        var bodies = new byte[messages.Count][];
        for (var i = 0; i < bodies.Length; i++)
        {
            bodies[i] = messages[i].Message.Body;
        }
        var now = new AmqpTimestamp(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.PublishTimeout);
        try
        {
            var connection = await _connection.WaitAsync(deadline.Token).ConfigureAwait(false);
            await _publisher.PublishAsync(connection, new CachedString(StreamName(stream)), bodies, deadline.Token, (i, properties) =>
            {
                var (seq, message) = messages[i];
                properties.MessageId = message.Id;
                properties.Type = message.Type;
                properties.ContentType = "application/json";
                properties.DeliveryMode = DeliveryModes.Persistent;
                properties.Timestamp = now;
                properties.Headers![SequenceHeader] = seq;
            }).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new LogUnavailableException(
                $"RabbitMQ at {_connection.Endpoint} did not confirm {messages.Count} messages of '{StreamName(stream)}' within {_options.PublishTimeout.TotalSeconds:0.###} s.", e);
        }
    }

    /// <summary>The relay's sequence number of the stream's last message; 0 for an empty stream.</summary>
    public async Task<long> LastSequenceAsync(OutputStream stream, CancellationToken cancellationToken)
    {
        var probe = await ProbeAsync(stream, cancellationToken).ConfigureAwait(false);
        return probe.LastHeaders?.TryGetValue(SequenceHeader, out var value) == true
            ? value switch { long l => l, int i => i, _ => 0 }
            : 0;
    }

    public async Task<OutputPage> ReadAsync(OutputStream stream, long fromOffset, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fromOffset);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, ushort.MaxValue);
        var end = (await ProbeAsync(stream, cancellationToken).ConfigureAwait(false)).MaxOffset + 1;
        if (fromOffset >= end)
        {
            return new OutputPage([], end);
        }
        return await OnChannelAsync(stream, ReadWait, $"read from offset {fromOffset}", async (channel, token) =>
        {
            await channel.BasicQosAsync(0, (ushort)Math.Min(ushort.MaxValue, limit * 2), false, token).ConfigureAwait(false);
            var reader = new PageReader(channel, fromOffset, end, limit);
            await channel.BasicConsumeAsync(StreamName(stream), autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
                new Dictionary<string, object?> { ["x-stream-offset"] = fromOffset }, reader, token).ConfigureAwait(false);
            await reader.Done.Task.WaitAsync(token).ConfigureAwait(false);
            return new OutputPage(reader.Records, end);
        }, cancellationToken).ConfigureAwait(false);
    }

    private Task<StreamTailProbe> ProbeAsync(OutputStream stream, CancellationToken cancellationToken) =>
        OnChannelAsync(stream, _options.PublishTimeout, "probe its end",
            (channel, token) => StreamTailProbe.RunAsync(channel, StreamName(stream), token), cancellationToken);

    /// <summary>
    /// Runs <paramref name="action"/> on a channel of its own within <paramref name="wait"/>; a broker that is down, a
    /// closed channel or the deadline fail with <see cref="LogUnavailableException"/> naming the stream.
    /// </summary>
    private async Task<T> OnChannelAsync<T>(OutputStream stream, TimeSpan wait, string doing, Func<IChannel, CancellationToken, Task<T>> action,
        CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(wait);
        IChannel? channel = null;
        try
        {
            var connection = await _connection.WaitAsync(deadline.Token).ConfigureAwait(false);
            channel = await connection.CreateChannelAsync(cancellationToken: deadline.Token).ConfigureAwait(false);
            return await action(channel, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new LogUnavailableException($"RabbitMQ at {_connection.Endpoint}: '{StreamName(stream)}' did not {doing} within {wait.TotalSeconds:0.###} s.", e);
        }
        catch (Exception e) when (e is OperationInterruptedException or AlreadyClosedException or IOException)
        {
            throw new LogUnavailableException($"RabbitMQ at {_connection.Endpoint}: '{StreamName(stream)}' could not {doing}: {e.Message}", e);
        }
        finally
        {
            if (channel is not null)
            {
                await RabbitMqConnection.CloseQuietlyAsync(channel).ConfigureAwait(false);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _publisher.DisposeAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Collects up to <paramref name="limit"/> messages from offset <paramref name="from"/> (or the first one retention
    /// left after it) before <paramref name="end"/>, acknowledging as it goes (stream consumers need credit).
    /// </summary>
    private sealed class PageReader(IChannel channel, long from, long end, int limit) : AsyncDefaultBasicConsumer(channel)
    {
        public List<OutputRecord> Records { get; } = new(limit);

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task HandleBasicDeliverAsync(string consumerTag, ulong deliveryTag, bool redelivered, string exchange,
            string routingKey, IReadOnlyBasicProperties properties, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
        {
            if (Done.Task.IsCompleted)
            {
                return;
            }
            var offset = RabbitMqInboxLog.ReadOffset(properties) ?? -1;
            if (offset >= from && offset < end)
            {
                Records.Add(new OutputRecord(offset, properties.MessageId ?? "", properties.Type ?? "", body.ToArray()));
            }
            if (offset >= end - 1 || Records.Count >= limit)
            {
                Done.TrySetResult();
                return;
            }
            await Channel.BasicAckAsync(deliveryTag, multiple: true, cancellationToken).ConfigureAwait(false);
        }

        public override Task HandleChannelShutdownAsync(object channel, RabbitMQ.Client.Events.ShutdownEventArgs reason)
        {
            Done.TrySetException(new LogUnavailableException($"The reading channel closed: {reason.ReplyCode} {reason.ReplyText}"));
            return base.HandleChannelShutdownAsync(channel, reason);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "RabbitMQ output streams '{Prefix}.out.*' ready at {Endpoint}: {Streams} (Outputs:Streams)")]
    private static partial void LogStreamsReady(ILogger logger, string prefix, string streams, string endpoint);
}
