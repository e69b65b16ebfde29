using Grains.Abstractions;
using Runtime.Outputs;

namespace Runtime.InMemory;

/// <summary>
/// The output streams of embedded mode: each keeps its last <see cref="OutputOptions.InMemoryCapacity"/> outputs with
/// offsets counting from 0; an output whose id the stream still holds is not appended again (a replay's repeat). It keeps
/// the outputs themselves (the read models hold the same objects) and makes their JSON when a page is read: a fleet's
/// minute close appends 100,000 aggregates at once, and few of them are ever read from here. Outputs of a stream not
/// kept (<see cref="OutputOptions.Streams"/>) are not appended.
/// </summary>
/// <param name="streams">The output streams kept; all when null.</param>
public sealed class InMemoryOutputStreams(int capacity, IReadOnlyList<OutputStream>? streams = null) : IOutputStreams
{
    private readonly IReadOnlyList<OutputStream> _kept = streams ?? OutputMessages.Streams;

    private readonly Lock _gate = new();
    private readonly Stream[] _streams = OutputMessages.Streams.Select(_ => new Stream()).ToArray();

    /// <summary>Appends the outputs of the streams kept (aggregates, alert events, commands), each id once.</summary>
    public void Append(IReadOnlyList<GrainOutput> outputs)
    {
        lock (_gate)
        {
            foreach (var output in outputs)
            {
                if (OutputMessages.StreamOf(output) is not { } name || !_kept.Contains(name))
                {
                    continue;
                }
                var stream = _streams[(int)name];
                var id = output.Id;
                if (!stream.Ids.Add(id))
                {
                    continue;
                }
                stream.Outputs.Enqueue((id, output));
                stream.End++;
                if (stream.Outputs.Count > capacity)
                {
                    stream.Ids.Remove(stream.Outputs.Dequeue().Id);
                }
            }
        }
    }

    public Task<OutputPage> ReadAsync(OutputStream stream, long fromOffset, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fromOffset);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        long first, end;
        List<(string Id, GrainOutput Output)> taken;
        lock (_gate)
        {
            var s = _streams[(int)stream];
            end = s.End;
            first = s.End - s.Outputs.Count;
            var skip = (int)Math.Max(0, Math.Min(fromOffset - first, s.Outputs.Count));
            taken = s.Outputs.Skip(skip).Take(limit).ToList();
            first += skip;
        }

        // The JSON is made outside the lock: appends do not wait for a reader.
        var records = new List<OutputRecord>(taken.Count);
        foreach (var (id, output) in taken)
        {
            records.Add(new OutputRecord(first++, id, OutputMessages.TypeOf(output), OutputMessages.BodyOf(output)));
        }
        return Task.FromResult(new OutputPage(records, end));
    }

    private sealed class Stream
    {
        public Queue<(string Id, GrainOutput Output)> Outputs { get; } = new();

        public HashSet<string> Ids { get; } = new(StringComparer.Ordinal);

        public long End { get; set; }
    }
}
