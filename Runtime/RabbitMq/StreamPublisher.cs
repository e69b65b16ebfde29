using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Runtime.RabbitMq;

/// <summary>
/// One publishing channel in confirm mode with its own confirm tracking. An append takes the channel's send lock only
/// while its messages are written to the socket (one after another, so they reach the stream in that order and
/// contiguously); it then waits for their confirms without holding the lock, so concurrent appends pipeline on the
/// channel instead of each waiting for a round trip. Confirms are matched to appends by the channel's publish
/// sequence numbers; a negative confirm, a returned (unroutable) message or the channel closing fails the append.
/// </summary>
internal sealed class StreamPublisher : IAsyncDisposable
{
    /// <summary>Carries the publish sequence number, so that a returned message can be matched to its append.</summary>
    private const string SequenceHeader = "x-oiot-seq";

    private static readonly CachedString DefaultExchange = new("");

    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Lock _gate = new();
    private readonly Dictionary<ulong, Pending> _outstanding = [];
    private ulong _low;
    private long _generation;
    private IChannel? _channel;

    /// <summary>
    /// Publishes <paramref name="bodies"/> in order to the queue <paramref name="routingKey"/> and completes when the broker
    /// confirmed all of them. Fails with <see cref="LogUnavailableException"/>, or <see cref="OperationCanceledException"/>
    /// when <paramref name="cancellationToken"/> (which carries the caller's deadline) fires. <paramref name="describe"/>
    /// sets further properties of message i.
    /// </summary>
    public async Task PublishAsync(IConnection connection, CachedString routingKey, IReadOnlyList<byte[]> bodies, CancellationToken cancellationToken,
        Action<int, BasicProperties>? describe = null)
    {
        var pending = new Pending(bodies.Count);
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var channel = await EnsureChannelAsync(connection, cancellationToken).ConfigureAwait(false);
            var first = await channel.GetNextPublishSequenceNumberAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                pending.First = first;
                pending.Generation = _generation;
                if (_outstanding.Count == 0)
                {
                    _low = first;
                }
                for (var i = 0; i < bodies.Count; i++)
                {
                    _outstanding.Add(first + (ulong)i, pending);
                }
            }
            try
            {
                for (var i = 0; i < bodies.Count; i++)
                {
                    var properties = new BasicProperties
                    {
                        Headers = new Dictionary<string, object?>(2) { [SequenceHeader] = (long)(first + (ulong)i) },
                    };
                    describe?.Invoke(i, properties);
                    await channel.BasicPublishAsync(DefaultExchange, routingKey, mandatory: true, properties, bodies[i], cancellationToken)
                        .ConfigureAwait(false);
                }
                var next = await channel.GetNextPublishSequenceNumberAsync(cancellationToken).ConfigureAwait(false);
                if (next != first + (ulong)bodies.Count)
                {
                    throw new LogUnavailableException("The RabbitMQ publishing channel was reset during the publish.");
                }
            }
            catch (Exception e)
            {
                Abandon(pending);
                if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                throw e as LogUnavailableException ?? new LogUnavailableException($"Publishing to RabbitMQ failed: {e.Message}", e);
            }
        }
        finally
        {
            _sendLock.Release();
        }
        try
        {
            await pending.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Abandon(pending);
            throw;
        }
    }

    private async Task<IChannel> EnsureChannelAsync(IConnection connection, CancellationToken cancellationToken)
    {
        if (_channel is { IsOpen: true } open)
        {
            return open;
        }
        if (_channel is { } closed)
        {
            _channel = null;
            await RabbitMqConnection.CloseQuietlyAsync(closed).ConfigureAwait(false);
        }
        var channel = await connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: false),
            cancellationToken).ConfigureAwait(false);
        channel.BasicAcksAsync += (_, e) =>
        {
            Settle(channel, e.DeliveryTag, e.Multiple, null);
            return Task.CompletedTask;
        };
        channel.BasicNacksAsync += (_, e) =>
        {
            Settle(channel, e.DeliveryTag, e.Multiple, "RabbitMQ refused the message (negative publisher confirm).");
            return Task.CompletedTask;
        };
        channel.BasicReturnAsync += (_, e) =>
        {
            if (e.BasicProperties.Headers?.TryGetValue(SequenceHeader, out var value) == true && value is long sequence)
            {
                Settle(channel, (ulong)sequence, false,
                    $"RabbitMQ returned the message: {e.ReplyCode} {e.ReplyText} (does the stream '{e.RoutingKey}' exist?).");
            }
            return Task.CompletedTask;
        };
        channel.ChannelShutdownAsync += (_, e) =>
        {
            FailAll(channel, $"The RabbitMQ publishing channel closed: {e.ReplyCode} {e.ReplyText}.");
            return Task.CompletedTask;
        };
        _channel = channel;
        return channel;
    }

    private void Settle(IChannel channel, ulong tag, bool multiple, string? failure)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(channel, _channel))
            {
                return;
            }
            if (multiple)
            {
                for (var s = _low; s <= tag && _outstanding.Count > 0; s++)
                {
                    if (_outstanding.Remove(s, out var pending))
                    {
                        pending.Settle(failure);
                    }
                }
                _low = Math.Max(_low, tag + 1);
            }
            else if (_outstanding.Remove(tag, out var pending))
            {
                pending.Settle(failure);
            }
        }
    }

    private void FailAll(IChannel channel, string reason)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(channel, _channel))
            {
                return;
            }
            _generation++;
            foreach (var pending in _outstanding.Values)
            {
                pending.Settle(reason);
            }
            _outstanding.Clear();
        }
    }

    /// <summary>Forgets an append that failed or timed out; a late confirm for it is ignored.</summary>
    private void Abandon(Pending pending)
    {
        lock (_gate)
        {
            if (pending.Generation != _generation)
            {
                return;
            }
            for (var i = 0; i < pending.Count; i++)
            {
                if (_outstanding.TryGetValue(pending.First + (ulong)i, out var p) && ReferenceEquals(p, pending))
                {
                    _outstanding.Remove(pending.First + (ulong)i);
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_channel is { } channel)
            {
                FailAll(channel, "The log is being disposed.");
                _channel = null;
                await RabbitMqConnection.CloseQuietlyAsync(channel).ConfigureAwait(false);
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>The confirms one append waits for.</summary>
    private sealed class Pending(int count)
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _remaining = count;

        public int Count { get; } = count;

        public ulong First { get; set; }

        public long Generation { get; set; }

        public Task Task => _done.Task;

        public void Settle(string? failure)
        {
            if (failure is not null)
            {
                _done.TrySetException(new LogUnavailableException(failure));
            }
            else if (Interlocked.Decrement(ref _remaining) == 0)
            {
                _done.TrySetResult();
            }
        }
    }
}
