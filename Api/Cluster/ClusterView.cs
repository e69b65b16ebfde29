using Grains.Abstractions;
using Microsoft.Extensions.Options;
using Runtime;
using Runtime.Partitions;

namespace Api.Cluster;

/// <summary>
/// The cluster as Orleans and the partition readers report it: silos from the membership (Orleans' management grain),
/// activations per grain type, and each partition's reader status (<see cref="IPartitionGrain.GetStatusAsync"/>, with the
/// log's end only for the cluster page).
/// </summary>
public sealed class ClusterView(IGrainFactory grains, IOptions<SiloOptions> silo)
{
    /// <summary>
    /// How long a partition's reader, or a silo asked for its activations, may take to answer (one on a silo that just died
    /// answers later, or never): the reader's own wait for the log's end (when asked for it) and two seconds for a silo so
    /// busy that the answer waits for its turn (an overloaded silo's collections pause it for up to a second), so that the
    /// page shows the cluster when it matters most.
    /// </summary>
    private static readonly TimeSpan StatusTimeout = PartitionGrain.EndOffsetWait + TimeSpan.FromSeconds(2);

    /// <summary>How long the membership may take to answer (through a gateway silo that may be failing).</summary>
    private static readonly TimeSpan HostsTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Short names of the grain types the system runs, as Orleans names their classes.</summary>
    private static readonly (string Suffix, string Name)[] GrainTypes =
        [("SensorGrain", "sensor"), ("RuleGrain", "rule"), ("PartitionGrain", "partition")];

    /// <summary>
    /// Every partition's status, in partition order; null where the reader did not answer in time. With
    /// <paramref name="withEnd"/> each status carries the log's end where the log told it.
    /// </summary>
    public async Task<PartitionStatus?[]> PartitionsAsync(bool withEnd, CancellationToken ct)
    {
        var partitions = silo.Value.Partitions;
        var calls = new Task<PartitionStatus?>[partitions];
        for (var p = 0; p < partitions; p++)
        {
            calls[p] = StatusAsync(p, withEnd, ct);
        }

        return await Task.WhenAll(calls);
    }

    /// <summary>Silos, activations and partitions; with <paramref name="withEnd"/> the partitions carry the log's end and lag.</summary>
    public async Task<ClusterResponse> DescribeAsync(bool withEnd, CancellationToken ct)
    {
        var management = grains.GetGrain<IManagementGrain>(0);
        var hosts = await management.GetDetailedHosts(onlyActive: false).WaitAsync(HostsTimeout, ct);
        // Each active silo's activations, asked of each alone: a silo that does not answer (paused, or dying before
        // Orleans declares it dead) has none reported and does not hold up the others.
        var active = hosts.Where(h => h.Status == SiloStatus.Active).Select(h => h.SiloAddress).ToArray();
        var statisticsTask = Task.WhenAll(active.Select(a => StatisticsAsync(management, a, ct)));
        var partitions = await PartitionsAsync(withEnd, ct);
        var answered = (await statisticsTask).Where(s => s.Statistics is not null).ToDictionary(s => s.Silo, s => s.Statistics!);
        var statistics = answered.Values.SelectMany(s => s).ToArray();

        var partitionDtos = partitions.Select((s, p) => s is null
                ? new PartitionDto(p, null, null, null, null, null, null, null, null, null)
                : new PartitionDto(p, s.Silo, s.ActivatedAt, s.CommittedOffset, s.AppliedOffset, s.EndOffset,
                    s.EndOffset is { } end ? Math.Max(0, end - s.CommittedOffset) : null, s.ReadingsApplied, s.Sensors, s.LastCommitAt))
            .ToArray();
        var silos = hosts
            .Where(h => h.Status != SiloStatus.Dead || h.IAmAliveTime > DateTime.UtcNow.AddMinutes(-15))
            .OrderBy(h => h.SiloAddress)
            .Select(h =>
            {
                var id = h.SiloAddress.ToParsableString();
                var owned = partitions.Where(s => s?.Silo == id).Select(s => s!).ToArray();
                return new SiloDto(id, h.SiloName, h.HostName, StatusName(h.Status), new DateTimeOffset(h.StartTime, TimeSpan.Zero),
                    h.IAmAliveTime == default ? null : new DateTimeOffset(h.IAmAliveTime, TimeSpan.Zero),
                    owned.Select(s => s.Partition).ToArray(),
                    answered.TryGetValue(h.SiloAddress, out var own) ? Activations(own) : null,
                    owned.Sum(s => s.ReadingsApplied));
            })
            .ToArray();
        return new ClusterResponse(silo.Value.Partitions, silos, partitionDtos, Activations(statistics));
    }

    private static async Task<(SiloAddress Silo, SimpleGrainStatistic[]? Statistics)> StatisticsAsync(IManagementGrain management, SiloAddress silo,
        CancellationToken ct)
    {
        try
        {
            return (silo, await management.GetSimpleGrainStatistics([silo]).WaitAsync(StatusTimeout, ct));
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return (silo, null);
        }
    }

    private async Task<PartitionStatus?> StatusAsync(int partition, bool withEnd, CancellationToken ct)
    {
        try
        {
            return await grains.GetGrain<IPartitionGrain>(partition).GetStatusAsync(withEnd).WaitAsync(StatusTimeout, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return null;
        }
    }

    private static Dictionary<string, int> Activations(IEnumerable<SimpleGrainStatistic> statistics)
    {
        var counts = GrainTypes.ToDictionary(t => t.Name, _ => 0);
        foreach (var statistic in statistics)
        {
            foreach (var (suffix, name) in GrainTypes)
            {
                if (statistic.GrainType.Contains(suffix, StringComparison.Ordinal) || statistic.GrainType == name)
                {
                    counts[name] += statistic.ActivationCount;
                }
            }
        }

        return counts;
    }

    private static string StatusName(SiloStatus status) => status switch
    {
        SiloStatus.Active => "active",
        SiloStatus.Joining or SiloStatus.Created => "joining",
        SiloStatus.ShuttingDown => "shutting down",
        SiloStatus.Stopping => "stopping",
        SiloStatus.Dead => "dead",
        _ => "unknown",
    };
}
