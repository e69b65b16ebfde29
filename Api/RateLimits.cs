using System.Globalization;
using System.Security.Claims;
using System.Threading.RateLimiting;
using Api.Ingest;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Api;

/// <summary>
/// Settings of section "RateLimits": token buckets per API key. A bucket holds up to <see cref="Limit.Burst"/> tokens and
/// gains <see cref="Limit.PerSecond"/> each second; a request that finds too few is refused with 429 and Retry-After.
/// </summary>
public sealed class RateLimitOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Requests per key to the endpoints devices use: telemetry, their commands, the live hub.</summary>
    public Limit DeviceRequests { get; set; } = new() { PerSecond = 1_000, Burst = 2_000 };

    /// <summary>Readings per key posted to the telemetry endpoint (every item of a body counts, valid or not).</summary>
    public Limit Readings { get; set; } = new() { PerSecond = 200_000, Burst = 400_000 };

    /// <summary>Requests per key to the operator endpoints (sensors, rules, alerts, cluster).</summary>
    public Limit OperatorRequests { get; set; } = new() { PerSecond = 100, Burst = 200 };

    public sealed class Limit
    {
        public int PerSecond { get; set; }

        public int Burst { get; set; }

        internal TokenBucketRateLimiterOptions Bucket() => new()
        {
            TokenLimit = Burst,
            TokensPerPeriod = PerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        };

        public override string ToString() => $"{PerSecond.ToString(CultureInfo.InvariantCulture)} per second (bursts of "
            + $"{Burst.ToString(CultureInfo.InvariantCulture)})";
    }
}

/// <summary>
/// Rate limits per API key with ASP.NET Core's rate limiter: requests by endpoint class (<see cref="DevicePolicy"/>,
/// <see cref="OperatorPolicy"/>) in the middleware, and readings per second in the telemetry endpoint once the body is
/// parsed (<see cref="ReadingLimiter"/>). The key's configured name is the partition. Refusals are 429 with Retry-After
/// and nothing of the request is stored.
/// </summary>
public static class RateLimits
{
    public const string DevicePolicy = "device-requests";
    public const string OperatorPolicy = "operator-requests";

    public static IServiceCollection AddApiRateLimits(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<RateLimitOptions>().Bind(configuration.GetSection("RateLimits"))
            .Validate(o => Valid(o.DeviceRequests) && Valid(o.Readings) && Valid(o.OperatorRequests),
                "Every RateLimits limit needs PerSecond and Burst between 1 and 1000000000, and Burst at least PerSecond.")
            .Validate<IOptions<TelemetryOptions>>((o, telemetry) => !o.Enabled || o.Readings.Burst >= telemetry.Value.Limits.MaxItems,
                "RateLimits:Readings:Burst must be at least Telemetry:Limits:MaxItems, or a full request could never pass.")
            .ValidateOnStart();
        services.AddSingleton<ReadingLimiter>();
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy(DevicePolicy, http => Partition(http, o => o.DeviceRequests));
            o.AddPolicy(OperatorPolicy, http => Partition(http, o => o.OperatorRequests));
            o.OnRejected = async (context, cancellationToken) =>
            {
                var http = context.HttpContext;
                var endpoints = http.GetEndpoint()?.Metadata.GetMetadata<EnableRateLimitingAttribute>()?.PolicyName == OperatorPolicy
                    ? ("operator", Current(http).OperatorRequests)
                    : ("device", Current(http).DeviceRequests);
                await WriteTooManyAsync(http, context.Lease,
                    $"This API key made more requests to the {endpoints.Item1} endpoints than its limit of {endpoints.Item2} allows.");
            };
        });
        return services;
    }

    /// <summary>A 429 ProblemDetails with the Retry-After the lease gives (whole seconds, at least 1).</summary>
    public static async Task WriteTooManyAsync(HttpContext http, RateLimitLease lease, string detail)
    {
        await WriteTooManyAsync(http, RetryAfter(lease), detail);
    }

    /// <summary>When a refused lease says to retry (1 s when it does not say).</summary>
    public static TimeSpan RetryAfter(RateLimitLease lease) =>
        lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);

    /// <summary>A 429 ProblemDetails with Retry-After (whole seconds, at least 1).</summary>
    public static async Task WriteTooManyAsync(HttpContext http, TimeSpan retryAfter, string detail)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails =
            {
                Status = StatusCodes.Status429TooManyRequests,
                Title = "Too many requests",
                Detail = $"{detail} Nothing of this request was stored; retry after {seconds} s.",
            },
        });
    }

    private static bool Valid(RateLimitOptions.Limit limit) =>
        limit.PerSecond is >= 1 and <= 1_000_000_000 && limit.Burst is >= 1 and <= 1_000_000_000 && limit.Burst >= limit.PerSecond;

    private static RateLimitOptions Current(HttpContext http) =>
        http.RequestServices.GetRequiredService<IOptionsMonitor<RateLimitOptions>>().CurrentValue;

    private static RateLimitPartition<string> Partition(HttpContext http, Func<RateLimitOptions, RateLimitOptions.Limit> limit)
    {
        var options = Current(http);
        var key = http.User.Identity?.IsAuthenticated == true ? http.User.FindFirstValue(ClaimTypes.Name) : null;
        if (!options.Enabled || key is null)
        {
            // Unauthenticated requests never reach a limited endpoint: authorization refuses them first.
            return RateLimitPartition.GetNoLimiter("");
        }

        var bucket = limit(options);
        return RateLimitPartition.GetTokenBucketLimiter(key, _ => bucket.Bucket());
    }
}

/// <summary>Readings per second per API key on the telemetry endpoint (<see cref="RateLimitOptions.Readings"/>).</summary>
public sealed class ReadingLimiter(IOptionsMonitor<RateLimitOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter = PartitionedRateLimiter.Create<string, string>(key =>
        RateLimitPartition.GetTokenBucketLimiter(key, _ => options.CurrentValue.Readings.Bucket()));

    public RateLimitOptions.Limit Limit => options.CurrentValue.Readings;

    /// <summary>Takes <paramref name="readings"/> tokens from the caller's bucket; a lease that is not acquired says when to retry.</summary>
    public RateLimitLease? TryTake(string caller, int readings) =>
        options.CurrentValue.Enabled && readings > 0
            ? _limiter.AttemptAcquire(caller, Math.Min(readings, options.CurrentValue.Readings.Burst))
            : null;

    public void Dispose() => _limiter.Dispose();
}
