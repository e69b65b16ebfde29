namespace Runtime.InMemory;

/// <summary>
/// The embedded inbox log: one in-process list per partition, shared by every silo of the process. Entries below a
/// partition's committed position are dropped (<see cref="Committed"/>, when no open reader still needs them), so the log
/// holds only what a replay would read again, not the whole history. It keeps each entry encoded, as the durable log
/// does (<see cref="InboxEntryCodec"/>): an entry waits for its partition's commit for up to a sensor write interval, and
/// as objects its readings would outlive the young collections and be copied by each of them.
/// </summary>
public sealed class InMemoryInboxLog(int partitions) : IInboxLog
{
    private readonly PartitionLog[] _logs = Enumerable.Range(0, partitions).Select(_ => new PartitionLog()).ToArray();

    public int Partitions => partitions;

    public ValueTask AppendAsync(int partition, IReadOnlyList<InboxEntry> entries, CancellationToken cancellationToken)
    {
        var encoded = new byte[entries.Count][];
        for (var i = 0; i < encoded.Length; i++)
        {
            encoded[i] = InboxEntryCodec.Encode(entries[i]);
        }

        _logs[partition].Append(encoded);
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
        private readonly List<byte[]> _entries = [];
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

        public void Append(byte[][] entries)
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
            if (reader.Taken.Length < max)
            {
                reader.Taken = new byte[max][];
            }

            long from;
            int n;
            lock (_gate)
            {
                appended = _appended.Task;
                from = reader.Position;
                n = (int)Math.Max(0, Math.Min(max, _start + _entries.Count - from));
                _entries.CopyTo((int)(from - _start), reader.Taken, 0, n);
                reader.Position = from + n;
            }

            // Decoded outside the lock: appends do not wait for it.
            for (var i = 0; i < n; i++)
            {
                into.Add(new LogRecord(from + i, InboxEntryCodec.Decode(reader.Taken[i])));
                reader.Taken[i] = null!;
            }

            return n;
        }
    }

    private sealed class Reader(PartitionLog log, long position) : IInboxReader
    {
        /// <summary>The next offset to read; guarded by the partition log's lock.</summary>
        public long Position { get; set; } = position;

        /// <summary>The encoded entries of the current read, decoded after the lock is released (one read at a time).</summary>
        public byte[][] Taken { get; set; } = [];

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
