using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Simulator.Tests;

/// <summary>
/// A minimal Kestrel app on a free loopback port answering POST /api/v1/telemetry as the handler says, and
/// GET /api/v1/cluster as the cluster handler says when one is given.
/// </summary>
public sealed class StubApi : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _requests;
    private int _clusterPolls;

    private StubApi(WebApplication app) => _app = app;

    /// <summary>Every request as received: number (from 1), readings in the body, API key, content type, time.</summary>
    public ConcurrentQueue<(int Number, int Readings, string? Key, string? ContentType, TimeSpan At, string IdempotencyKey)> Requests { get; } = new();

    public Uri Url { get; private set; } = null!;

    public int RequestCount => Volatile.Read(ref _requests);

    /// <summary>Every GET /api/v1/cluster as received: number (from 1), API key, <see cref="Stopwatch.GetTimestamp"/> on arrival.</summary>
    public ConcurrentQueue<(int Number, string? Key, long Timestamp)> ClusterPolls { get; } = new();

    public int ClusterPollCount => Volatile.Read(ref _clusterPolls);

    /// <param name="handler">From the request number (1, 2, …) and the readings in its body, the response.</param>
    /// <param name="cluster">From the poll number (1, 2, …) of GET /api/v1/cluster, the response (not mapped when null).</param>
    public static async Task<StubApi> StartAsync(Func<int, int, IResult> handler, Func<int, IResult>? cluster = null)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.Urls.Add("http://127.0.0.1:0");
        var stub = new StubApi(app);
        var clock = Stopwatch.StartNew();
        app.MapPost("/api/v1/telemetry", async (HttpContext http) =>
        {
            var number = Interlocked.Increment(ref stub._requests);
            var readings = await CountReadingsAsync(http.Request);
            stub.Requests.Enqueue((number, readings, http.Request.Headers["X-Api-Key"].ToString(), http.Request.ContentType, clock.Elapsed, http.Request.Headers["Idempotency-Key"].ToString()));
            return handler(number, readings);
        });
        if (cluster is not null)
        {
            app.MapGet("/api/v1/cluster", (HttpContext http) =>
            {
                var at = Stopwatch.GetTimestamp();
                var number = Interlocked.Increment(ref stub._clusterPolls);
                stub.ClusterPolls.Enqueue((number, http.Request.Headers["X-Api-Key"].ToString(), at));
                return cluster(number);
            });
        }
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        stub.Url = new Uri(address);
        return stub;
    }

    /// <summary>Readings in a body: the items of an array, the lines of NDJSON, or one object (each must parse).</summary>
    private static async Task<int> CountReadingsAsync(HttpRequest request)
    {
        using var reader = new StreamReader(request.Body);
        var text = await reader.ReadToEndAsync();
        if (request.ContentType == "application/x-ndjson")
        {
            var lines = text.Split('\n');
            foreach (var line in lines)
            {
                using var item = JsonDocument.Parse(line);
            }
            return lines.Length;
        }
        using var body = JsonDocument.Parse(text);
        return body.RootElement.ValueKind == JsonValueKind.Array ? body.RootElement.GetArrayLength() : 1;
    }

    public static IResult Accepted(int accepted, params (int Index, string Error)[] rejected) =>
        Results.Json(new { accepted, rejected = rejected.Select(r => new { index = r.Index, error = r.Error }) }, statusCode: 202);

    /// <summary>
    /// A GET /api/v1/cluster body whose partition map has one partition per count of records still to apply (end offset
    /// minus applied offset), as the Api's (other fields elided); a negative count stands for a reader that did not
    /// answer (no offsets).
    /// </summary>
    public static IResult Cluster(params long[] toApply) =>
        Results.Json(new
        {
            silos = new[] { new { id = "127.0.0.1:11111@1", name = "silo-1", status = "active" } },
            partitionMap = toApply.Select((n, partition) => n < 0
                ? (object)new { partition }
                : new { partition, owner = "127.0.0.1:11111@1", endOffset = 100 + n, appliedOffset = 100, committedOffset = 90, lag = 10 + n }),
        });

    public static IResult Unavailable(int retryAfterSeconds) => new RetryAfterResult(503, retryAfterSeconds);

    /// <summary>429 with Retry-After, as the Api answers past a key's rate limit.</summary>
    public static IResult TooManyRequests(int retryAfterSeconds) => new RetryAfterResult(429, retryAfterSeconds);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class RetryAfterResult(int status, int seconds) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = status;
            httpContext.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Task.CompletedTask;
        }
    }
}
