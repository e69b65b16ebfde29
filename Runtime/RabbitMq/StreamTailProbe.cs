using RabbitMQ.Client;

namespace Runtime.RabbitMq;

/// <summary>
/// Finds the last message of a stream queue: a short-lived consumer attaches at "last", which makes the broker deliver
/// the stream's last chunk at once; cancelling it and waiting for the cancel-ok (sent after those deliveries) bounds the
/// wait without a timer. Exact while the last chunk holds at most 10,000 messages (a chunk is what the stream writer
/// flushed at once: one publish burst); otherwise the highest offset among the first 10,000 of the chunk.
/// </summary>
internal sealed class StreamTailProbe(IChannel channel) : AsyncDefaultBasicConsumer(channel)
{
    /// <summary>Prefetch of the probe: the most messages of the last chunk it looks at.</summary>
    private const ushort ProbePrefetch = 10_000;

    /// <summary>The highest offset delivered; -1 for a stream never written (retention never deletes the last segment).</summary>
    public long MaxOffset { get; private set; } = -1;

    /// <summary>The headers of the message at <see cref="MaxOffset"/>.</summary>
    public IDictionary<string, object?>? LastHeaders { get; private set; }

    private TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<StreamTailProbe> RunAsync(IChannel channel, string queue, CancellationToken cancellationToken)
    {
        await channel.BasicQosAsync(0, ProbePrefetch, false, cancellationToken).ConfigureAwait(false);
        var probe = new StreamTailProbe(channel);
        var tag = await channel.BasicConsumeAsync(queue, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
            new Dictionary<string, object?> { ["x-stream-offset"] = "last" }, probe, cancellationToken).ConfigureAwait(false);
        await channel.BasicCancelAsync(tag, noWait: false, cancellationToken).ConfigureAwait(false);
        await probe.Cancelled.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return probe;
    }

    public override Task HandleBasicDeliverAsync(string consumerTag, ulong deliveryTag, bool redelivered, string exchange,
        string routingKey, IReadOnlyBasicProperties properties, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        if (RabbitMqInboxLog.ReadOffset(properties) is { } offset && offset > MaxOffset)
        {
            MaxOffset = offset;
            LastHeaders = properties.Headers;
        }
        return Task.CompletedTask;
    }

    protected override Task OnCancelAsync(string[] consumerTags, CancellationToken cancellationToken = default)
    {
        Cancelled.TrySetResult();
        return Task.CompletedTask;
    }

    public override Task HandleChannelShutdownAsync(object channel, RabbitMQ.Client.Events.ShutdownEventArgs reason)
    {
        Cancelled.TrySetException(new LogUnavailableException($"The probe channel closed: {reason.ReplyCode} {reason.ReplyText}"));
        return base.HandleChannelShutdownAsync(channel, reason);
    }
}
