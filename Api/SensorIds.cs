namespace Api;

/// <summary>
/// The one rule for sensor (device) ids, wherever an id comes in: telemetry, rule targets, control actions, paths, query
/// filters and live-hub subscriptions. 1 to 128 characters of ASCII letters, digits and <c>- _ . : @</c>, compared
/// exactly. ASCII only, so that look-alike ids are impossible: no Cyrillic 'а' beside the Latin 'a', no full-width or
/// combining forms, nothing that Unicode normalization would change; what an operator types is what a device sent.
/// </summary>
public static class SensorIds
{
    public const int MaxLength = 128;

    public const string Syntax = "1 to 128 characters: ASCII letters, digits, '-', '_', '.', ':', '@'";

    public static bool IsValid(string? id) => id is not null && Problem(id) is null;

    /// <summary>What is wrong with <paramref name="id"/> as a sensor id ("is longer than 128 characters"), or null.</summary>
    public static string? Problem(string id)
    {
        if (id.Length == 0)
        {
            return "is empty";
        }

        if (id.Length > MaxLength)
        {
            return $"is longer than {MaxLength} characters";
        }

        foreach (var c in id)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.' or ':' or '@'))
            {
                return char.IsControl(c) || char.IsSurrogate(c) || char.IsWhiteSpace(c)
                    ? $"contains U+{(int)c:X4}: a sensor id is {Syntax}"
                    : $"contains '{c}' (U+{(int)c:X4}): a sensor id is {Syntax}";
            }
        }

        return null;
    }
}
