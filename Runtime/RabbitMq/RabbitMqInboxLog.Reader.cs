using System.Threading.Channels;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Runtime.RabbitMq;

public sealed partial class RabbitMqInboxLog
{
    /// <summary>
    /// Reads one partition's stream in order. A background loop keeps one consumer attached (x-stream-offset = the next
    /// offset to deliver, basic.qos = <see cref="RabbitMqOptions.Prefetch"/>); deliveries go into a bounded buffer that
    /// <see cref="ReadAsync"/> drains. When the channel or connection is lost, the loop attaches a new consumer at the
    /// offset after the last record put into the buffer; a delivery below it (or from a replaced consumer) is skipped, so
    /// the caller sees every record once, in offset order.
    /// </summary>
    private sealed class StreamReader : IInboxReader
    {
        private readonly RabbitMqInboxLog _log;
        private readonly int _partition;
        private readonly string _stream;
        private readonly Channel<LogRecord> _buffer;
        private readonly SemaphoreSlim _deliverLock = new(1, 1);
        private readonly CancellationTokenSource _stop = new();
        private readonly int _ackEvery;
        private readonly Task _loop;
        private long _next;
        private long _generation;

        public StreamReader(RabbitMqInboxLog log, int partition, long fromOffset)
        {
            _log = log;
            _partition = partition;
            _stream = log._options.StreamName(partition);
            _next = fromOffset;
            _buffer = Channel.CreateBounded<LogRecord>(new BoundedChannelOptions(log._options.Prefetch)
            {
                SingleReader = true,
                SingleWriter = true,
                FullMode = BoundedChannelFullMode.Wait,
            });
            // Acknowledging (multiple) every half prefetch keeps the stream's credit flowing without a frame per record.
            _ackEvery = Math.Max(1, log._options.Prefetch / 2);
            _loop = Task.Run(RunAsync);
        }

        public async ValueTask<int> ReadAsync(List<LogRecord> into, int max, TimeSpan maxWait, CancellationToken cancellationToken)
        {
            var n = Drain(into, max);
            if (n > 0 || max <= 0)
            {
                return n;
            }
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(maxWait);
            try
            {
                if (!await _buffer.Reader.WaitToReadAsync(wait.Token).ConfigureAwait(false))
                {
                    if (_buffer.Reader.Completion.IsFaulted)
                    {
                        await _buffer.Reader.Completion.ConfigureAwait(false);
                    }
                    throw new ObjectDisposedException(nameof(StreamReader));
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && !_stop.IsCancellationRequested)
            {
                return 0;
            }
            return Drain(into, max);
        }

        private int Drain(List<LogRecord> into, int max)
        {
            var n = 0;
            while (n < max && _buffer.Reader.TryRead(out var record))
            {
                into.Add(record);
                n++;
            }
            return n;
        }

        private async Task RunAsync()
        {
            var failures = 0;
            var lost = false;
            while (!_stop.IsCancellationRequested)
            {
                if (Volatile.Read(ref _log._disposed) != 0)
                {
                    _buffer.Writer.TryComplete(new ObjectDisposedException(nameof(RabbitMqInboxLog)));
                    break;
                }
                IChannel? channel = null;
                long from = -1;
                try
                {
                    var connection = await _log._connection.WaitAsync(_stop.Token).ConfigureAwait(false);
                    channel = await connection.CreateChannelAsync(cancellationToken: _stop.Token).ConfigureAwait(false);
                    await channel.BasicQosAsync(0, (ushort)_log._options.Prefetch, false, _stop.Token).ConfigureAwait(false);
                    Consumer consumer;
                    await _deliverLock.WaitAsync(_stop.Token).ConfigureAwait(false);
                    try
                    {
                        // Deliveries still queued for the previous consumer are dropped from here on.
                        from = _next;
                        consumer = new Consumer(this, channel, ++_generation);
                    }
                    finally
                    {
                        _deliverLock.Release();
                    }
                    await channel.BasicConsumeAsync(_stream, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
                        new Dictionary<string, object?> { ["x-stream-offset"] = from }, consumer, _stop.Token).ConfigureAwait(false);
                    if (lost)
                    {
                        LogReaderRestarted(_log._logger, _partition, from);
                    }
                    failures = 0;
                    lost = false;
                    await consumer.Ended.Task.WaitAsync(_stop.Token).ConfigureAwait(false);
                    lost = true;
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    lost = true;
                    if (failures++ % 30 == 0)
                    {
                        LogReaderFailed(_log._logger, _partition, from, e.Message);
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
                    await Task.Delay(failures == 0 ? TimeSpan.FromMilliseconds(50) : _log._options.ReconnectInterval, _stop.Token)
                        .ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        private async Task DeliverAsync(Consumer consumer, ulong deliveryTag, IReadOnlyBasicProperties properties, ReadOnlyMemory<byte> body)
        {
            try
            {
                await _deliverLock.WaitAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                if (consumer.Generation != _generation)
                {
                    return;
                }
                if (ReadOffset(properties) is not { } offset)
                {
                    _buffer.Writer.TryComplete(new InvalidDataException(
                        $"A delivery from '{_stream}' has no x-stream-offset header; is '{_stream}' a stream queue?"));
                    return;
                }
                if (offset >= _next)
                {
                    if (offset > _next && !consumer.Delivered)
                    {
                        LogGap(_log._logger, _partition, _next, offset);
                    }
                    InboxEntry entry;
                    try
                    {
                        entry = InboxEntryCodec.Decode(body.Span);
                    }
                    catch (InvalidDataException e)
                    {
                        LogBadRecord(_log._logger, e, _partition, offset);
                        _buffer.Writer.TryComplete(new InvalidDataException(
                            $"Record {offset} of stream '{_stream}' is not a valid inbox entry: {e.Message}", e));
                        return;
                    }
                    await _buffer.Writer.WriteAsync(new LogRecord(offset, entry), _stop.Token).ConfigureAwait(false);
                    _next = offset + 1;
                    consumer.Delivered = true;
                    _log.Observe(_partition, offset);
                }
                if (++consumer.Unacked >= _ackEvery)
                {
                    consumer.Unacked = 0;
                    await consumer.Channel.BasicAckAsync(deliveryTag, multiple: true, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or RabbitMQ.Client.Exceptions.AlreadyClosedException
                                          or ChannelClosedException)
            {
                // Stopping, or the channel went away: the loop attaches a new consumer at _next.
            }
            finally
            {
                _deliverLock.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }
            _stop.Cancel();
            await _loop.ConfigureAwait(false);
            _buffer.Writer.TryComplete();
            _stop.Dispose();
        }

        private sealed class Consumer(StreamReader reader, IChannel channel, long generation) : AsyncDefaultBasicConsumer(channel)
        {
            public long Generation => generation;

            public int Unacked { get; set; }

            public bool Delivered { get; set; }

            public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

            public override Task HandleBasicDeliverAsync(string consumerTag, ulong deliveryTag, bool redelivered, string exchange,
                string routingKey, IReadOnlyBasicProperties properties, ReadOnlyMemory<byte> body, CancellationToken cancellationToken) =>
                reader.DeliverAsync(this, deliveryTag, properties, body);

            protected override Task OnCancelAsync(string[] consumerTags, CancellationToken cancellationToken = default)
            {
                Ended.TrySetResult();
                return Task.CompletedTask;
            }

            public override async Task HandleChannelShutdownAsync(object channel, ShutdownEventArgs reason)
            {
                Ended.TrySetResult();
                await base.HandleChannelShutdownAsync(channel, reason).ConfigureAwait(false);
            }
        }
    }
}
