using Api.Auth;

namespace Api.Cluster;

public static class ClusterEndpoints
{
    public static IEndpointRouteBuilder MapCluster(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/cluster", async (ClusterView cluster, CancellationToken ct) => TypedResults.Ok(await cluster.DescribeAsync(withEnd: true, ct)))
            .ForOperators()
            .WithTags("Cluster")
            .WithSummary("Orleans silos (status, uptime, partitions, activations per grain type), and each log partition's reader: silo, committed position, end, lag");
        routes.MapGet("/api/v1/cluster/metrics", (ClusterMetricsSampler sampler) => TypedResults.Ok(sampler.Snapshot()))
            .ForOperators()
            .WithTags("Cluster")
            .WithSummary("Cluster load of the last minutes: readings/s in all and per silo, alerts opened per minute, one point per sample");
        return routes;
    }
}
