using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Runtime.RabbitMq;

/// <summary>
/// A metric of a reading in the inbox log as a two-element array, <c>["temperature",21.5]</c>: shorter than an object,
/// and read without the serializer's constructor-parameter path, which was the largest cost of reading the log.
/// Non-finite values are written as "NaN", "Infinity" or "-Infinity", as elsewhere in the log.
/// </summary>
internal sealed class MetricValueConverter : JsonConverter<MetricValue>
{
    public override MetricValue Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var name = ReadPairName(ref reader, "metric");
        double value;
        if (reader.TokenType == JsonTokenType.Number)
        {
            value = reader.GetDouble();
        }
        else if (reader.TokenType == JsonTokenType.String
                 && double.TryParse(reader.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var named) && !double.IsFinite(named))
        {
            value = named;
        }
        else
        {
            throw new JsonException("A metric's value must be a number, \"NaN\", \"Infinity\" or \"-Infinity\".");
        }
        EndPair(ref reader, "metric");
        return new MetricValue(name, value);
    }

    public override void Write(Utf8JsonWriter writer, MetricValue value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        writer.WriteStringValue(value.Name);
        if (double.IsFinite(value.Value))
        {
            writer.WriteNumberValue(value.Value);
        }
        else
        {
            writer.WriteStringValue(value.Value.ToString(CultureInfo.InvariantCulture));
        }
        writer.WriteEndArray();
    }

    /// <summary>Reads <c>[</c> and the name, and moves to the value.</summary>
    internal static string ReadPairName(ref Utf8JsonReader reader, string what)
    {
        if (reader.TokenType != JsonTokenType.StartArray || !reader.Read() || reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException($"{Article(what)} {what} must be an array [name, value].");
        }
        var name = ReadName(ref reader);
        if (!reader.Read())
        {
            throw new JsonException($"{Article(what)} {what} must be an array [name, value].");
        }
        return name;
    }

    /// <summary>
    /// Names and short values repeat across the readings of a log (every reading of a fleet names "temperature"): each
    /// decoding thread keeps them in a small cache, so that reading the log does not allocate them again and again.
    /// </summary>
    [ThreadStatic]
    private static Utf8NameCache? t_names;

    /// <summary>The current string token, from the thread's cache when it is short and unescaped.</summary>
    internal static string ReadName(ref Utf8JsonReader reader) =>
        reader.ValueIsEscaped || reader.HasValueSequence
            ? reader.GetString()!
            : (t_names ??= new Utf8NameCache(1024, 64)).Get(reader.ValueSpan) ?? reader.GetString()!;

    private static string Article(string what) => what.StartsWith('a') ? "An" : "A";

    internal static void EndPair(ref Utf8JsonReader reader, string what)
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.EndArray)
        {
            throw new JsonException($"{Article(what)} {what} must be an array of two elements [name, value].");
        }
    }
}

/// <summary>An attribute of a reading in the inbox log as <c>["light","on"]</c>.</summary>
internal sealed class AttributeValueConverter : JsonConverter<AttributeValue>
{
    public override AttributeValue Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var name = MetricValueConverter.ReadPairName(ref reader, "attribute");
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException("An attribute's value must be a string.");
        }
        var value = MetricValueConverter.ReadName(ref reader);
        MetricValueConverter.EndPair(ref reader, "attribute");
        return new AttributeValue(name, value);
    }

    public override void Write(Utf8JsonWriter writer, AttributeValue value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        writer.WriteStringValue(value.Name);
        writer.WriteStringValue(value.Value);
        writer.WriteEndArray();
    }
}
