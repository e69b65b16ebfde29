namespace Grains;

/// <summary>
/// Strings and metric-name layouts shared by the sensor grains of one silo, so that a million sensors sending the same
/// metric names, attribute values and metadata hold one copy of each. One per silo (a service of the silo, not static). Sharing never changes behaviour: a grain gets back a string or layout equal to the one it asked
/// for. Thread-safe; lookups happen only when a sensor sees something new. Bounded: past <see cref="MaxEntries"/>
/// entries (or for strings longer than <see cref="MaxSharedLength"/>) the caller's own instance is returned unshared.
/// </summary>
public sealed class SensorNameTable
{
    public const int MaxEntries = 100_000;
    public const int MaxSharedLength = 64;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
    private readonly Dictionary<string[], string[]> _layouts = new(LayoutComparer.Instance);

    /// <summary>The shared instance of <paramref name="value"/>.</summary>
    public string Intern(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length > MaxSharedLength)
        {
            return value;
        }

        lock (_gate)
        {
            return InternLocked(value);
        }
    }

    /// <summary>The shared layout equal to <paramref name="names"/> (whose elements are replaced by shared strings when it is new).</summary>
    public string[] Share(string[] names)
    {
        ArgumentNullException.ThrowIfNull(names);
        if (names.Length == 0)
        {
            return [];
        }

        lock (_gate)
        {
            if (_layouts.TryGetValue(names, out var shared))
            {
                return shared;
            }

            for (var i = 0; i < names.Length; i++)
            {
                names[i] = InternLocked(names[i]);
            }

            if (_layouts.Count < MaxEntries)
            {
                _layouts.Add(names, names);
            }

            return names;
        }
    }

    /// <summary>The shared layout of <paramref name="layout"/> followed by <paramref name="added"/>.</summary>
    public string[] Extend(string[] layout, ReadOnlySpan<string> added)
    {
        var names = new string[layout.Length + added.Length];
        layout.CopyTo(names, 0);
        added.CopyTo(names.AsSpan(layout.Length));
        return Share(names);
    }

    private string InternLocked(string value)
    {
        if (_strings.TryGetValue(value, out var shared))
        {
            return shared;
        }

        if (value.Length <= MaxSharedLength && _strings.Count < MaxEntries)
        {
            _strings.Add(value, value);
        }

        return value;
    }

    private sealed class LayoutComparer : IEqualityComparer<string[]>
    {
        public static readonly LayoutComparer Instance = new();

        public bool Equals(string[]? x, string[]? y) =>
            ReferenceEquals(x, y) || (x is not null && y is not null && x.AsSpan().SequenceEqual(y, StringComparer.Ordinal));

        public int GetHashCode(string[] names)
        {
            var hash = new HashCode();
            foreach (var name in names)
            {
                hash.Add(name, StringComparer.Ordinal);
            }

            return hash.ToHashCode();
        }
    }
}
