using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Grains.Abstractions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RabbitMQ.Client;

namespace Runtime.RabbitMq;

/// <summary>
/// Live events over a fanout exchange "{prefix}.live". <see cref="Publish"/> never blocks: it queues the output for a
/// background publisher (no confirms) and drops it, with a warning, when the queue is full or the broker is down;
/// live events are best-effort (the checkpointed store is the truth, and clients drop ids they have seen).
/// The publisher sends the outputs waiting in its queue together, up to <see cref="MaxEventsPerMessage"/> in one message
/// (a JSON array): one output when they come one at a time, a few hundred per message when a fleet closes its minutes
/// at once, so that the broker routes and queues hundreds of times fewer messages in that burst. Subscribers also take a
/// message holding a single output (a JSON object).
/// Each subscription binds its own exclusive, auto-delete, server-named queue and re-binds a new one after a reconnect
/// (events published in between are lost to it).
/// </summary>
public sealed partial class RabbitMqLiveEvents : ILiveEvents, IAsyncDisposable
{
    private const int PublishQueueCapacity = 10_000;

    /// <summary>Most outputs one message carries.</summary>
    public const int MaxEventsPerMessage = 256;

    /// <summary>A subscriber's queue keeps at most this many messages; the oldest go first when it falls behind.</summary>
    private const int SubscriberQueueLength = 100_000;

    private readonly RabbitMqOptions _options;
    private readonly ILogger _logger;
    private readonly RabbitMqConnection _connection;
    private readonly Channel<GrainOutput> _outgoing;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _publisher;
    private long _dropped;

    public RabbitMqLiveEvents(RabbitMqOptions options, ILoggerFactory? loggers = null)
    {
        options.ThrowIfInvalid();
        _options = options;
        _logger = (loggers ?? NullLoggerFactory.Instance).CreateLogger<RabbitMqLiveEvents>();
        _connection = new RabbitMqConnection(options, $"OrleansIot live {Environment.MachineName}", _logger);
        _outgoing = Channel.CreateBounded<GrainOutput>(new BoundedChannelOptions(PublishQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.DropWrite,
        });
        _publisher = Task.Run(PublishLoopAsync);
        _connection.EnsureReconnecting();
    }

    /// <summary>Events dropped so far because the broker was down, the publish queue was full or a subscriber fell behind.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Connects and declares the exchange; throws <see cref="RabbitMqUnreachableException"/> naming host, port and vhost.</summary>
    public async Task EnsureExchangeAsync(CancellationToken cancellationToken)
    {
        var connection = await _connection.ConnectAsync(cancellationToken).ConfigureAwait(false);
        var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        try
        {
            await DeclareExchangeAsync(channel, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await RabbitMqConnection.CloseQuietlyAsync(channel).ConfigureAwait(false);
        }
    }

    public void Publish(GrainOutput output)
    {
        if (_stop.IsCancellationRequested || !_outgoing.Writer.TryWrite(output))
        {
            Drop("the publish queue is full");
        }
    }

    public async IAsyncEnumerable<GrainOutput> SubscribeAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var received = Channel.CreateBounded<GrainOutput>(new BoundedChannelOptions(PublishQueueCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.DropOldest,
        }, _ => Drop("a subscriber fell behind"));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        var pump = Task.Run(() => SubscribeLoopAsync(received.Writer, linked.Token), CancellationToken.None);
        try
        {
            await foreach (var output in received.Reader.ReadAllAsync(linked.Token).ConfigureAwait(false))
            {
                yield return output;
            }
        }
        finally
        {
            await linked.CancelAsync().ConfigureAwait(false);
            await pump.ConfigureAwait(false);
        }
    }

