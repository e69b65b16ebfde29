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

    /// <summary>Checks a page's <c>offset</c> (0 or more) and <c>limit</c> (1 to <paramref name="maxLimit"/>) when given.</summary>
    public static void CheckPage(long? offset, int? limit, int maxLimit, Dictionary<string, string[]> errors)
    {
        if (offset is < 0)
        {
            errors["offset"] = ["offset must be 0 or more"];
        }
        if (limit < 1 || limit > maxLimit)
        {
            errors["limit"] = [$"limit must be between 1 and {maxLimit}"];
        }
    }
}
