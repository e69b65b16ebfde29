using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Api.Tests.Integration;

/// <summary>Request helpers and exact assertions on JSON bodies and ProblemDetails.</summary>
public static class HttpAssert
{
    /// <summary>The API's shape: camelCase, nulls omitted.</summary>
    public static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    public static StringContent NdJson(string body) => new(body, Encoding.UTF8, "application/x-ndjson");

    public static StringContent Json(object body) => Json(JsonSerializer.Serialize(body, Web));

    public static async Task<JsonElement> BodyAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    /// <summary>Asserts the status (showing the body when it differs) and returns the JSON body (default when empty).</summary>
    public static async Task<JsonElement> ExpectAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status} {status}, got {(int)response.StatusCode} {response.StatusCode}: {text}");
        if (text.Length == 0 || response.Content.Headers.ContentType?.MediaType?.Contains("json", StringComparison.Ordinal) != true)
        {
            return default;
        }
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    /// <summary>
    /// For a probe of a sensor's read: the body of a 200 answer, or null while the sensor is not known yet (404 "Sensor not
    /// found"). A reading is accepted once it is in the log; its sensor answers once its partition has delivered it there.
    /// Any other answer fails.
    /// </summary>
    public static async Task<JsonElement?> SensorBodyAsync(this HttpResponseMessage response)
    {
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            await response.ExpectProblemAsync(HttpStatusCode.NotFound, "Sensor not found", null);
            return null;
        }
        return await response.ExpectAsync(HttpStatusCode.OK);
    }

    /// <summary>Asserts an RFC 9457 problem: media type, status, title and (when given) detail. Returns the body.</summary>
    public static async Task<JsonElement> ExpectProblemAsync(this HttpResponseMessage response, HttpStatusCode status, string title, string? detail)
    {
        var body = await response.ExpectAsync(status);
        var text = body.ValueKind == JsonValueKind.Undefined ? "(no body)" : body.GetRawText();
        Assert.True(response.Content.Headers.ContentType?.MediaType == "application/problem+json",
            $"expected application/problem+json, got {response.Content.Headers.ContentType}: {text}");
        Assert.True(body.ValueKind == JsonValueKind.Object
            && body.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.Number && s.GetInt32() == (int)status
            && body.TryGetProperty("title", out var t) && t.GetString() == title
            && (detail is null || (body.TryGetProperty("detail", out var d) && d.GetString() == detail)),
            $"expected problem {(int)status} \"{title}\" \"{detail}\", got {text}");
        return body;
    }

    /// <summary>Asserts a validation problem (400) whose "errors" are exactly <paramref name="errors"/>.</summary>
    public static async Task<JsonElement> ExpectValidationProblemAsync(this HttpResponseMessage response, string title,
        IReadOnlyDictionary<string, string[]> errors)
    {
        var body = await response.ExpectProblemAsync(HttpStatusCode.BadRequest, title, null);
        JsonAssert.Equal(errors, body.GetProperty("errors"));
        return body;
    }

    public static DateTimeOffset T(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    /// <summary>ISO-8601 text of an epoch-ms time, as a query parameter.</summary>
    public static string Iso(long ms) => T(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
}

public static class JsonAssert
{
    /// <summary>
    /// Asserts that <paramref name="actual"/> equals <paramref name="expected"/> serialized like the API serializes
    /// (camelCase property names as written, nulls omitted): same properties, same values, numbers by value.
    /// </summary>
    public static void Equal(object expected, JsonElement actual)
    {
        var expectedNode = JsonNode.Parse(JsonSerializer.Serialize(expected, HttpAssert.Web));
        var actualNode = JsonNode.Parse(actual.GetRawText());
        if (!JsonNode.DeepEquals(expectedNode, actualNode))
        {
            var indented = new JsonSerializerOptions(HttpAssert.Web) { WriteIndented = true };
            Assert.Fail($"JSON differs.\nExpected:\n{expectedNode?.ToJsonString(indented)}\nActual:\n{actualNode?.ToJsonString(indented)}");
        }
    }
}
