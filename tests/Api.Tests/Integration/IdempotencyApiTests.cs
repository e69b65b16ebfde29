using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// A client that resends a request after a 503 or a timeout sends the same Idempotency-Key: it is counted once. Keys
/// belong to the caller (the API key): another caller's key is its own, and a caller reusing a key for another body is
/// refused rather than acknowledged and then dropped.
/// </summary>
public sealed class IdempotencyApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private static HttpRequestMessage Post(string body, string? key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/telemetry") { Content = Json(body) };
        if (key is not null)
        {
            request.Headers.Add("Idempotency-Key", key);
        }
        return request;
    }

    private async Task<JsonElement> MinuteAsync(string sensor, long t, int count) => (await Eventually.Json(async () =>
    {
        var from = Uri.EscapeDataString(T(ApiFactory.MinuteOf(t)).ToString("O"));
        var to = Uri.EscapeDataString(T(ApiFactory.MinuteOf(t) + ApiFactory.MinuteMs).ToString("O"));
        var body = await (await factory.Operator().GetAsync($"/api/v1/sensors/{sensor}/metrics?from={from}&to={to}")).SensorBodyAsync();
        return body is { } json && json.GetProperty("points").GetArrayLength() == 1 && json.GetProperty("points")[0].GetProperty("count").GetInt32() == count ? json : null;
    })).GetProperty("points")[0];

    [Fact]
    public async Task Another_caller_using_the_same_key_is_processed_and_a_caller_reusing_its_key_for_another_body_gets_422()
    {
        var sensor = Ids.New("idem-scope");
        var t = factory.NextWindow() + 5_000;
        string Body(double value) => $$$"""{"id":"{{{sensor}}}","timestamp":{{{t}}},"metrics":{"t":{{{value}}}}}""";

        await (await factory.Device().SendAsync(Post(Body(1), "shared-key"))).ExpectAsync(HttpStatusCode.Accepted);
        // The operator's key is another caller: the same key is its own, and its reading counts.
        await (await factory.Operator().SendAsync(Post(Body(2), "shared-key"))).ExpectAsync(HttpStatusCode.Accepted);
        // The device again, same key, another body: refused, nothing stored.
        await (await factory.Device().SendAsync(Post(Body(40), "shared-key"))).ExpectProblemAsync((HttpStatusCode)422, "Idempotency-Key reused",
            "This API key sent another body with Idempotency-Key 'shared-key' within the last 15 minutes; nothing of this request was stored. "
            + "Use a new key for a new request, and the same key only to resend the same body.");
        // The device resending its first body: accepted, and counted once.
        await (await factory.Device().SendAsync(Post(Body(1), "shared-key"))).ExpectAsync(HttpStatusCode.Accepted);
        await factory.CloseMinuteAsync(t);
        await factory.SettledAsync();

        var point = await MinuteAsync(sensor, t, 2);
        Assert.Equal((2, 3.0, 2.0), (point.GetProperty("count").GetInt32(), point.GetProperty("sum").GetDouble(), point.GetProperty("max").GetDouble()));
    }

    [Fact]
    public async Task A_request_resent_with_its_idempotency_key_is_counted_once()
    {
        var sensor = Ids.New("idem");
        var t = factory.NextWindow() + 5_000;
        var device = factory.Device();
        async Task PostAsync(string? key, double value)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/telemetry")
            {
                Content = Json($$$"""{"id":"{{{sensor}}}","timestamp":{{{t}}},"metrics":{"t":{{{value}}}}}"""),
            };
            if (key is not null)
            {
                request.Headers.Add("Idempotency-Key", key);
            }
            await (await device.SendAsync(request)).ExpectAsync(HttpStatusCode.Accepted);
        }

        await PostAsync("batch-1", 1);
        await PostAsync("batch-1", 1);
        await PostAsync("batch-2", 2);
        await PostAsync(null, 4);
        await factory.CloseMinuteAsync(t);
        await factory.SettledAsync();

        var from = Uri.EscapeDataString(T(ApiFactory.MinuteOf(t)).ToString("O"));
        var to = Uri.EscapeDataString(T(ApiFactory.MinuteOf(t) + ApiFactory.MinuteMs).ToString("O"));
        var body = await Eventually.Json(async () =>
        {
            var json = await factory.Operator().GetFromJsonAsync<JsonElement>($"/api/v1/sensors/{sensor}/metrics?from={from}&to={to}");
            return json.GetProperty("points").GetArrayLength() == 1 ? json : null;
        });
        var point = body.GetProperty("points")[0];
        Assert.Equal((3, 7.0), (point.GetProperty("count").GetInt32(), point.GetProperty("sum").GetDouble()));
    }

    [Fact]
    public async Task An_invalid_idempotency_key_is_a_400_and_nothing_is_stored()
    {
        var sensor = Ids.New("idem-bad");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/telemetry")
        {
            Content = Json($$$"""{"id":"{{{sensor}}}","metrics":{"t":1}}"""),
        };
        request.Headers.TryAddWithoutValidation("Idempotency-Key", new string('k', 129));
        await (await factory.Device().SendAsync(request)).ExpectProblemAsync(HttpStatusCode.BadRequest, "Invalid Idempotency-Key",
            "The Idempotency-Key header must be 1 to 128 visible ASCII characters.");
        await factory.SettledAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await factory.Operator().GetAsync($"/api/v1/sensors/{sensor}")).StatusCode);
    }
}
