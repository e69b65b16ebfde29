using Grains.Abstractions;

namespace Runtime;

/// <summary>
/// The silo's <see cref="IOutputSink"/>: publishes outputs live at once, and writes the outputs of grains that flush at
/// about the same time together in one read-model transaction (a group commit): while one write runs, the next collects,
/// and each caller's task completes when the write holding its outputs is durable (or fails with it). A transaction takes
/// at most <see cref="MaxOutputsPerWrite"/> outputs (a caller's outputs are never split): when a fleet closes its minutes
/// at once, 100,000 outputs are several bounded writes one after another, not one transaction that outlasts the
/// database's command timeout and fails them all.
/// <para>
/// Alert events and device commands (what rule grains write) have a group commit of their own beside the sensors' one: a
/// rule's commit, which the sensor that signalled it and that sensor's partition wait for, never queues behind the
/// aggregates of a fleet's minute close. The two write different rows, so neither order matters to the other.
/// </para>
/// <para>
/// With <paramref name="groupCommit"/> false (the embedded mode's in-memory store, whose writes are immediate) each
/// caller's outputs are written at once: nothing queues behind a minute close, and a sensor's flush is stored as soon
/// as it is asked for.
/// </para>
/// </summary>
public sealed class OutputSink(ILiveEvents live, IReadModelWriter writer, bool groupCommit = true) : IOutputSink
{
    /// <summary>Most outputs one write takes, unless a single caller hands over more.</summary>
    public const int MaxOutputsPerWrite = 5_000;

    private readonly WriteLane _sensors = new(writer);
    private readonly WriteLane _rules = new(writer);

    public void Publish(GrainOutput output) => live.Publish(output);

    public Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        if (outputs.Count == 0)
        {
            return Task.CompletedTask;
        }

        if (!groupCommit)
        {
            return writer.WriteAsync(outputs, cancellationToken);
        }

        var fromRules = false;
        foreach (var output in outputs)
        {
            fromRules |= output is AlertEvent or DeviceCommand;
        }
        return (fromRules ? _rules : _sensors).WriteAsync(outputs, cancellationToken);
    }

    private sealed class WriteLane(IReadModelWriter writer)
    {
        private readonly Lock _gate = new();

        /// <summary>Groups waiting to be written, in order; each completes when its write does.</summary>
        private readonly Queue<Group> _queued = new();

        /// <summary>The last group queued, which takes more outputs while it has room (null: none queued).</summary>
        private Group? _last;
        private bool _writing;

        public Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                var group = _last;
                if (group is null || group.Outputs.Count + outputs.Count > MaxOutputsPerWrite)
                {
                    _last = group = new Group();
                    _queued.Enqueue(group);
                }
                group.Outputs.AddRange(outputs);
                if (!_writing)
                {
                    _writing = true;
                    _ = Task.Run(WriteLoopAsync, CancellationToken.None);
                }

                return group.Done.Task.WaitAsync(cancellationToken);
            }
        }

        private async Task WriteLoopAsync()
        {
            while (true)
            {
                Group group;
                lock (_gate)
                {
                    if (!_queued.TryDequeue(out group!))
                    {
                        _writing = false;
                        return;
                    }

                    if (group == _last)
                    {
                        _last = null;
                    }
                }

                try
                {
                    await writer.WriteAsync(group.Outputs, CancellationToken.None).ConfigureAwait(false);
                    group.Done.TrySetResult();
                }
                catch (Exception e)
                {
                    group.Done.TrySetException(e);
                }
            }
        }
    }

    private sealed class Group
    {
        public List<GrainOutput> Outputs { get; } = [];

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
