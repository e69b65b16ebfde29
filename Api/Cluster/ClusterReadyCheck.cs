using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Api.Cluster;

/// <summary>Ready when every partition's reader answers: readings posted now will be processed.</summary>
public sealed class ClusterReadyCheck(ClusterView cluster) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var partitions = await cluster.PartitionsAsync(withEnd: false, cancellationToken);
        var missing = partitions.Select((s, p) => (s, p)).Where(x => x.s is null).Select(x => x.p).ToArray();
        return missing.Length == 0
            ? HealthCheckResult.Healthy($"{partitions.Length} partitions read")
            : HealthCheckResult.Unhealthy($"partitions without a reader: {string.Join(", ", missing)}");
    }
}
