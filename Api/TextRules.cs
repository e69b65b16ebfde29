namespace Api;

/// <summary>
/// The one rule for every name and string value a device or operator sends (telemetry names and values, rule names,
/// metrics, commands and their parameters): kept exactly as sent, except text with a control character (U+0000–U+001F,
/// U+007F–U+009F) or a lone surrogate, which is refused with the field named. PostgreSQL's text and jsonb refuse NUL
/// and lone surrogates (a durable checkpoint would fail on them for good), and control characters do not display.
/// </summary>
public static class TextRules
{
    /// <summary>What in <paramref name="text"/> is not allowed ("the control character U+0000"), or null.</summary>
    public static string? Problem(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsControl(c))
            {
                return $"the control character U+{(int)c:X4}";
            }

            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                return $"the lone surrogate U+{(int)c:X4}";
            }
        }

        return null;
    }
}
