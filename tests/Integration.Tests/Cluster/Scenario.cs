using System.Net;
using System.Text;

namespace Integration.Tests.Cluster;

/// <summary>Steps the cluster tests share: start up, the rule, and the end (close every minute, wait, check PostgreSQL).</summary>
internal static class Scenario
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Starts the silos and the Api together and waits until the partitions are spread over the silos.</summary>
    public static async Task<ClusterView> StartAsync(DurableCluster cluster, params string[] silos)
    {
        foreach (var silo in silos)
        {
            cluster.StartSilo(silo);
        }
        cluster.StartApi();
        await cluster.Api.WaitForLineAsync(l => l.Contains("Now listening on", StringComparison.Ordinal), StartTimeout, "Now listening on");
        var view = await cluster.WaitBalancedAsync(silos, StartTimeout);
        cluster.Log($"balanced: {view.Describe()}");
        using var ready = await cluster.Operator.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        return view;
    }

    /// <summary>Creates the raw threshold rule of the known input (cooldown 0), before any reading.</summary>
    public static async Task CreateRuleAsync(DurableCluster cluster)
    {
        using var content = new StringContent(KnownInput.RuleJson, Encoding.UTF8, "application/json");
        using var response = await cluster.Operator.PostAsync("/api/v1/rules", content);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"POST /api/v1/rules: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>
    /// Posts the closing readings (one per sensor that has an acknowledged reading, past the close of the input's last
    /// minute), waits until every partition is processed and committed, and checks the minute aggregates and alerts in
    /// PostgreSQL against the acknowledged readings.
    /// </summary>
    public static async Task FinishAndCheckAsync(DurableCluster cluster, KnownInput input, TelemetryLoader loader, TimeSpan? timeout = null)
    {
        foreach (var batch in input.Closing(input.SensorIds.Concat(loader.Acknowledged().Select(r => r.SensorId))).Chunk(200))
        {
            await loader.PostUntilAcceptedAsync(batch);
        }
        var view = await cluster.WaitProcessedAsync(timeout ?? TimeSpan.FromSeconds(90));
        cluster.Log($"processed: {view.Describe()}");
        var acknowledged = loader.Acknowledged();
        await Expected.AssertExactAggregatesAsync(cluster.ConnectionString, acknowledged, input.EndMs);
        var alerts = await Expected.AssertAlertsOpenedOnceAsync(cluster.ConnectionString, acknowledged);
        cluster.Log($"checked: {acknowledged.Count(r => r.TimestampMs < input.EndMs)} acknowledged readings counted exactly once, {alerts} alerts opened once each");
    }
}
