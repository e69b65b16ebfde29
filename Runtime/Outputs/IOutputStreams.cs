namespace Runtime.Outputs;

/// <summary>Reads the output streams from an offset (in memory in embedded mode, RabbitMQ stream queues in durable mode).</summary>
public interface IOutputStreams
{
    /// <summary>
    /// Up to <paramref name="limit"/> messages of <paramref name="stream"/> from <paramref name="fromOffset"/> on, in order.
    /// Messages retention has removed are skipped: the first record's offset is then above <paramref name="fromOffset"/>.
    /// </summary>
    Task<OutputPage> ReadAsync(OutputStream stream, long fromOffset, int limit, CancellationToken cancellationToken);
}

/// <summary>Messages read from a stream, and the offset its next message gets (the end when the page reached it).</summary>
public sealed record OutputPage(IReadOnlyList<OutputRecord> Records, long End);
