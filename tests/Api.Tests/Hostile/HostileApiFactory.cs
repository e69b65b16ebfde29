using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Api.Tests.Integration;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Hostile;

/// <summary>
/// The Api on a real Kestrel listener (loopback, a free port), so that raw sockets can send what no well-behaved
/// client library would, with small limits a test can reach, a "flood" key for rate limits, every log entry of error
/// level kept, and one neighbour sensor whose stored data no hostile request may change.
/// </summary>
public sealed class HostileApiFactory : ApiFactory
{
    public const string FloodKey = "flood-device-key-for-hostile-tests";
    public const int MaxItems = 1_000;

    private readonly SemaphoreSlim _seed = new(1, 1);
    private (string Id, string Detail, string Metrics)? _neighbour;

    public HostileApiFactory() => UseKestrel(0);

    /// <summary>Error-level (and worse) log entries of the Api: a client's mistake must never produce one.</summary>
    public ConcurrentQueue<string> Errors { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Auth:Keys:3:Name", "flood");
        builder.UseSetting("Auth:Keys:3:Key", FloodKey);
        builder.UseSetting("Auth:Keys:3:Role", "device");
        builder.UseSetting("Telemetry:Limits:MaxItems", MaxItems.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("RateLimits:Readings:PerSecond", "1000");
        builder.UseSetting("RateLimits:Readings:Burst", "2000");
        builder.UseSetting("Rules:MaxRules", "5");
        builder.UseSetting("Grains:MaxMetricNames", "4");
        builder.UseSetting("Telemetry:MaxIdempotencyKeysPerCaller", "3");
        builder.UseSetting("Live:MaxSubscriptionsPerConnection", "3");
        builder.UseSetting("Rules:PreviewMaxSensorMinutes", "100");
        builder.ConfigureLogging(logging => logging.AddProvider(new ErrorCollector(Errors)));
    }

    /// <summary>The Kestrel listener's address.</summary>
    public Uri Address
    {
        get
        {
            StartServer();
            return new Uri(Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        }
    }

    public HttpClient Raw(string? apiKey)
    {
        var client = new HttpClient { BaseAddress = Address };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        }
        return client;
    }

    /// <summary>The neighbour sensor (seeded once: two closed minutes) and its detail and metrics as first stored.</summary>
    public async Task<(string Id, string Detail, string Metrics)> NeighbourAsync()
    {
        await _seed.WaitAsync();
        try
        {
            if (_neighbour is { } seeded)
            {
                return seeded;
            }

            var id = Ids.New("neighbour");
            var t = NextWindow();
            var client = Raw(DeviceKey);
            await (await client.PostAsync("/api/v1/telemetry", Json($$$"""
                [{"id":"{{{id}}}","timestamp":{{{t + 1_000}}},"temp":21.5,"hum":40,"door":"open"},
                 {"id":"{{{id}}}","timestamp":{{{t + 61_000}}},"temp":22.5,"hum":42,"door":"shut"}]
                """))).ExpectAsync(HttpStatusCode.Accepted);
            await CloseMinuteAsync(t + 60_000);
            await this.SettledAsync();
            _neighbour = (id, await DetailAsync(id), await MetricsAsync(id));
            return _neighbour.Value;
        }
        finally
        {
            _seed.Release();
        }
    }

    public async Task<string> DetailAsync(string id) =>
        (await (await Raw(OperatorKey).GetAsync($"/api/v1/sensors/{id}")).ExpectAsync(HttpStatusCode.OK)).GetRawText();

    public async Task<string> MetricsAsync(string id) =>
        (await (await Raw(OperatorKey).GetAsync($"/api/v1/sensors/{id}/metrics?from={Iso(BaseTimeMs)}&to={Iso(BaseTimeMs + 30L * 24 * 3_600_000)}"))
            .ExpectAsync(HttpStatusCode.OK)).GetRawText();

    private sealed class ErrorCollector(ConcurrentQueue<string> errors) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, errors);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<string> errors) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (logLevel >= LogLevel.Error)
                {
                    errors.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception?.GetType().Name}");
                }
            }
        }
    }
}
