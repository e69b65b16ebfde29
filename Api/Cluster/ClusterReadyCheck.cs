using Microsoft.Extensions.Diagnostics.HealthChecks;
using Runtime;

namespace Api.Cluster;

/// <summary>Ready when every partition has an owner whose lease is current: readings posted now will be processed.</summary>
public sealed class ClusterReadyCheck(ILeaseStore leases, TimeProvider time) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        var all = await leases.LeasesAsync(cancellationToken);
        var orphaned = all.Where(l => l.Owner is null || l.ExpiresAt <= now).Select(l => l.Partition).ToArray();
        return all.Count > 0 && orphaned.Length == 0
            ? HealthCheckResult.Healthy($"{all.Count} partitions owned")
            : HealthCheckResult.Unhealthy(all.Count == 0 ? "cluster not created yet" : $"partitions without owner: {string.Join(", ", orphaned)}");
    }
}
