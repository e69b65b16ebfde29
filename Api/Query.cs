using System.Globalization;

namespace Api;

/// <summary>Parsing of query-string values, reporting errors by parameter name.</summary>
public static class Query
{
    public static long? ParseTime(string? text, string name, Dictionary<string, string[]> errors)
    {
        if (text is null)
        {
            return null;
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowWhiteSpaces, out var time))
        {
            return time.ToUnixTimeMilliseconds();
        }
        errors[name] = [$"{name} must be an ISO-8601 time such as 2026-11-22T10:00:00Z, not '{text}'"];
        return null;
    }
}
