using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc.Testing;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// The Orleans Dashboard at /orleans: operators only, with the key in X-Api-Key or as the password of HTTP Basic
/// authentication (what a browser can give on a page load); an unauthenticated request is challenged for Basic credentials.
/// </summary>
public sealed class OrleansDashboardApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private const string Challenge = "Basic realm=\"OrleansIot\", charset=\"UTF-8\"";
    private const string KeyRequired = "An operator API key is required: give it as the password (any user name), or send it in the X-Api-Key header.";

    /// <summary>The page, its script and the JSON endpoints the page polls.</summary>
    public static TheoryData<string> DashboardPaths => new() { "/orleans/", "/orleans/index.min.js", "/orleans/DashboardCounters", "/orleans/GrainTypes", "/orleans/ClusterStats" };

    private HttpClient Basic(string user, string password)
    {
        var client = factory.Client(null);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return client;
    }

    private static void AssertChallenge(HttpResponseMessage response) =>
        Assert.Equal(Challenge, Assert.Single(response.Headers.WwwAuthenticate).ToString());

    [Theory]
    [MemberData(nameof(DashboardPaths))]
    public async Task WithoutCredentials_Is401_WithABasicChallenge(string path)
    {
        var response = await factory.Client(null).GetAsync(path);
        AssertChallenge(response);
        await response.ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", KeyRequired);
    }

    [Theory]
    [MemberData(nameof(DashboardPaths))]
    public async Task AWrongKey_Is401_AndChallengedAgain(string path)
    {
        foreach (var client in new[] { Basic("operator", "not-a-configured-key-at-all"), Basic("", ApiFactory.OperatorKey + "x"), factory.Client("not-a-configured-key-at-all") })
        {
            var response = await client.GetAsync(path);
            AssertChallenge(response);
            await response.ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "The API key is not valid.");
        }

        // Credentials that are not base64 of "user:password" authenticate nobody.
        foreach (var credentials in new[] { "%%%not-base64%%%", Convert.ToBase64String(Encoding.UTF8.GetBytes(ApiFactory.OperatorKey)) })
        {
            var client = factory.Client(null);
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", credentials);
            var response = await client.GetAsync(path);
            AssertChallenge(response);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
    }

    [Theory]
    [MemberData(nameof(DashboardPaths))]
    public async Task ADeviceKey_Is403(string path)
    {
        foreach (var key in new[] { ApiFactory.DeviceKey, ApiFactory.RestrictedDeviceKey })
        {
            foreach (var client in new[] { factory.Client(key), Basic("device", key) })
            {
                var response = await client.GetAsync(path);
                Assert.Empty(response.Headers.WwwAuthenticate);
                await response.ExpectProblemAsync(HttpStatusCode.Forbidden, "Forbidden", $"This API key has the role 'device', which may not use GET {path}.");
            }
        }
    }

    [Fact]
    public async Task TheOperatorKey_InTheHeader_OrAsTheBasicPassword_GetsThePage()
    {
        foreach (var client in new[] { factory.Operator(), Basic("anyone", ApiFactory.OperatorKey), Basic("", ApiFactory.OperatorKey) })
        {
            var page = await client.GetAsync("/orleans/");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            var html = await page.Content.ReadAsStringAsync();
            Assert.Contains("<title>Orleans Dashboard</title>", html, StringComparison.Ordinal);
            Assert.Contains("src=\"./index.min.js\"", html, StringComparison.Ordinal);

            var script = await client.GetAsync("/orleans/index.min.js");
            Assert.Equal(HttpStatusCode.OK, script.StatusCode);
            Assert.Contains("javascript", script.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        }

        // Without the trailing slash: redirected to it (the page's assets are relative), after authorization.
        var noRedirects = factory.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        noRedirects.DefaultRequestHeaders.Add("X-Api-Key", ApiFactory.OperatorKey);
        var redirect = await noRedirects.GetAsync("/orleans");
        Assert.Equal(HttpStatusCode.MovedPermanently, redirect.StatusCode);
        Assert.Equal("/orleans/", redirect.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task TheDataEndpoints_ListThisClustersSilo_AndItsGrainTypes()
    {
        var sensor = Ids.New("od");
        var window = factory.NextWindow();
        await (await factory.Device().PostAsync("/api/v1/telemetry", Json($$"""{"sensor":"{{sensor}}","temperature":21.5,"timestamp":{{window + 1_000}}}""")))
            .ExpectAsync(HttpStatusCode.Accepted);
        await factory.SettledAsync();
        var cluster = await (await factory.Operator().GetAsync("/api/v1/cluster")).ExpectAsync(HttpStatusCode.OK);
        var siloId = Assert.Single(cluster.GetProperty("silos").EnumerateArray()).GetProperty("id").GetString()!;

        var client = Basic("operator", ApiFactory.OperatorKey);

        // The grain types of the cluster, as Orleans names their classes.
        var types = await (await client.GetAsync("/orleans/GrainTypes")).ExpectAsync(HttpStatusCode.OK);
        var names = types.EnumerateArray().Select(t => t.GetString()!).ToArray();
        Assert.Contains(names, n => n.EndsWith(".SensorGrain", StringComparison.Ordinal));
        Assert.Contains(names, n => n.EndsWith(".RuleGrain", StringComparison.Ordinal));
        Assert.Contains(names, n => n.EndsWith(".PartitionGrain", StringComparison.Ordinal));

        // The counters the dashboard's overview polls: this cluster's silo (as /api/v1/cluster names it), and the sensor
        // grain activated by the reading, on that silo. The dashboard grain refreshes them every second.
        var counters = await Eventually.Json(async () =>
        {
            var response = await client.GetAsync("/orleans/DashboardCounters");
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return null;
            }
            var body = await response.BodyAsync();
            var sensorGrains = body.GetProperty("simpleGrainStats").EnumerateArray()
                .Where(s => s.GetProperty("grainType").GetString()!.EndsWith(".SensorGrain", StringComparison.Ordinal)
                    && s.GetProperty("siloAddress").GetString() == siloId);
            return sensorGrains.Sum(s => s.GetProperty("activationCount").GetInt32()) >= 1 ? body : null;
        }, TimeSpan.FromSeconds(15), "the dashboard's counters with a sensor grain on the silo");
        var host = Assert.Single(counters.GetProperty("hosts").EnumerateArray());
        Assert.Equal(siloId, host.GetProperty("siloAddress").GetString());
        Assert.Equal("Active", host.GetProperty("status").GetString());
        Assert.Contains(counters.GetProperty("simpleGrainStats").EnumerateArray(),
            s => s.GetProperty("grainType").GetString()!.EndsWith(".PartitionGrain", StringComparison.Ordinal) && s.GetProperty("activationCount").GetInt32() >= 1);

        // The silo's own statistics, by the address the dashboard links to.
        var siloStats = await client.GetAsync($"/orleans/SiloStats/{siloId}");
        Assert.Equal(HttpStatusCode.OK, siloStats.StatusCode);
        Assert.Equal(JsonValueKind.Object, (await siloStats.BodyAsync()).ValueKind);

        // The silo's Orleans counters, read every second, without the two gauges that walk every activation and every
        // entry of the directory's cache (the silo's Dashboard host leaves them out).
        var siloCounters = await Eventually.Json(async () =>
        {
            var response = await client.GetAsync($"/orleans/SiloCounters/{siloId}");
            var body = response.StatusCode == HttpStatusCode.OK ? await response.BodyAsync() : default;
            return body.ValueKind == JsonValueKind.Array && body.EnumerateArray().Any(c => c.GetProperty("name").GetString() == "orleans-catalog-activations")
                ? body
                : (JsonElement?)null;
        }, TimeSpan.FromSeconds(15), "the silo's counters with its activation count");
        var counterNames = siloCounters.EnumerateArray().Select(c => c.GetProperty("name").GetString()).ToArray();
        Assert.Contains("orleans-catalog-activation-working-set", counterNames);
        Assert.DoesNotContain("orleans-messaging-processing-activation-data", counterNames);
        Assert.DoesNotContain("orleans-directory-cache-size", counterNames);

        // The versions the silo's host reports to the dashboard's silo page.
        var properties = await (await client.GetAsync($"/orleans/SiloProperties/{siloId}")).ExpectAsync(HttpStatusCode.OK);
        Assert.StartsWith("10.4.2", properties.GetProperty("orleansVersion").GetString());
        Assert.False(string.IsNullOrEmpty(properties.GetProperty("hostVersion").GetString()));
    }

    [Fact]
    public async Task BasicCredentials_CountOnlyForTheOrleansDashboard_AndOtherPathsAreNotChallenged()
    {
        // The Api itself takes the key as X-Api-Key or Bearer; its 401s stay ProblemDetails without a Basic challenge.
        var response = await Basic("operator", ApiFactory.OperatorKey).GetAsync("/api/v1/cluster");
        Assert.Empty(response.Headers.WwwAuthenticate);
        await response.ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "An API key is required: send it in the X-Api-Key header.");

        var anonymous = await factory.Client(null).GetAsync("/api/v1/cluster");
        Assert.Empty(anonymous.Headers.WwwAuthenticate);
        await anonymous.ExpectProblemAsync(HttpStatusCode.Unauthorized, "Unauthorized", "An API key is required: send it in the X-Api-Key header.");
    }
}
