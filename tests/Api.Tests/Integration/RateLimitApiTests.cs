using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>The Api with small rate limits, so that a test reaches them in a few requests.</summary>
public sealed class RateLimitedApiFactory : ApiFactory
{
    public const int DeviceBurst = 3;
    public const int ReadingBurst = 20;
    public const int OperatorBurst = 5;

    /// <summary>A device key used by one test only, so that its buckets are full when the test starts.</summary>
    public const string GatewayKey = "gateway-device-key-for-rate-limits";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Auth:Keys:3:Name", "gateway");
        builder.UseSetting("Auth:Keys:3:Key", GatewayKey);
        builder.UseSetting("Auth:Keys:3:Role", "device");
        builder.UseSetting("Telemetry:Limits:MaxItems", "20");
        builder.UseSetting("RateLimits:DeviceRequests:PerSecond", "1");
        builder.UseSetting("RateLimits:DeviceRequests:Burst", DeviceBurst.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("RateLimits:Readings:PerSecond", "1");
        builder.UseSetting("RateLimits:Readings:Burst", ReadingBurst.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("RateLimits:OperatorRequests:PerSecond", "1");
        builder.UseSetting("RateLimits:OperatorRequests:Burst", OperatorBurst.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// Rate limits per API key (issue 10 item 6): requests to the device endpoints, readings posted, requests to the operator
/// endpoints, each a token bucket of its own per key. Past a limit: 429 with Retry-After and a ProblemDetails body, nothing
/// of the request stored, and other keys (and the other class of endpoints) unaffected.
/// </summary>
public sealed class RateLimitApiTests(RateLimitedApiFactory factory) : IClassFixture<RateLimitedApiFactory>
{
    /// <summary>Buckets refill once a second: a burst may meet one refill, so requests go on until the first 429.</summary>
    private const int MaxAttempts = 12;

    private static string Reading(string sensor, long t, double value) =>
        $$$"""{"id":"{{{sensor}}}","timestamp":{{{t}}},"metrics":{"t":{{{value.ToString(System.Globalization.CultureInfo.InvariantCulture)}}}}}""";

    private static string Readings(string sensor, long t, int count, double value) =>
        "[" + string.Join(",", Enumerable.Range(0, count).Select(i => Reading(sensor, t + i, value))) + "]";

    /// <summary>Asserts a 429 whose detail is <paramref name="detail"/> followed by the retry sentence, with the same seconds as Retry-After.</summary>
    private static async Task<int> ExpectTooManyAsync(HttpResponseMessage response, string detail, int maxSeconds)
    {
        var body = await response.ExpectProblemAsync(HttpStatusCode.TooManyRequests, "Too many requests", null);
        var retryAfter = response.Headers.RetryAfter?.Delta;
        Assert.True(retryAfter is { } wait && wait >= TimeSpan.FromSeconds(1) && wait <= TimeSpan.FromSeconds(maxSeconds), $"Retry-After {response.Headers.RetryAfter}");
        var seconds = (int)retryAfter!.Value.TotalSeconds;
        Assert.Equal($"{detail} Nothing of this request was stored; retry after {seconds} s.", body.GetProperty("detail").GetString());
        return seconds;
    }

    private async Task<JsonElement> MinuteAsync(string sensor, long t, int count) => (await Eventually.Json(async () =>
    {
        var from = Uri.EscapeDataString(T(ApiFactory.MinuteOf(t)).ToString("O"));
        var to = Uri.EscapeDataString(T(ApiFactory.MinuteOf(t) + ApiFactory.MinuteMs).ToString("O"));
        var response = await factory.Operator().GetAsync($"/api/v1/sensors/{sensor}/metrics?from={from}&to={to}");
        if (!response.IsSuccessStatusCode)
        {
            return null; // 429 while the operator bucket refills, 404 until the sensor's first minute is stored
        }
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        return json.GetProperty("points").GetArrayLength() == 1 && json.GetProperty("points")[0].GetProperty("count").GetInt32() == count ? json : null;
    }, TimeSpan.FromSeconds(20), $"minute of {sensor} with {count} readings")).GetProperty("points")[0];

    [Fact]
    public async Task A_key_past_its_request_limit_gets_429_with_Retry_After_and_its_reading_is_not_stored_while_another_key_posts()
    {
        var sensor = Ids.New("rl-requests");
        var t = factory.NextWindow() + 5_000;
        var device = factory.Device();
        var accepted = 0;
        HttpResponseMessage? refused = null;
        for (var i = 0; i < MaxAttempts && refused is null; i++)
        {
            var response = await device.PostAsync("/api/v1/telemetry", Json(Reading(sensor, t + i, 1)));
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                accepted++;
            }
            else
            {
                refused = response;
            }
        }

        Assert.True(refused is not null, $"no 429 after {MaxAttempts} requests with a burst of {RateLimitedApiFactory.DeviceBurst}");
        Assert.True(accepted >= RateLimitedApiFactory.DeviceBurst, $"only {accepted} requests accepted before the 429");
        await ExpectTooManyAsync(refused,
            "This API key made more requests to the device endpoints than its limit of 1 per second (bursts of 3) allows.", maxSeconds: 1);

        // Another key has its own bucket.
        await (await factory.Client(ApiFactory.RestrictedDeviceKey).PostAsync("/api/v1/telemetry",
            Json(Reading(factory.RestrictedDeviceId, t, 5)))).ExpectAsync(HttpStatusCode.Accepted);

        // The refused request's reading (at t + accepted) was not stored: the minute holds exactly the accepted ones.
        await factory.CloseMinuteAsync(t);
        var point = await MinuteAsync(sensor, t, accepted);
        Assert.Equal((accepted, (double)accepted), (point.GetProperty("count").GetInt32(), point.GetProperty("sum").GetDouble()));
    }

    [Fact]
    public async Task Readings_past_a_key_s_reading_limit_get_429_and_none_of_them_is_stored()
    {
        var sensor = Ids.New("rl-readings");
        var t = factory.NextWindow() + 5_000;
        var device = factory.Client(RateLimitedApiFactory.GatewayKey);

        // One request takes the whole burst of readings; the next, of 5 readings, finds at most one refill (1 reading).
        await (await device.PostAsync("/api/v1/telemetry", Json(Readings(sensor, t, RateLimitedApiFactory.ReadingBurst, 1))))
            .ExpectAsync(HttpStatusCode.Accepted);
        var refused = await device.PostAsync("/api/v1/telemetry", Json(Readings(sensor, t + 1_000, 5, 100)));
        await ExpectTooManyAsync(refused, "This API key posted more readings than its limit of 1 per second (bursts of 20) allows.", maxSeconds: 5);

        await factory.CloseMinuteAsync(t);
        var point = await MinuteAsync(sensor, t, RateLimitedApiFactory.ReadingBurst);
        Assert.Equal((20, 20.0, 1.0), (point.GetProperty("count").GetInt32(), point.GetProperty("sum").GetDouble(), point.GetProperty("max").GetDouble()));
    }

    [Fact]
    public async Task Operator_endpoints_have_a_limit_of_their_own()
    {
        var observer = factory.Operator();
        HttpResponseMessage? refused = null;
        var answered = 0;
        for (var i = 0; i < MaxAttempts && refused is null; i++)
        {
            var response = await observer.GetAsync("/api/v1/rules");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                answered++;
            }
            else
            {
                refused = response;
            }
        }

        Assert.True(refused is not null, $"no 429 after {MaxAttempts} requests with a burst of {RateLimitedApiFactory.OperatorBurst}");
        Assert.True(answered >= RateLimitedApiFactory.OperatorBurst, $"only {answered} requests answered before the 429");
        await ExpectTooManyAsync(refused,
            "This API key made more requests to the operator endpoints than its limit of 1 per second (bursts of 5) allows.", maxSeconds: 1);

        // The same operator key posting telemetry uses the device endpoints' bucket, which it has not used.
        var sensor = Ids.New("rl-operator");
        await (await observer.PostAsync("/api/v1/telemetry", Json(Reading(sensor, factory.NextWindow() + 5_000, 1))))
            .ExpectAsync(HttpStatusCode.Accepted);
    }
}
