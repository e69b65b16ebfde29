using Grains.Abstractions;
using Microsoft.Extensions.Options;

namespace Api.Cluster;

/// <summary>Settings of the cluster load history (section "ClusterMetrics").</summary>
public sealed class ClusterMetricsOptions
{
    /// <summary>How often the partitions' counters are sampled.</summary>
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
/// <see cref="ClusterMetricsOptions.SampleInterval"/> it asks every partition's reader for its counter of readings applied
/// and turns the growth of each counter into a rate, attributed to the silo running that reader: (readings in this answer −
/// readings in its last answer) / (time this answer was read − time that answer was read), both times the reader's own
/// (<see cref="PartitionStatus.SampledAt"/>), so that a reader answering later than the others (an overloaded silo) has its
/// rate over the span it counted, and the clock of the reader's silo is the only one in it. A reader that started since the
/// last sample (a new activation after a silo died, say) counts from its start, by its own clock too; one first seen later
/// than that is a baseline only; one that did not answer has no rate in that sample. A point is at this node's time of the
/// sample. Alerts opened per minute are the distinct alerts this node saw opened live in the span.
/// </summary>
public sealed partial class ClusterMetricsSampler(ClusterView cluster, TimeProvider time, IOptions<ClusterMetricsOptions> options,
    ILogger<ClusterMetricsSampler> logger) : BackgroundService
{
    private readonly ClusterMetricsOptions _options = options.Value;
    private readonly Lock _gate = new();
    private readonly Queue<ClusterMetricsPointDto> _points = new();
    private readonly Dictionary<int, PartitionStatus> _baseline = [];
    private readonly HashSet<string> _openedSinceLastSample = new(StringComparer.Ordinal);
    private DateTimeOffset? _lastSample;

    /// <summary>An output seen live by this node: an opened alert counts in the next point.</summary>
    public void Observe(GrainOutput output)
    {
        if (output is AlertEvent { Kind: AlertEventKind.Opened } opened)
        {
            lock (_gate) _openedSinceLastSample.Add(opened.Alert.Id);
        }
    }

    /// <summary>Reads the partitions' counters once and records a point (from the second sample on).</summary>
    public async Task SampleAsync(CancellationToken cancellationToken)
    {
        var partitions = await cluster.PartitionsAsync(withEnd: false, cancellationToken).ConfigureAwait(false);
        var now = time.GetUtcNow();
        lock (_gate)
        {
            Record(now, partitions);
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
                // The cluster may not answer for a while: the history has a gap, the next sample goes on.
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

    internal void Record(DateTimeOffset now, IReadOnlyList<PartitionStatus?> partitions)
    {
        var bySilo = new Dictionary<string, double>(StringComparer.Ordinal);
        double readingsPerSecond = 0;
        foreach (var answer in partitions)
        {
            if (answer is null)
            {
                continue;
            }

            // A silo of a version that does not stamp its answers (during a rolling upgrade) is taken at this node's time.
            var status = answer.SampledAt == default ? answer with { SampledAt = now } : answer;
            double? rate = null;
            if (_baseline.TryGetValue(status.Partition, out var before) && before.Silo == status.Silo && before.ActivatedAt == status.ActivatedAt)
            {
                // The same reader as at its last answer: its counter's growth since then.
                var seconds = (status.SampledAt - before.SampledAt).TotalSeconds;
                rate = seconds > 0 ? Math.Max(0, status.ReadingsApplied - before.ReadingsApplied) / seconds : null;
            }
            else if (_lastSample is { } last && status.ActivatedAt > last)
            {
                // A reader that started since the last sample: everything it counted happened since it started. Its start is
                // by its silo's clock and the last sample by this node's: one that started within their skew of the last
                // sample may be judged on the wrong side of it, and then has a rate from its start (a little before the last
                // sample) or is a baseline only, both from its own counts and times.
                var seconds = (status.SampledAt - status.ActivatedAt).TotalSeconds;
                rate = seconds > 0 ? status.ReadingsApplied / seconds : null;
            }

            if (rate is { } r)
            {
                bySilo[status.Silo] = bySilo.GetValueOrDefault(status.Silo) + r;
                readingsPerSecond += r;
            }

            _baseline[status.Partition] = status;
        }

        if (_lastSample is { } previous && (now - previous).TotalSeconds is var span && span > 0)
        {
            _points.Enqueue(new ClusterMetricsPointDto(now, readingsPerSecond, _openedSinceLastSample.Count / span * 60, bySilo));
        }

        _openedSinceLastSample.Clear();
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
        services.AddSingleton<ClusterView>();
        services.AddSingleton<ClusterMetricsSampler>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterMetricsSampler>());
        return services;
    }
}
