using Api.Auth;
using Grains.Abstractions;
using Runtime;

namespace Api.Cluster;

public static class ClusterEndpoints
{
    public static IEndpointRouteBuilder MapCluster(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/cluster", async (ILeaseStore leases, ICheckpointStore checkpoints, IInboxLog log, TimeProvider time,
                Microsoft.Extensions.Options.IOptions<SiloOptions> silo, CancellationToken ct) =>
                TypedResults.Ok(await DescribeAsync(leases, checkpoints, log, time, silo.Value.LeaseDuration, ct)))
            .RequireAuthorization(Roles.OperatorPolicy)
            .WithTags("Cluster")
            .WithSummary("Silos, partitions with owner, epoch, committed offset and lag, activations per grain type");
        routes.MapGet("/api/v1/cluster/metrics", (ClusterMetricsSampler sampler) => TypedResults.Ok(sampler.Snapshot()))
            .RequireAuthorization(Roles.OperatorPolicy)
            .WithTags("Cluster")
            .WithSummary("Cluster load of the last minutes: readings/s in all and per silo, alerts opened per minute, one point per sample");
        return routes;
    }

    public static async Task<ClusterResponse> DescribeAsync(ILeaseStore leases, ICheckpointStore checkpoints, IInboxLog log,
        TimeProvider time, TimeSpan leaseDuration, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var silos = await leases.SilosAsync(ct);
        var leaseList = await leases.LeasesAsync(ct);
        var committed = await checkpoints.CommittedOffsetsAsync(ct);
        var partitions = new List<PartitionDto>(leaseList.Count);
        foreach (var lease in leaseList)
        {
            var end = await log.EndOffsetAsync(lease.Partition, ct);
            var offset = committed.GetValueOrDefault(lease.Partition);
            var live = lease.Owner is not null && lease.ExpiresAt > now;
            partitions.Add(new PartitionDto(lease.Partition, live ? lease.Owner : null, lease.Epoch,
                lease.Owner is null ? null : lease.ExpiresAt, offset, end, Math.Max(0, end - offset)));
        }
        var siloDtos = silos.Select(s => new SiloDto(s.SiloId, s.Address,
                s.LastHeartbeat > now - leaseDuration ? "alive" : "unresponsive",
                s.StartedAt, s.LastHeartbeat,
                partitions.Where(p => p.Owner == s.SiloId).Select(p => p.Partition).ToArray(),
                s.Activations, s.ReadingsApplied, s.AlertsOpened))
            .ToArray();
        var activations = new Dictionary<string, int>
        {
            [GrainTypes.Sensor] = silos.Sum(s => s.Activations.GetValueOrDefault(GrainTypes.Sensor)),
            [GrainTypes.Rule] = silos.Sum(s => s.Activations.GetValueOrDefault(GrainTypes.Rule)),
        };
        return new ClusterResponse(log.Partitions, siloDtos, partitions, activations);
    }
}
