using Grains.Abstractions;

namespace Runtime;

/// <summary>
/// How a read-model row written again (a replay, a paused silo's late write, two writes of one row in one transaction)
/// merges with the row it meets, in both stores: the further-along row stays. A sensor's summary with a lower log
/// position never replaces a newer one; an alert never goes back from resolved to open nor loses an acknowledgement.
/// </summary>
public static class ReadModelMerge
{
    /// <summary>The summary to keep: <paramref name="incoming"/> unless <paramref name="stored"/> reflects a later log position.</summary>
    public static SensorSummary Sensor(SensorSummary incoming, SensorSummary? stored) =>
        stored is not null && stored.AppliedPosition > incoming.AppliedPosition ? stored : incoming;

    /// <summary>
    /// The alert to keep: <paramref name="incoming"/>, unless <paramref name="stored"/> is further along (resolved while
    /// the incoming is open, or acknowledged while the incoming is an open alert without it); an acknowledgement the
    /// incoming lacks is kept.
    /// </summary>
    public static Alert Alert(Alert incoming, Alert? stored)
    {
        if (stored is null)
        {
            return incoming;
        }

        var storedAhead = (stored.State == AlertState.Resolved && incoming.State != AlertState.Resolved)
            || (stored.AcknowledgedAtMs is not null && incoming.AcknowledgedAtMs is null && incoming.State != AlertState.Resolved);
        if (storedAhead)
        {
            return stored;
        }

        return incoming.AcknowledgedAtMs is null && stored.AcknowledgedAtMs is not null
            ? incoming with { AcknowledgedAtMs = stored.AcknowledgedAtMs, AcknowledgedBy = stored.AcknowledgedBy }
            : incoming;
    }

    /// <summary>The rows of one write merged per key, in order of first appearance.</summary>
    public static List<T> PerKey<T, TKey>(IReadOnlyList<T> items, Func<T, TKey> key, Func<T, T?, T> merge) where TKey : notnull
    {
        var index = new Dictionary<TKey, int>(items.Count);
        var rows = new List<T>(items.Count);
        foreach (var item in items)
        {
            if (index.TryGetValue(key(item), out var i))
            {
                rows[i] = merge(item, rows[i]);
            }
            else
            {
                index[key(item)] = rows.Count;
                rows.Add(item);
            }
        }

        return rows;
    }
}