    private async Task SubscribeLoopAsync(ChannelWriter<GrainOutput> into, CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            IChannel? channel = null;
            try
            {
                var connection = await _connection.WaitAsync(cancellationToken).ConfigureAwait(false);
                channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                await DeclareExchangeAsync(channel, cancellationToken).ConfigureAwait(false);
                var queue = await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true,
                    new Dictionary<string, object?> { ["x-max-length"] = SubscriberQueueLength, ["x-overflow"] = "drop-head" },
                    cancellationToken: cancellationToken).ConfigureAwait(false);
                await channel.QueueBindAsync(queue.QueueName, _options.LiveExchange, "", cancellationToken: cancellationToken).ConfigureAwait(false);
                var consumer = new LiveConsumer(channel, into, _logger);
                await channel.BasicConsumeAsync(queue.QueueName, autoAck: true, consumer, cancellationToken).ConfigureAwait(false);
                failures = 0;
                await consumer.Ended.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                if (failures++ % 30 == 0)
                {
                    LogSubscribeFailed(_logger, _connection.Endpoint, e.Message);
                }
            }
            finally
            {
                if (channel is not null)
                {
                    await RabbitMqConnection.CloseQuietlyAsync(channel).ConfigureAwait(false);
                }
            }
            try
            {
                await Task.Delay(failures == 0 ? TimeSpan.FromMilliseconds(50) : _options.ReconnectInterval, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task PublishLoopAsync()
    {
        IChannel? channel = null;
        var exchange = new CachedString(_options.LiveExchange);
        var routingKey = new CachedString("");
        var properties = new BasicProperties { ContentType = "application/json" };
        var batch = new List<GrainOutput>(MaxEventsPerMessage);
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                while (_outgoing.Reader.TryRead(out var output))
                {
                    batch.Add(output);
                    while (batch.Count < MaxEventsPerMessage && _outgoing.Reader.TryRead(out output))
                    {
                        batch.Add(output);
                    }
                    try
                    {
                        if (channel is not { IsOpen: true })
                        {
                            if (channel is not null)
                            {
                                await RabbitMqConnection.CloseQuietlyAsync(channel).ConfigureAwait(false);
                                channel = null;
                            }
                            if (_connection.Current is not { } connection)
                            {
                                _connection.EnsureReconnecting();
                                Drop("RabbitMQ is unreachable", batch.Count);
                                continue;
                            }
                            channel = await connection.CreateChannelAsync(cancellationToken: _stop.Token).ConfigureAwait(false);
                            await DeclareExchangeAsync(channel, _stop.Token).ConfigureAwait(false);
                        }
                        if (_connection.Blocked)
                        {
                            Drop("RabbitMQ blocks publishers", batch.Count);
                            continue;
                        }
                        var body = JsonSerializer.SerializeToUtf8Bytes(batch, RabbitMqJsonContext.Default.ListGrainOutput);
                        await channel.BasicPublishAsync(exchange, routingKey, mandatory: false, properties, body, _stop.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is not OperationCanceledException || !_stop.IsCancellationRequested)
                    {
                        Drop(e.Message, batch.Count);
                    }
                    finally
                    {
                        batch.Clear();
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            if (channel is not null)
            {
                await RabbitMqConnection.CloseQuietlyAsync(channel).ConfigureAwait(false);
            }
        }
    }

    private Task DeclareExchangeAsync(IChannel channel, CancellationToken cancellationToken) =>
        channel.ExchangeDeclareAsync(_options.LiveExchange, ExchangeType.Fanout, durable: true, autoDelete: false,
            cancellationToken: cancellationToken);

    private void Drop(string reason, int count = 1)
    {
        var dropped = Interlocked.Add(ref _dropped, count);
        // One warning for the first drop and then one per thousand, so an outage does not flood the log.
        if (dropped == count || dropped / 1000 != (dropped - count) / 1000)
        {
            LogDropped(_logger, dropped, reason);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }
        _outgoing.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        await _publisher.ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
    }

    private sealed class LiveConsumer(IChannel channel, ChannelWriter<GrainOutput> into, ILogger logger) : AsyncDefaultBasicConsumer(channel)
    {
        public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override Task HandleBasicDeliverAsync(string consumerTag, ulong deliveryTag, bool redelivered, string exchange,
            string routingKey, IReadOnlyBasicProperties properties, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
        {
            try
            {
                if (IsArray(body.Span))
                {
                    foreach (var output in JsonSerializer.Deserialize(body.Span, RabbitMqJsonContext.Default.ListGrainOutput) ?? [])
                    {
                        into.TryWrite(output);
                    }
                }
                else if (JsonSerializer.Deserialize(body.Span, RabbitMqJsonContext.Default.GrainOutput) is { } output)
                {
                    into.TryWrite(output);
                }
            }
            catch (JsonException e)
            {
                LogBadEvent(logger, e);
            }
            return Task.CompletedTask;
        }

        private static bool IsArray(ReadOnlySpan<byte> json)
        {
            var start = json.IndexOfAnyExcept(" \t\r\n"u8);
            return start >= 0 && json[start] == (byte)'[';
        }

        protected override Task OnCancelAsync(string[] consumerTags, CancellationToken cancellationToken = default)
        {
            Ended.TrySetResult();
            return Task.CompletedTask;
        }

        public override async Task HandleChannelShutdownAsync(object channel, RabbitMQ.Client.Events.ShutdownEventArgs reason)
        {
            Ended.TrySetResult();
            await base.HandleChannelShutdownAsync(channel, reason).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live events: dropped {Dropped} events so far ({Reason})")]
    private static partial void LogDropped(ILogger logger, long dropped, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live events: subscribing at {Endpoint} failed; retrying: {Error}")]
    private static partial void LogSubscribeFailed(ILogger logger, string endpoint, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live events: an event could not be read")]
    private static partial void LogBadEvent(ILogger logger, Exception exception);
}
