using Runtime.Outputs;

namespace Runtime.InMemory;

/// <summary>
/// The output streams of embedded mode: each keeps its last <see cref="OutputOptions.InMemoryCapacity"/> messages with
/// offsets counting from 0; a message whose id the stream still holds is not appended again (a replay's repeat).
/// </summary>
public sealed class InMemoryOutputStreams(int capacity) : IOutputStreams
{
    private readonly Lock _gate = new();
    private readonly Stream[] _streams = OutputMessages.Streams.Select(_ => new Stream()).ToArray();

    public void Append(IReadOnlyList<OutputMessage> messages)
    {
        lock (_gate)
        {
            foreach (var message in messages)
            {
                var stream = _streams[(int)message.Stream];
                if (!stream.Ids.Add(message.Id))
                {
                    continue;
                }
                stream.Records.Enqueue(new OutputRecord(stream.End++, message.Id, message.Type, message.Body));
                if (stream.Records.Count > capacity)
                {
                    stream.Ids.Remove(stream.Records.Dequeue().Id);
                }
            }
        }
    }

    public Task<OutputPage> ReadAsync(OutputStream stream, long fromOffset, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fromOffset);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        lock (_gate)
        {
            var s = _streams[(int)stream];
            var first = s.End - s.Records.Count;
            var records = s.Records.Skip((int)Math.Max(0, Math.Min(fromOffset - first, s.Records.Count))).Take(limit).ToList();
            return Task.FromResult(new OutputPage(records, s.End));
        }
    }

    private sealed class Stream
    {
        public Queue<OutputRecord> Records { get; } = new();

        public HashSet<string> Ids { get; } = new(StringComparer.Ordinal);

        public long End { get; set; }
    }
}
