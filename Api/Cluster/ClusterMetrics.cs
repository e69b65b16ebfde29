using Microsoft.Extensions.Options;
using Runtime;

namespace Api.Cluster;

/// <summary>Settings of the cluster load history (section "ClusterMetrics").</summary>
public sealed class ClusterMetricsOptions
{
    /// <summary>How often the silos' heartbeat counters are sampled.</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How far back the history goes.</summary>
    public TimeSpan History { get; set; } = TimeSpan.FromMinutes(15);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (SampleInterval < TimeSpan.FromMilliseconds(100) || SampleInterval > TimeSpan.FromMinutes(1))
        {
            errors.Add("ClusterMetrics:SampleInterval must be between 00:00:00.1 and 00:01:00");
        }
        if (History < SampleInterval || History > TimeSpan.FromHours(24))
        {
            errors.Add("ClusterMetrics:History must be at least SampleInterval and at most 24:00:00");
        }
        return errors;
    }
}

/// <summary>
/// Keeps the last minutes of cluster load in memory, so that the dashboard shows a history as soon as it opens. Every
/// <see cref="ClusterMetricsOptions.SampleInterval"/> it reads the silos' heartbeats from the lease store (the
/// co-hosted silo's in embedded mode, every silo's PostgreSQL row in durable mode) and turns the growth of their
/// cumulative counters into rates: a silo's readings/s is (readings now − readings before) / (heartbeat now −
/// heartbeat before), so the rate is exact for the span the counters were measured over, whatever the sampling jitter.
/// A silo that restarted (another StartedAt) counts from its start; a silo with no new heartbeat since the last sample
/// has no rate in that sample and adds nothing to the totals.
/// </summary>
public sealed partial class ClusterMetricsSampler(ILeaseStore leases, TimeProvider time, IOptions<ClusterMetricsOptions> options,
    ILogger<ClusterMetricsSampler> logger) : BackgroundService
{
    private readonly ClusterMetricsOptions _options = options.Value;
    private readonly Lock _gate = new();
    private readonly Queue<ClusterMetricsPointDto> _points = new();
    private readonly Dictionary<string, SiloInfo> _baseline = new(StringComparer.Ordinal);
    private DateTimeOffset? _lastSample;

    /// <summary>Reads the silos' heartbeats once and records a point (from the second sample on).</summary>
    public async Task SampleAsync(CancellationToken cancellationToken)
    {
        var silos = await leases.SilosAsync(cancellationToken).ConfigureAwait(false);
        var now = time.GetUtcNow();
        lock (_gate)
        {
            Record(now, silos);
        }
    }

    /// <summary>The points of the history, oldest first.</summary>
    public ClusterMetricsResponse Snapshot()
    {
        ClusterMetricsPointDto[] points;
        lock (_gate) points = _points.ToArray();
        var silos = points.SelectMany(p => p.ReadingsPerSecondBySilo.Keys).Distinct().Order(StringComparer.Ordinal).ToArray();
        return new ClusterMetricsResponse(_options.SampleInterval.TotalSeconds, _options.History.TotalSeconds, silos, points);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await SampleAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The store may be down for a while (durable mode): the history has a gap, the next sample goes on.
                LogSampleFailed(logger, e);
            }
            try
            {
                await Task.Delay(_options.SampleInterval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Record(DateTimeOffset now, IReadOnlyList<SiloInfo> silos)
    {
        var bySilo = new Dictionary<string, double>(StringComparer.Ordinal);
        double readingsPerSecond = 0, alertsPerMinute = 0;
        foreach (var silo in silos)
        {
            _baseline.TryGetValue(silo.SiloId, out var before);
            var restarted = before is not null && before.StartedAt != silo.StartedAt;
            if (before is not null && !restarted)
            {
                var seconds = (silo.LastHeartbeat - before.LastHeartbeat).TotalSeconds;
                if (seconds <= 0)
                {
                    continue; // no heartbeat since the last sample: nothing measured, the baseline stays
                }
                var readings = Math.Max(0, silo.ReadingsApplied - before.ReadingsApplied) / seconds;
                bySilo[silo.SiloId] = readings;
                readingsPerSecond += readings;
                alertsPerMinute += Math.Max(0, silo.AlertsOpened - before.AlertsOpened) / seconds * 60;
            }
            else if (_lastSample is { } last && (restarted || silo.StartedAt >= last)
                && (silo.LastHeartbeat - silo.StartedAt).TotalSeconds is var sinceStart && sinceStart > 0)
            {
                // Started since the last sample (or restarted): everything it counted happened since its start.
                var readings = silo.ReadingsApplied / sinceStart;
                bySilo[silo.SiloId] = readings;
                readingsPerSecond += readings;
                alertsPerMinute += silo.AlertsOpened / sinceStart * 60;
            }
            _baseline[silo.SiloId] = silo;
        }
        foreach (var gone in _baseline.Keys.Where(id => !silos.Any(s => s.SiloId == id)).ToList())
        {
            _baseline.Remove(gone);
        }
        if (_lastSample is not null)
        {
            _points.Enqueue(new ClusterMetricsPointDto(now, readingsPerSecond, alertsPerMinute, bySilo));
        }
        _lastSample = now;
        while (_points.Count > 0 && _points.Peek().Time <= now - _options.History)
        {
            _points.Dequeue();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sampling the cluster load failed; trying again at the next interval")]
    private static partial void LogSampleFailed(ILogger logger, Exception exception);
}

public static class ClusterMetricsRegistration
{
    /// <summary>The cluster load history sampler (a hosted service) and its options, validated at start.</summary>
    public static IServiceCollection AddClusterMetrics(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ClusterMetricsOptions>().Bind(configuration.GetSection("ClusterMetrics"))
            .Validate(o => o.Validate().Count == 0, "ClusterMetrics settings are not valid: SampleInterval 0.1 s to 1 min, History SampleInterval to 24 h")
            .ValidateOnStart();
        services.AddSingleton<ClusterMetricsSampler>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterMetricsSampler>());
        return services;
    }
}
