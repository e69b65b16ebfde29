using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
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
            ["/api/v1/sensors/{id}/metadata"] = ["put"],
            ["/api/v1/rules"] = ["get", "post"],
            ["/api/v1/rules/preview"] = ["post"],
            ["/api/v1/rules/{id}"] = ["delete", "get", "put"],
            ["/api/v1/alerts"] = ["get"],
            ["/api/v1/alerts/{id}/ack"] = ["post"],
            ["/api/v1/devices/{id}/commands"] = ["get"],
            ["/api/v1/cluster"] = ["get"],
            ["/api/v1/cluster/metrics"] = ["get"],
            ["/api/v1/mqtt"] = ["get"],
            ["/api/v1/outputs/{stream}"] = ["get"],
            ["/api/v1/locations/{location}/conditions"] = ["post"],
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

    /// <summary>
    /// Every operation with a role describes how to call it and every answer the access rules and the cluster add: the
    /// API key schemes, 401, 403, 429 and 503 (both with Retry-After), a success, and 204 for deletes. An endpoint
    /// added without them fails here.
    /// </summary>
    [Fact]
    public async Task OpenApiDocument_EveryProtectedOperation_HasSecurityAndItsAnswers()
    {
        var document = await (await factory.Client(null).GetAsync("/openapi/v1.json")).ExpectAsync(HttpStatusCode.OK);

        var schemes = document.GetProperty("components").GetProperty("securitySchemes");
        Assert.Equal(("apiKey", "header", "X-Api-Key"), (schemes.GetProperty("ApiKey").GetProperty("type").GetString(),
            schemes.GetProperty("ApiKey").GetProperty("in").GetString(), schemes.GetProperty("ApiKey").GetProperty("name").GetString()));
        Assert.Equal(("http", "bearer"), (schemes.GetProperty("Bearer").GetProperty("type").GetString(), schemes.GetProperty("Bearer").GetProperty("scheme").GetString()));

        var missing = new List<string>();
        var operations = 0;
        foreach (var path in document.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/api/v1/", StringComparison.Ordinal)))
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                operations++;
                var name = $"{operation.Name.ToUpperInvariant()} {path.Name}";
                var security = operation.Value.TryGetProperty("security", out var s)
                    ? s.EnumerateArray().SelectMany(r => r.EnumerateObject().Select(o => o.Name)).Order().ToArray()
                    : [];
                if (!security.SequenceEqual(["ApiKey", "Bearer"]))
                {
                    missing.Add($"{name}: security [{string.Join(", ", security)}]");
                }
                var responses = operation.Value.GetProperty("responses");
                foreach (var status in new[] { "401", "403", "429", "503" })
                {
                    if (!responses.TryGetProperty(status, out var response))
                    {
                        missing.Add($"{name}: no {status}");
                    }
                    else if (!response.GetProperty("content").TryGetProperty("application/problem+json", out _))
                    {
                        missing.Add($"{name}: {status} is not a ProblemDetails");
                    }
                    else if (status is "429" or "503" && !(response.TryGetProperty("headers", out var headers) && headers.TryGetProperty("Retry-After", out _)))
                    {
                        missing.Add($"{name}: {status} without Retry-After");
                    }
                }
                var successes = responses.EnumerateObject().Where(r => r.Name.StartsWith('2')).Select(r => r.Name).ToArray();
                if (successes.Length == 0 || (operation.Name == "delete" && !successes.SequenceEqual(["204"])))
                {
                    missing.Add($"{name}: successes [{string.Join(", ", successes)}]");
                }
                if (!operation.Value.TryGetProperty("summary", out _))
                {
                    missing.Add($"{name}: no summary");
                }
            }
        }

        Assert.True(operations >= 16, $"{operations} operations");
        Assert.Empty(missing);
    }

    [Fact]
    public async Task OpenApiDocument_DescribesTheTelemetryBody_Enums_AndHealth()
    {
        var document = await (await factory.Client(null).GetAsync("/openapi/v1.json")).ExpectAsync(HttpStatusCode.OK);
        var schemas = document.GetProperty("components").GetProperty("schemas");

        // The telemetry body: one reading or an array of them as JSON, or NDJSON; a 400 with rejected items or line/position.
        var telemetry = document.GetProperty("paths").GetProperty("/api/v1/telemetry").GetProperty("post");
        var json = telemetry.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema");
        JsonAssert.Equal(new object[]
        {
            new Dictionary<string, string> { ["$ref"] = "#/components/schemas/TelemetryReading" },
            new Dictionary<string, object> { ["type"] = "array", ["items"] = new Dictionary<string, string> { ["$ref"] = "#/components/schemas/TelemetryReading" } },
        }, json.GetProperty("oneOf"));
        Assert.Equal("string", telemetry.GetProperty("requestBody").GetProperty("content").GetProperty("application/x-ndjson")
            .GetProperty("schema").GetProperty("type").GetString());
        Assert.Equal(["deviceId", "id", "metadata", "metrics", "nodo", "sensor", "sensorId", "timestamp"],
            schemas.GetProperty("TelemetryReading").GetProperty("properties").EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal("#/components/schemas/TelemetryProblem", telemetry.GetProperty("responses").GetProperty("400").GetProperty("content")
            .GetProperty("application/problem+json").GetProperty("schema").GetProperty("$ref").GetString());
        Assert.Equal(["line", "position", "rejected"],
            schemas.GetProperty("TelemetryProblem").GetProperty("properties").EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));

        // The outside conditions: one observation or an array of them, timestamps read as the telemetry's are, and optional.
        var conditions = document.GetProperty("paths").GetProperty("/api/v1/locations/{location}/conditions").GetProperty("post")
            .GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("oneOf");
        var observation = conditions[0];
        Assert.Equal("object", observation.GetProperty("type").GetString());
        Assert.Equal("array", conditions[1].GetProperty("type").GetString());
        Assert.True(JsonElement.DeepEquals(observation, conditions[1].GetProperty("items")), "the array's items are observations");
        Assert.Equal(["metrics"], observation.GetProperty("required").EnumerateArray().Select(r => r.GetString()));
        Assert.True(JsonElement.DeepEquals(schemas.GetProperty("TelemetryReading").GetProperty("properties").GetProperty("timestamp"),
            observation.GetProperty("properties").GetProperty("timestamp")), "the timestamp as the telemetry's");

        // Enumerated values as enums, in requests, responses and query parameters.
        static string[] Enum(JsonElement schema) => [.. schema.GetProperty("enum").EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Null ? "(null)" : v.GetString()!)];
        Assert.Equal(["==", "!=", "<", "<=", ">", ">=", "(null)"], Enum(schemas.GetProperty("RuleConditionDto").GetProperty("properties").GetProperty("operator")));
        Assert.Equal(["raw", "avg", "min", "max", "sum", "count", "last", "(null)"], Enum(schemas.GetProperty("RuleConditionDto").GetProperty("properties").GetProperty("on")));
        Assert.Equal(["all", "sensors", "location", "model", "(null)"], Enum(schemas.GetProperty("RuleTargetDto").GetProperty("properties").GetProperty("kind")));
        Assert.Equal(["critical", "major", "minor", "warning", "info"], Enum(schemas.GetProperty("RuleResponse").GetProperty("properties").GetProperty("severity")));
        Assert.Equal(["open", "resolved"], Enum(schemas.GetProperty("AlertDto").GetProperty("properties").GetProperty("state")));
        var stateParameter = document.GetProperty("paths").GetProperty("/api/v1/alerts").GetProperty("get").GetProperty("parameters")
            .EnumerateArray().Single(p => p.GetProperty("name").GetString() == "state");
        Assert.Equal(["open", "resolved"], Enum(stateParameter.GetProperty("schema")));
        // Numbers are numbers, not "integer or string".
        Assert.Equal("integer", schemas.GetProperty("RuleResponse").GetProperty("properties").GetProperty("cooldownSeconds").GetProperty("type").GetString());

        // The health endpoints, without security.
        foreach (var path in new[] { "/health/live", "/health/ready" })
        {
            var get = document.GetProperty("paths").GetProperty(path).GetProperty("get");
            Assert.False(get.TryGetProperty("security", out _), path);
            Assert.Equal(["200", "503"], get.GetProperty("responses").EnumerateObject().Select(r => r.Name).Order(StringComparer.Ordinal));
        }
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

    /// <summary>
    /// Asking the log for a partition's end is a round trip of several requests to the broker (the RabbitMQ end probe).
    /// The load history samples every partition every two seconds and the readiness check runs at every probe of every
    /// Api node: they take the readers' counters and presence without it. The cluster page asks, once per partition.
    /// </summary>
    [Fact]
    public async Task LoadHistoryAndReadiness_DoNotAskTheLogForItsEnd_TheClusterPageDoes()
    {
        var sampler = factory.Services.GetRequiredService<Api.Cluster.ClusterMetricsSampler>();
        await sampler.SampleAsync(CancellationToken.None); // the readers are active
        var before = factory.Log.EndOffsetRequests;

        await sampler.SampleAsync(CancellationToken.None);
        await sampler.SampleAsync(CancellationToken.None);
        var ready = await factory.Client(null).GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal(before, factory.Log.EndOffsetRequests);

        var cluster = await (await _operator.GetAsync("/api/v1/cluster")).ExpectAsync(HttpStatusCode.OK);
        var partitions = cluster.GetProperty("partitionMap").EnumerateArray().ToArray();
        Assert.Equal(before + partitions.Length, factory.Log.EndOffsetRequests);
        Assert.All(partitions, p => Assert.True(p.TryGetProperty("endOffset", out _), p.ToString()));
    }

    /// <summary>
    /// A broker too busy to tell a partition's end (the RabbitMQ end probe under load) leaves the rest of each reader's
    /// status on the page: owner and offsets, without end and lag. The reader answers without the end after its own
    /// wait, within the view's.
    /// </summary>
    [Fact]
    public async Task Cluster_ShowsEachReader_WhileTheLogCannotTellItsEnd()
    {
        factory.Log.EndOffsetStalled = true;
        try
        {
            var cluster = await Eventually.Json(async () =>
            {
                var c = await (await _operator.GetAsync("/api/v1/cluster")).ExpectAsync(HttpStatusCode.OK);
                return c.GetProperty("partitionMap").EnumerateArray().All(p => p.TryGetProperty("owner", out _)) ? c : null;
            }, what: "both partitions with their reader while the log's end is unknown");

            var siloId = Assert.Single(cluster.GetProperty("silos").EnumerateArray()).GetProperty("id").GetString();
            var partitions = cluster.GetProperty("partitionMap").EnumerateArray().ToArray();
            Assert.Equal([0, 1], partitions.Select(p => p.GetProperty("partition").GetInt32()));
            Assert.All(partitions, p =>
            {
                Assert.Equal(siloId, p.GetProperty("owner").GetString());
                Assert.True(p.GetProperty("appliedOffset").GetInt64() >= p.GetProperty("committedOffset").GetInt64());
                Assert.False(p.TryGetProperty("endOffset", out _), p.ToString());
                Assert.False(p.TryGetProperty("lag", out _), p.ToString());
            });
        }
        finally
        {
            factory.Log.EndOffsetStalled = false;
        }
    }
}
