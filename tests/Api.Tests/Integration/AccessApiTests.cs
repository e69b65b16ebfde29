using System.Net;
using System.Net.Http.Headers;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>Issue 2 item 8: API keys with roles; 401 without a valid key, 403 with the wrong role, as ProblemDetails.</summary>
public sealed class AccessApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    public static TheoryData<string, string> OperatorEndpoints => new()
    {
        { "GET", "/api/v1/sensors" },
        { "GET", "/api/v1/sensors/s1" },
        { "GET", "/api/v1/sensors/s1/metrics" },
        { "PUT", "/api/v1/sensors/s1/metadata" },
        { "GET", "/api/v1/rules" },
        { "POST", "/api/v1/rules" },
        { "GET", "/api/v1/rules/r1" },
        { "PUT", "/api/v1/rules/r1" },
        { "DELETE", "/api/v1/rules/r1" },
        { "GET", "/api/v1/alerts" },
        { "POST", "/api/v1/alerts/a1/ack" },
        { "GET", "/api/v1/cluster" },
        { "GET", "/api/v1/cluster/metrics" },
    };

    public static TheoryData<string, string> AllEndpoints
    {
        get
        {
            var all = new TheoryData<string, string> { { "POST", "/api/v1/telemetry" }, { "GET", "/api/v1/devices/d1/commands" } };
            foreach (var row in OperatorEndpoints)
            {
                all.Add((string)row[0], (string)row[1]);
            }
            return all;
        }
    }

    private static HttpRequestMessage Request(string method, string path)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method is "POST" or "PUT")
        {
            request.Content = Json("{}");
        }
        return request;
    }

    [Theory]
    [MemberData(nameof(AllEndpoints))]
    public async Task WithoutAKey_Is401(string method, string path)
    {
        await (await factory.Client(null).SendAsync(Request(method, path)))
            .ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "An API key is required: send it in the X-Api-Key header.");
    }

    [Theory]
    [MemberData(nameof(AllEndpoints))]
    public async Task WithAWrongKey_Is401(string method, string path)
    {
        await (await factory.Client("not-a-configured-key-at-all").SendAsync(Request(method, path)))
            .ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "The API key is not valid.");

        var bearer = factory.Client(null);
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiFactory.OperatorKey + "x");
        await (await bearer.SendAsync(Request(method, path)))
            .ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "The API key is not valid.");
    }

    [Theory]
    [MemberData(nameof(OperatorEndpoints))]
    public async Task DeviceKey_OnOperatorEndpoints_Is403(string method, string path)
    {
        foreach (var key in new[] { ApiFactory.DeviceKey, ApiFactory.RestrictedDeviceKey })
        {
            await (await factory.Client(key).SendAsync(Request(method, path)))
                .ExpectProblemAsync(HttpStatusCode.Forbidden, "Forbidden", $"This API key has the role 'device', which may not use {method} {path}.");
        }
    }

    [Fact]
    public async Task OperatorKey_WorksInTheHeader_OrAsBearerToken()
    {
        await (await factory.Operator().GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK);

        var bearer = factory.Client(null);
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiFactory.OperatorKey);
        await (await bearer.GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK);

        // Operators may also post telemetry and read any device's commands.
        var operatorClient = factory.Operator();
        await (await operatorClient.GetAsync($"/api/v1/devices/{Ids.New("any")}/commands")).ExpectAsync(HttpStatusCode.OK);
    }

    [Fact]
    public async Task AccessTokenQueryParameter_CountsOnlyForTheHub()
    {
        await (await factory.Client(null).GetAsync($"/api/v1/rules?access_token={ApiFactory.OperatorKey}"))
            .ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "An API key is required: send it in the X-Api-Key header.");

        // The hub's negotiate endpoint takes it (a browser cannot set headers on a WebSocket).
        var negotiate = await factory.Client(null).PostAsync($"/hubs/live/negotiate?negotiateVersion=1&access_token={ApiFactory.OperatorKey}", null);
        var body = await negotiate.ExpectAsync(HttpStatusCode.OK);
        Assert.Contains(body.GetProperty("availableTransports").EnumerateArray(), t => t.GetProperty("transport").GetString() == "WebSockets");

        await (await factory.Client(null).PostAsync("/hubs/live/negotiate?negotiateVersion=1", null))
            .ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "An API key is required: send it in the X-Api-Key header.");
        await (await factory.Client(null).PostAsync("/hubs/live/negotiate?negotiateVersion=1&access_token=wrong-key-wrong-key", null))
            .ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "The API key is not valid.");
    }

    [Fact]
    public async Task OpenApiAndHealth_NeedNoKey()
    {
        var anonymous = factory.Client(null);
        await (await anonymous.GetAsync("/openapi/v1.json")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/live")).StatusCode);
    }
}
