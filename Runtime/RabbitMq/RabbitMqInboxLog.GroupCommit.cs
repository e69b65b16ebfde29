namespace Runtime.RabbitMq;

public sealed partial class RabbitMqInboxLog
{
    /// <summary>Most readings in one group record: positions within a record number up to <c>LogPosition.MaxReadingsPerRecord</c>.</summary>
    internal const int MaxGroupReadings = 100_000;

    /// <summary>Most bytes one publish of a partition carries, unless a single append is larger.</summary>
    internal const int MaxGroupBytes = 1 << 20;

    /// <summary>
    /// A partition's group commit. One publish per partition is in flight at a time; the appends that arrive meanwhile
    /// queue, and the next publish carries all of them, the telemetry entries of consecutive appends in one
    /// <see cref="TelemetryGroupEntry"/> record. A lone append is published at once, as one message; under load the broker
    /// and the partition's reader handle one message for many requests, where each request would otherwise cost one
    /// message per partition it has readings for (8 for a batch of 100 readings of a fleet). An append completes
    /// when the publish carrying it is confirmed and fails with it; an append whose caller gave up before its publish
    /// began is left out of the log.
    /// </summary>
    private sealed class GroupCommit(RabbitMqInboxLog log, int partition)
    {
        private readonly Lock _gate = new();
        private readonly Queue<Append> _queue = new();
        private bool _publishing;

        public Append Enqueue(byte[][] bodies, int readings)
        {
            var append = new Append(bodies, readings);
            lock (_gate)
            {
                _queue.Enqueue(append);
                if (_publishing)
                {
                    return append;
                }
                _publishing = true;
            }
            _ = Task.Run(PublishQueuedAsync);
            return append;
        }

        private async Task PublishQueuedAsync()
        {
            var taken = new List<Append>();
            while (true)
            {
                taken.Clear();
                lock (_gate)
                {
                    long bytes = 0, readings = 0;
                    while (_queue.TryPeek(out var next))
                    {
                        if (taken.Count > 0 && (bytes + next.Bytes > MaxGroupBytes || readings + next.Readings > MaxGroupReadings))
                        {
                            break;
                        }
                        _queue.Dequeue();
                        if (next.TryStart())
                        {
                            taken.Add(next);
                            bytes += next.Bytes;
                            readings += next.Readings;
                        }
                    }
                    if (taken.Count == 0)
                    {
                        _publishing = false;
                        return;
                    }
                }
                await PublishAsync(taken).ConfigureAwait(false);
            }
        }

        private async Task PublishAsync(List<Append> appends)
        {
            var records = 0;
            try
            {
                var bodies = Records(appends, log._options.GroupCommit);
                records = bodies.Count;
                var connection = log._connection.Current
                                 ?? throw new LogUnavailableException($"RabbitMQ at {log._connection.Endpoint} is unreachable; reconnecting.");
                if (log._connection.Blocked)
                {
                    throw new LogUnavailableException($"RabbitMQ at {log._connection.Endpoint} blocks publishers (a memory or disk alarm).");
                }
                using var deadline = new CancellationTokenSource(log._options.PublishTimeout);
                await log._publishers[partition % log._publishers.Length]
                    .PublishAsync(connection, log._streams[partition], bodies, deadline.Token).ConfigureAwait(false);
                foreach (var append in appends)
                {
                    append.Confirmed();
                }
            }
            catch (Exception e)
            {
                var failure = e switch
                {
                    LogUnavailableException unavailable => unavailable,
                    OperationCanceledException => new LogUnavailableException(
                        $"RabbitMQ at {log._connection.Endpoint} did not confirm {records} records of partition {partition} within {log._options.PublishTimeout.TotalSeconds:0.###} s.", e),
                    _ => new LogUnavailableException($"Publishing to RabbitMQ failed: {e.Message}", e),
                };
                foreach (var append in appends)
                {
                    append.Failed(failure);
                }
            }
        }

        /// <summary>
        /// The messages of one publish: the entries of consecutive appends of one telemetry entry each (a request's readings
        /// of this partition) one record, a group when they are several; every entry of other appends its own record (and
        /// every entry when <see cref="RabbitMqOptions.GroupCommit"/> is off: one publish still carries them all).
        /// </summary>
        private static List<byte[]> Records(List<Append> appends, bool group)
        {
            var records = new List<byte[]>();
            var run = new List<byte[]>();
            foreach (var append in appends)
            {
                if (group && append.Bodies is [{ } telemetry] && telemetry[0] == InboxEntryCodec.TelemetryFormat)
                {
                    run.Add(telemetry);
                    continue;
                }
                EndRun();
                records.AddRange(append.Bodies);
            }
            EndRun();
            return records;

            void EndRun()
            {
                if (run.Count > 0)
                {
                    records.Add(run.Count == 1 ? run[0] : InboxEntryCodec.EncodeGroup(run));
                    run.Clear();
                }
            }
        }
    }

    /// <summary>One caller's entries, encoded, waiting for the publish that carries them.</summary>
    private sealed class Append(byte[][] bodies, int readings)
    {
        private const int Queued = 0, Started = 1, Abandoned = 2;

        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _state;

        public byte[][] Bodies => bodies;

        public long Bytes { get; } = bodies.Sum(b => (long)b.Length);

        public int Readings => readings;

        public Task Task => _done.Task;

        /// <summary>Whether the append goes into the publish being made (false: its caller gave up while it was queued).</summary>
        public bool TryStart() => Interlocked.CompareExchange(ref _state, Started, Queued) == Queued;

        /// <summary>The caller gave up waiting: left out of the log if its publish has not begun; its outcome is not observed.</summary>
        public void Abandon()
        {
            Interlocked.CompareExchange(ref _state, Abandoned, Queued);
            _done.Task.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        public void Confirmed() => _done.TrySetResult();

        public void Failed(Exception failure) => _done.TrySetException(failure);
    }
}
