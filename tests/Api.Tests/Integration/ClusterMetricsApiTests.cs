using System.Net;
using Microsoft.AspNetCore.Hosting;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>The Api of <see cref="ApiFactory"/> sampling the cluster load every 200 ms; only these tests post to it.</summary>
public sealed class MetricsApiFactory : ApiFactory
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("ClusterMetrics:SampleInterval", "00:00:00.200");
        builder.UseSetting("ClusterMetrics:History", "00:05:00");
    }
}

/// <summary>The partition readers' load counters by silo in /api/v1/cluster and the load history at /api/v1/cluster/metrics.</summary>
public sealed class ClusterMetricsApiTests(MetricsApiFactory factory) : IClassFixture<MetricsApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    [Fact]
    public async Task ReadersCountReadingsApplied_AndTheHistoryShowsTheLoadAndTheAlertsOpened()
    {
        var window = factory.NextWindow();
        var hot = Ids.New("metrics-hot");
        var rule = Ids.New("metrics-rule");
        await (await _operator.PostAsync("/api/v1/rules", Json(new
        {
            id = rule,
            name = "Metrics hot",
            severity = "minor",
            target = new { kind = "sensors", sensorIds = new[] { hot } },
            condition = new { kind = "threshold", metric = "t", on = "raw", @operator = ">", value = 30 },
        }))).ExpectAsync(HttpStatusCode.Created);
        var cold = Enumerable.Range(0, 6).Select(_ => Ids.New("metrics")).ToArray();
        var body = "[" + string.Join(",", cold.Select((id, i) => $$$"""{"id":"{{{id}}}","timestamp":{{{window + i * 1_000}}},"t":{{{i}}}}"""))
            + $$$""",{"id":"{{{hot}}}","timestamp":{{{window + 7_000}}},"t":31.5}]""";
        await (await _operator.PostAsync("/api/v1/telemetry", Json(body))).ExpectAsync(HttpStatusCode.Accepted);

        var silo = await Eventually.Json(async () =>
        {
            var cluster = await (await _operator.GetAsync("/api/v1/cluster")).ExpectAsync(HttpStatusCode.OK);
            var s = Assert.Single(cluster.GetProperty("silos").EnumerateArray());
            return s.GetProperty("readingsApplied").GetInt64() == 7 ? s : null;
        }, what: "the silo's partition readers counting 7 readings");
        var siloId = silo.GetProperty("id").GetString()!;

        // The 7 readings and the alert show in the history as rates: some sample saw them, no sample saw more.
        var metrics = await Eventually.Json(async () =>
        {
            var m = await (await _operator.GetAsync("/api/v1/cluster/metrics")).ExpectAsync(HttpStatusCode.OK);
            var points = m.GetProperty("points").EnumerateArray().ToArray();
            return points.Any(p => p.GetProperty("readingsPerSecond").GetDouble() > 0)
                && points.Any(p => p.GetProperty("alertsPerMinute").GetDouble() > 0) ? m : null;
        }, what: "a sample with readings/s and alerts/min above 0");
        Assert.Equal(0.2, metrics.GetProperty("sampleIntervalSeconds").GetDouble());
        Assert.Equal(300, metrics.GetProperty("historySeconds").GetDouble());
        Assert.Equal([siloId], metrics.GetProperty("silos").EnumerateArray().Select(s => s.GetString()));
        var all = metrics.GetProperty("points").EnumerateArray().ToArray();
        var times = all.Select(p => p.GetProperty("time").GetDateTimeOffset()).ToArray();
        Assert.Equal(times.Order(), times);
        foreach (var p in all)
        {
            var bySilo = p.GetProperty("readingsPerSecondBySilo").EnumerateObject().ToArray();
            Assert.Equal(bySilo.Sum(s => s.Value.GetDouble()), p.GetProperty("readingsPerSecond").GetDouble());
            Assert.All(bySilo, s => Assert.Equal(siloId, s.Name));
        }
    }

    [Fact]
    public async Task Metrics_NeedTheOperatorRole()
    {
        await (await factory.Device().GetAsync("/api/v1/cluster/metrics"))
            .ExpectProblemAsync(HttpStatusCode.Forbidden, "Forbidden", "This API key has the role 'device', which may not use GET /api/v1/cluster/metrics.");
    }
}
