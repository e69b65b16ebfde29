using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// The Idempotency-Keys a caller has remembered are bounded (issue 10 item 5): a new key past the caller's limit gets 429
/// with Retry-After and nothing of its request is stored; resends under keys it has, and other callers, go on.
/// </summary>
public sealed class IdempotencyLimitApiTests(LimitedApiFactory factory) : IClassFixture<LimitedApiFactory>
{
    private static HttpRequestMessage Post(string body, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/telemetry") { Content = Json(body) };
        request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    [Fact]
    public async Task A_new_key_past_the_caller_s_limit_gets_429_and_its_reading_is_not_stored()
    {
        var sensor = Ids.New("idem-limit");
        var t = factory.NextWindow() + 5_000;
        string Body(int i, double value) => $$$"""{"id":"{{{sensor}}}","timestamp":{{{t + i}}},"metrics":{"t":{{{value}}}}}""";

        for (var i = 1; i <= 3; i++)
        {
            await (await factory.Device().SendAsync(Post(Body(i, i), $"key-{i}"))).ExpectAsync(HttpStatusCode.Accepted);
        }
        var refused = await factory.Device().SendAsync(Post(Body(4, 100), "key-4"));
        await refused.ExpectProblemAsync(HttpStatusCode.TooManyRequests, "Too many Idempotency-Keys",
            "This API key has used 3 Idempotency-Keys within the last 15 minutes, its limit (Telemetry:MaxIdempotencyKeysPerCaller); "
            + "nothing of this request was stored. Retry after 60 s, or send it without an Idempotency-Key.");
        Assert.Equal(TimeSpan.FromSeconds(60), refused.Headers.RetryAfter?.Delta);

        // A resend under a key the caller has is answered as before; another caller has room of its own.
        await (await factory.Device().SendAsync(Post(Body(1, 1), "key-1"))).ExpectAsync(HttpStatusCode.Accepted);
        await (await factory.Operator().SendAsync(Post(Body(5, 10), "key-4"))).ExpectAsync(HttpStatusCode.Accepted);

        await factory.CloseMinuteAsync(t);
        await factory.SettledAsync();
        var point = (await Eventually.Json(async () =>
        {
            var from = Uri.EscapeDataString(T(ApiFactory.MinuteOf(t)).ToString("O"));
            var to = Uri.EscapeDataString(T(ApiFactory.MinuteOf(t) + ApiFactory.MinuteMs).ToString("O"));
            var response = await factory.Operator().GetAsync($"/api/v1/sensors/{sensor}/metrics?from={from}&to={to}");
            var json = response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonElement>() : default;
            return json.ValueKind == JsonValueKind.Object && json.GetProperty("points").GetArrayLength() == 1 ? json : null;
        })).GetProperty("points")[0];
        Assert.Equal((4, 16.0, 10.0), (point.GetProperty("count").GetInt32(), point.GetProperty("sum").GetDouble(), point.GetProperty("max").GetDouble()));
    }
}
