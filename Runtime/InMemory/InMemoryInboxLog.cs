namespace Runtime.InMemory;

/// <summary>
/// The embedded inbox log: one in-process list per partition, shared by every silo of the process. Entries below a
/// partition's committed position are dropped (<see cref="Committed"/>, when no open reader still needs them), so the log
/// holds only what a replay would read again, not the whole history.
/// </summary>
public sealed class InMemoryInboxLog(int partitions) : IInboxLog
{
    private readonly PartitionLog[] _logs = Enumerable.Range(0, partitions).Select(_ => new PartitionLog()).ToArray();

    public int Partitions => partitions;

    public ValueTask AppendAsync(int partition, IReadOnlyList<InboxEntry> entries, CancellationToken cancellationToken)
    {
        _logs[partition].Append(entries);
        return ValueTask.CompletedTask;
    }

    public IInboxReader OpenReader(int partition, long fromOffset) => _logs[partition].OpenReader(fromOffset);

    public ValueTask<long> EndOffsetAsync(int partition, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_logs[partition].End);

    /// <summary>Drops the partition's entries below <paramref name="beforeOffset"/> that no open reader has yet to read.</summary>
    public void Committed(int partition, long beforeOffset) => _logs[partition].Trim(beforeOffset);

    /// <summary>The first offset the partition still holds.</summary>
    public long StartOffset(int partition) => _logs[partition].Start;

    private sealed class PartitionLog
    {
        private readonly Lock _gate = new();
        private readonly List<InboxEntry> _entries = [];
        private readonly List<Reader> _readers = [];
        private long _start;
        private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long End
        {
            get { lock (_gate) return _start + _entries.Count; }
        }

        public long Start
        {
            get { lock (_gate) return _start; }
        }

        public void Append(IReadOnlyList<InboxEntry> entries)
        {
            TaskCompletionSource appended;
            lock (_gate)
            {
                _entries.AddRange(entries);
                appended = _appended;
                _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            appended.TrySetResult();
        }

        public Reader OpenReader(long fromOffset)
        {
            lock (_gate)
            {
                if (fromOffset < _start)
                {
                    throw new ArgumentOutOfRangeException(nameof(fromOffset), fromOffset,
                        $"Offsets below {_start} were trimmed after a checkpoint committed past them.");
                }
                var reader = new Reader(this, fromOffset);
                _readers.Add(reader);
                return reader;
            }
        }

        public void Close(Reader reader)
        {
            lock (_gate) _readers.Remove(reader);
        }

        public void Trim(long beforeOffset)
        {
            lock (_gate)
            {
                foreach (var reader in _readers)
                {
                    beforeOffset = Math.Min(beforeOffset, reader.Position);
                }
                var drop = (int)Math.Min(beforeOffset - _start, _entries.Count);
                if (drop > 0)
                {
                    _entries.RemoveRange(0, drop);
                    _start += drop;
                }
            }
        }

        /// <summary>Adds up to <paramref name="max"/> records from the reader's position on and moves it past them.</summary>
        public int Read(Reader reader, List<LogRecord> into, int max, out Task appended)
        {
            lock (_gate)
            {
                appended = _appended.Task;
                var from = reader.Position;
                var n = (int)Math.Max(0, Math.Min(max, _start + _entries.Count - from));
                for (var i = 0; i < n; i++)
                {
                    into.Add(new LogRecord(from + i, _entries[(int)(from - _start) + i]));
                }
                reader.Position = from + n;
                return n;
            }
        }
    }

    private sealed class Reader(PartitionLog log, long position) : IInboxReader
    {
        /// <summary>The next offset to read; guarded by the partition log's lock.</summary>
        public long Position { get; set; } = position;

        public async ValueTask<int> ReadAsync(List<LogRecord> into, int max, TimeSpan maxWait, CancellationToken cancellationToken)
        {
            var n = log.Read(this, into, max, out var appended);
            if (n == 0)
            {
                try
                {
                    await appended.WaitAsync(maxWait, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    return 0;
                }
                n = log.Read(this, into, max, out _);
            }
            return n;
        }

        public ValueTask DisposeAsync()
        {
            log.Close(this);
            return ValueTask.CompletedTask;
        }
    }
}
