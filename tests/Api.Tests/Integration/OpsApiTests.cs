using System.Net;
using System.Text.Json;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>OpenAPI document, health endpoints and the cluster view.</summary>
public sealed class OpsApiTests(ApiFactory factory) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    [Fact]
    public async Task OpenApiDocument_ListsEveryV1Path_WithItsMethods()
    {
        var anonymous = factory.Client(null);
        var document = await (await anonymous.GetAsync("/openapi/v1.json")).ExpectAsync(HttpStatusCode.OK);

        Assert.StartsWith("3.", document.GetProperty("openapi").GetString());
        var paths = document.GetProperty("paths").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.EnumerateObject().Select(m => m.Name).Order().ToArray());
        var expected = new Dictionary<string, string[]>
        {
            ["/api/v1/telemetry"] = ["post"],
            ["/api/v1/sensors"] = ["get"],
            ["/api/v1/sensors/{id}"] = ["get"],
            ["/api/v1/sensors/{id}/metrics"] = ["get"],
            ["/api/v1/sensors/{id}/commands"] = ["get"],
            ["/api/v1/rules"] = ["get", "post"],
            ["/api/v1/rules/preview"] = ["post"],
            ["/api/v1/rules/{id}"] = ["delete", "get", "put"],
            ["/api/v1/alerts"] = ["get"],
            ["/api/v1/alerts/{id}/ack"] = ["post"],
            ["/api/v1/devices/{id}/commands"] = ["get"],
            ["/api/v1/cluster"] = ["get"],
            ["/api/v1/cluster/metrics"] = ["get"],
        };
        Assert.Equal(
            string.Join("\n", expected.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}: {string.Join(",", p.Value)}")),
            string.Join("\n", paths.Where(p => p.Key.StartsWith("/api/v1/", StringComparison.Ordinal))
                .OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}: {string.Join(",", p.Value)}")));

        var telemetry = document.GetProperty("paths").GetProperty("/api/v1/telemetry").GetProperty("post");
        Assert.Equal(["application/json", "application/x-ndjson"],
            telemetry.GetProperty("requestBody").GetProperty("content").EnumerateObject().Select(c => c.Name).Order().ToArray());
        var responses = telemetry.GetProperty("responses").EnumerateObject().Select(r => r.Name).ToArray();
        Assert.Subset(responses.ToHashSet(), new HashSet<string> { "202", "400", "413", "415" });
    }

    [Fact]
    public async Task UnknownRoutesAndMethods_AreProblemDetailsToo()
    {
        await (await _operator.GetAsync("/api/v1/nothing-here")).ExpectProblemAsync(HttpStatusCode.NotFound, "Not Found", null);
        await (await _operator.DeleteAsync("/api/v1/telemetry")).ExpectProblemAsync(HttpStatusCode.MethodNotAllowed, "Method Not Allowed", null);
    }

    [Fact]
    public async Task Health_LiveAndReady_Are200_WithoutAKey()
    {
        var anonymous = factory.Client(null);
        var live = await anonymous.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("Healthy", await live.Content.ReadAsStringAsync());

        // Ready once the silo holds both partitions.
        await Eventually.Until(async () => (await anonymous.GetAsync("/health/ready")).StatusCode == HttpStatusCode.OK, what: "/health/ready 200");
        Assert.Equal("Healthy", await (await anonymous.GetAsync("/health/ready")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Cluster_ShowsOneSilo_OwningBothPartitions_WithOffsetsLagAndActivations()
    {
        var window = factory.NextWindow();
        var sensors = Enumerable.Range(0, 6).Select(_ => Ids.New("cluster")).ToArray();
        var body = "[" + string.Join(",", sensors.Select((id, i) => $$$"""{"id":"{{{id}}}","timestamp":{{{window + i * 1_000}}},"v":{{{i}}}}""")) + "]";
        await (await _operator.PostAsync("/api/v1/telemetry", Json(body))).ExpectAsync(HttpStatusCode.Accepted);
        // The sensors may all hash to one partition; a tick goes to every partition, so both have records to commit.
        await factory.TickAsync(window + 10_000);

        // Every record applied and committed: lag 0 on both partitions, read by the one silo, with the sensors' activations.
        var cluster = await Eventually.Json(async () =>
        {
            var c = await (await _operator.GetAsync("/api/v1/cluster")).ExpectAsync(HttpStatusCode.OK);
            var map = c.GetProperty("partitionMap").EnumerateArray().ToArray();
            var settled = map.Length == 2
                && map.All(p => p.TryGetProperty("owner", out _) && p.GetProperty("lag").GetInt64() == 0 && p.GetProperty("endOffset").GetInt64() > 0)
                && c.GetProperty("activations").GetProperty("sensor").GetInt32() >= sensors.Length;
            return settled ? c : null;
        }, what: "both partitions owned, committed, with activations");

        Assert.Equal(2, cluster.GetProperty("partitions").GetInt32());
        var silo = Assert.Single(cluster.GetProperty("silos").EnumerateArray());
        var siloId = silo.GetProperty("id").GetString();
        Assert.False(string.IsNullOrEmpty(siloId));
        Assert.Equal("active", silo.GetProperty("status").GetString());
        Assert.False(string.IsNullOrEmpty(silo.GetProperty("name").GetString()));
        Assert.Equal([0, 1], silo.GetProperty("partitions").EnumerateArray().Select(p => p.GetInt32()));
        Assert.True(silo.GetProperty("lastHeartbeat").GetDateTimeOffset() >= silo.GetProperty("startedAt").GetDateTimeOffset());
        Assert.True(silo.GetProperty("activations").GetProperty("sensor").GetInt32() >= sensors.Length);
        Assert.Equal(2, silo.GetProperty("activations").GetProperty("partition").GetInt32());
        Assert.Equal(sensors.Length, silo.GetProperty("readingsApplied").GetInt64());

        var partitions = cluster.GetProperty("partitionMap").EnumerateArray().ToArray();
        Assert.Equal([0, 1], partitions.Select(p => p.GetProperty("partition").GetInt32()));
        foreach (var p in partitions)
        {
            Assert.Equal(siloId, p.GetProperty("owner").GetString());
            Assert.True(p.GetProperty("activeSince").GetDateTimeOffset() <= DateTimeOffset.UtcNow);
            Assert.Equal(p.GetProperty("endOffset").GetInt64(), p.GetProperty("committedOffset").GetInt64());
            Assert.Equal(p.GetProperty("endOffset").GetInt64(), p.GetProperty("appliedOffset").GetInt64());
            Assert.Equal(0, p.GetProperty("lag").GetInt64());
            Assert.True(p.GetProperty("lastCheckpointAt").GetDateTimeOffset() >= p.GetProperty("activeSince").GetDateTimeOffset());
        }
        Assert.Equal(sensors.Length, partitions.Sum(p => p.GetProperty("readingsApplied").GetInt64()));
        Assert.Equal(sensors.Length, partitions.Sum(p => p.GetProperty("sensors").GetInt32()));
        Assert.True(cluster.GetProperty("activations").GetProperty("sensor").GetInt32() >= sensors.Length);
        Assert.True(cluster.GetProperty("activations").TryGetProperty("rule", out _));
    }
}
