namespace Runtime.InMemory;

/// <summary>The embedded inbox log: one in-process list per partition, shared by every silo of the process.</summary>
public sealed class InMemoryInboxLog(int partitions) : IInboxLog
{
    private readonly PartitionLog[] _logs = Enumerable.Range(0, partitions).Select(_ => new PartitionLog()).ToArray();

    public int Partitions => partitions;

    public ValueTask AppendAsync(int partition, IReadOnlyList<InboxEntry> entries, CancellationToken cancellationToken)
    {
        _logs[partition].Append(entries);
        return ValueTask.CompletedTask;
    }

    public IInboxReader OpenReader(int partition, long fromOffset) => new Reader(_logs[partition], fromOffset);

    public ValueTask<long> EndOffsetAsync(int partition, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_logs[partition].Count);

    private sealed class PartitionLog
    {
        private readonly List<InboxEntry> _entries = [];
        private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Count
        {
            get { lock (_entries) return _entries.Count; }
        }

        public void Append(IReadOnlyList<InboxEntry> entries)
        {
            TaskCompletionSource appended;
            lock (_entries)
            {
                _entries.AddRange(entries);
                appended = _appended;
                _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            appended.TrySetResult();
        }

        public int Read(long from, List<LogRecord> into, int max, out Task appended)
        {
            lock (_entries)
            {
                appended = _appended.Task;
                var n = (int)Math.Min(max, _entries.Count - from);
                for (var i = 0; i < n; i++)
                {
                    into.Add(new LogRecord(from + i, _entries[(int)from + i]));
                }
                return Math.Max(n, 0);
            }
        }
    }

    private sealed class Reader(PartitionLog log, long position) : IInboxReader
    {
        public async ValueTask<int> ReadAsync(List<LogRecord> into, int max, TimeSpan maxWait, CancellationToken cancellationToken)
        {
            var n = log.Read(position, into, max, out var appended);
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
                n = log.Read(position, into, max, out _);
            }
            position += n;
            return n;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
