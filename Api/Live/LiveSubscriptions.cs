namespace Api.Live;

/// <summary>
/// How many of this node's hub connections follow each sensor and device group. The forwarder sends a sensor's
/// aggregates only when somebody here follows it: when a fleet closes its minutes together (100,000 aggregates within
/// seconds), turning each into an event for an empty group would hold up the alerts behind them.
/// </summary>
public sealed class LiveSubscriptions
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, int> _followers = new(StringComparer.Ordinal);

    public void Add(string group)
    {
        lock (_gate)
        {
            _followers[group] = _followers.GetValueOrDefault(group) + 1;
        }
    }

    public void Remove(string group)
    {
        lock (_gate)
        {
            if (_followers.TryGetValue(group, out var count))
            {
                if (count <= 1)
                {
                    _followers.Remove(group);
                }
                else
                {
                    _followers[group] = count - 1;
                }
            }
        }
    }

    public bool IsFollowed(string group)
    {
        lock (_gate)
        {
            return _followers.ContainsKey(group);
        }
    }
}
