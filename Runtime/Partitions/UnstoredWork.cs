namespace Runtime.Partitions;

/// <summary>
/// What a partition's reader needs to commit its position without a state write per sensor per checkpoint: which
/// sensors hold work they have not stored (since which snapshot and since when), and the snapshots of the partition's
/// state taken but not committed yet. A snapshot may be committed once every sensor given work before it was taken has
/// stored that work; then a replay from it gives each sensor again only what it may have lost. Pure: the reader passes
/// the time; it keeps one of these per activation and calls it between its own turns only.
/// </summary>
public sealed class UnstoredWork
{
    /// <summary>Snapshots kept at most; past it a new one replaces the newest (the commit then waits a little longer).</summary>
    public const int MaxSnapshots = 8;

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly List<(long Number, PartitionState State)> _snapshots = [];

    /// <summary>The number of the last snapshot taken (0: none yet).</summary>
    private long _lastSnapshot;

    /// <summary>Sensors holding work they have not stored.</summary>
    public int Count => _entries.Count;

    /// <summary>Snapshots taken and not committed.</summary>
    public int Snapshots => _snapshots.Count;

    /// <summary>
    /// The reader gives <paramref name="sensorId"/> work (readings up to log position <paramref name="given"/>, or a
    /// wake-up): the sensor holds it unstored until a flush reports a stored position at least that.
    /// </summary>
    public void Touch(string sensorId, long given, long nowMs)
    {
        if (!_entries.TryGetValue(sensorId, out var entry))
        {
            _entries[sensorId] = entry = new Entry { Since = _lastSnapshot, FirstAtMs = nowMs, Given = given };
        }

        entry.Given = Math.Max(entry.Given, given);
        entry.Touches++;
    }

    /// <summary>Adds a snapshot of the partition's state as of now (everything given so far is in it).</summary>
    public void AddSnapshot(PartitionState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _lastSnapshot++;
        if (_snapshots.Count == MaxSnapshots)
        {
            _snapshots[^1] = (_lastSnapshot, state);
        }
        else
        {
            _snapshots.Add((_lastSnapshot, state));
        }
    }

    /// <summary>
    /// The sensors to flush now: every one when at most <paramref name="allUpTo"/> hold work (or
    /// <paramref name="all"/>), otherwise those whose oldest unstored work was given at least
    /// <paramref name="olderThanMs"/> ago, the oldest first and at most <paramref name="max"/> of them. The bound spreads
    /// the writes of sensors that started at the same moment (a fleet's first readings, a restart) over a few
    /// checkpoints; each is then due again on its own schedule, so they do not write all together every interval.
    /// </summary>
    public FlushSelection Select(long nowMs, long olderThanMs, int allUpTo, bool all = false, int max = int.MaxValue)
    {
        var everyone = all || _entries.Count <= allUpTo;
        var due = new List<(long FirstAtMs, SensorToFlush Sensor)>(everyone ? _entries.Count : 0);
        foreach (var (sensorId, entry) in _entries)
        {
            if (everyone || nowMs - entry.FirstAtMs >= olderThanMs)
            {
                due.Add((entry.FirstAtMs, new SensorToFlush(sensorId, entry.Given, entry.Touches)));
            }
        }

        if (!everyone && due.Count > max)
        {
            due.Sort((x, y) => x.FirstAtMs.CompareTo(y.FirstAtMs));
            due.RemoveRange(max, due.Count - max);
        }

        return new FlushSelection(_lastSnapshot, nowMs, due.ConvertAll(d => d.Sensor));
    }

    /// <summary>
    /// How many sensors one checkpoint flushes at most: twice the share of one checkpoint interval in a write interval of
    /// the sensors holding work (a steady fleet needs about half of it), and never fewer than <paramref name="allUpTo"/>.
    /// </summary>
    public int FlushBound(TimeSpan checkpointInterval, TimeSpan writeInterval, int allUpTo) =>
        (int)Math.Min(int.MaxValue, Math.Max(allUpTo,
            Math.Ceiling(2.0 * _entries.Count * checkpointInterval.TotalMilliseconds / Math.Max(1, writeInterval.TotalMilliseconds))));

    /// <summary>
    /// The sensors of <paramref name="selection"/> stored what they had been given when it was made. One given nothing
    /// since is clean; one given more since holds work from after that moment.
    /// </summary>
    public void Flushed(FlushSelection selection)
    {
        ArgumentNullException.ThrowIfNull(selection);
        foreach (var sensor in selection.Sensors)
        {
            if (!_entries.TryGetValue(sensor.SensorId, out var entry))
            {
                continue;
            }

            if (entry.Touches == sensor.Touches)
            {
                _entries.Remove(sensor.SensorId);
            }
            else
            {
                entry.Since = Math.Max(entry.Since, selection.Snapshot);
                entry.FirstAtMs = Math.Max(entry.FirstAtMs, selection.AtMs);
            }
        }
    }

    /// <summary>
    /// The newest snapshot every sensor has stored the work before (null: none yet); it and the older ones are dropped.
    /// </summary>
    public PartitionState? TakeCommittable()
    {
        var oldestUnstored = long.MaxValue;
        foreach (var entry in _entries.Values)
        {
            oldestUnstored = Math.Min(oldestUnstored, entry.Since);
        }

        var newest = -1;
        for (var i = 0; i < _snapshots.Count && _snapshots[i].Number <= oldestUnstored; i++)
        {
            newest = i;
        }

        if (newest < 0)
        {
            return null;
        }

        var state = _snapshots[newest].State;
        _snapshots.RemoveRange(0, newest + 1);
        return state;
    }

    private sealed class Entry
    {
        /// <summary>The last snapshot taken before the oldest work the sensor has not stored was given: later ones hold that work's effects.</summary>
        public long Since;

        /// <summary>When the oldest work not stored was given (reader's clock).</summary>
        public long FirstAtMs;

        /// <summary>The greatest log position given (a wake-up gives the one the sensor reported).</summary>
        public long Given;

        /// <summary>Times given work: a flush clears the entry only when nothing was given after it was asked for.</summary>
        public int Touches;
    }
}

/// <summary>A sensor to flush and what it must have stored for the flush to clear it.</summary>
public readonly record struct SensorToFlush(string SensorId, long Given, int Touches);

/// <summary>The sensors to flush, chosen after snapshot <see cref="Snapshot"/> at <see cref="AtMs"/>.</summary>
public sealed record FlushSelection(long Snapshot, long AtMs, IReadOnlyList<SensorToFlush> Sensors);
