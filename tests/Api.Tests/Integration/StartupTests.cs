using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Runtime;
using Runtime.Hosting;

namespace Api.Tests.Integration;

/// <summary>Outside Development the Api refuses to start without API keys, and with settings that cannot work.</summary>
public sealed class StartupTests
{
    private sealed class ProductionFactory(bool withKeys, params (string Key, string Value)[] settings) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Production");
            builder.UseSetting("Silo:Partitions", "2");
            builder.UseSetting("Silo:TicksEnabled", "false");
            builder.UseSetting("Mqtt:Port", "0");
            if (withKeys)
            {
                builder.UseSetting("Auth:Keys:0:Name", "ops");
                builder.UseSetting("Auth:Keys:0:Key", "production-operator-key-0001");
                builder.UseSetting("Auth:Keys:0:Role", "operator");
            }
            foreach (var (key, value) in settings)
            {
                builder.UseSetting(key, value);
            }
        }
    }

    [Fact]
    public void Production_WithoutKeys_RefusesToStart()
    {
        var validation = StartupFailure(withKeys: false);

        Assert.Contains("Auth:Keys", validation.Message, StringComparison.Ordinal);
        Assert.Equal(
            ["No API keys are configured (section Auth:Keys). Outside Development the Api refuses to start without keys."],
            validation.Failures);
    }

    [Fact]
    public void Keys_without_a_unique_name_are_refused()
    {
        var validation = StartupFailure(withKeys: true,
            ("Auth:Keys:1:Name", "ops"), ("Auth:Keys:1:Key", "production-device-key-00001"), ("Auth:Keys:1:Role", "device"));

        Assert.Equal(
            ["Every Auth:Keys entry needs a Name (1 to 64 characters, no control characters), unique among the keys: it names "
                + "the caller in logs, acknowledgements, rate limits and Idempotency-Key scopes."],
            validation.Failures);
    }

    [Fact]
    public void A_reading_limit_smaller_than_one_full_request_is_refused()
    {
        var validation = StartupFailure(withKeys: true, ("RateLimits:Readings:PerSecond", "100"), ("RateLimits:Readings:Burst", "5000"));

        Assert.Equal(["RateLimits:Readings:Burst must be at least Telemetry:Limits:MaxItems, or a full request could never pass."],
            validation.Failures);
    }

    [Fact]
    public void An_embedded_aggregate_retention_that_is_not_positive_is_refused()
    {
        var validation = StartupFailure(withKeys: true, ("Embedded:AggregateRetention", "00:00:00"));

        Assert.Equal(["Embedded:AggregateRetention must be positive."], validation.Failures);
    }

    [Fact]
    public async Task The_embedded_store_keeps_aggregates_for_the_configured_retention_and_the_hourly_service_runs_on_it()
    {
        await using var factory = new ProductionFactory(withKeys: true, ("Embedded:AggregateRetention", "2.00:00:00"));
        _ = factory.CreateClient();
        Assert.Single(factory.Services.GetServices<IHostedService>().OfType<AggregateRetentionService>());

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        MinuteAggregate Minute(long minuteMs) => new()
        {
            SensorId = "retained",
            MinuteMs = minuteMs - minuteMs % 60_000,
            Metrics = [new MetricAggregate { Metric = "t", Count = 1, Min = 1, Max = 1, Sum = 1, First = 1, Last = 1 }],
        };
        var kept = Minute(now - 47 * 3_600_000L);
        await factory.Services.GetRequiredService<IReadModelWriter>().WriteAsync([Minute(now - 49 * 3_600_000L), kept], CancellationToken.None);

        Assert.Equal(1, await factory.Services.GetRequiredService<IAggregateRetention>().DeleteExpiredAggregatesAsync(CancellationToken.None));
        var left = await factory.Services.GetRequiredService<IReadStore>().GetAggregatesAsync("retained", 0, long.MaxValue, null, CancellationToken.None);
        Assert.Equal([kept.MinuteMs], left.Select(a => a.MinuteMs));
    }

    [Fact]
    public async Task Production_WithKeys_Starts_AndDevelopmentKeysAreNotValid()
    {
        await using var factory = new ProductionFactory(withKeys: true);
        var client = factory.CreateClient();

        client.DefaultRequestHeaders.Add("X-Api-Key", ApiFactory.OperatorKey);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/rules")).StatusCode);

        client.DefaultRequestHeaders.Remove("X-Api-Key");
        client.DefaultRequestHeaders.Add("X-Api-Key", "production-operator-key-0001");
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/rules")).StatusCode);
    }

    [Fact]
    public async Task Outside_Development_the_OpenApi_document_is_for_operators_unless_made_public()
    {
        await using (var factory = new ProductionFactory(withKeys: true))
        {
            var client = factory.CreateClient();
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/openapi/v1.json")).StatusCode);
            client.DefaultRequestHeaders.Add("X-Api-Key", "production-operator-key-0001");
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/openapi/v1.json")).StatusCode);
        }

        await using (var factory = new ProductionFactory(withKeys: true, ("OpenApi:Public", "true")))
        {
            Assert.Equal(HttpStatusCode.OK, (await factory.CreateClient().GetAsync("/openapi/v1.json")).StatusCode);
        }
    }

    /// <summary>
    /// Starts the Api in Production with settings it refuses and returns the validation error it fails with. WebApplicationFactory
    /// lets the app's own entry point run the host while the factory waits for it to start; when the start fails fast,
    /// the entry point can dispose the host before the factory looks at it, and the factory then reports an
    /// ObjectDisposedException instead of the start error. That outcome also means the start failed, so it is retried
    /// until the error itself is seen.
    /// </summary>
    private static OptionsValidationException StartupFailure(bool withKeys, params (string Key, string Value)[] settings)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var factory = new ProductionFactory(withKeys, settings);
            var error = Record.Exception(() => factory.CreateClient());
            Assert.True(error is not null, "the Api started with settings it should refuse");
            error = Unwrap(error);
            if (error is ObjectDisposedException && attempt < 5)
            {
                continue;
            }
            Assert.True(error is OptionsValidationException, $"expected an OptionsValidationException, got {error}");
            return (OptionsValidationException)error;
        }
    }

    private static Exception Unwrap(Exception error)
    {
        while (error is AggregateException { InnerExceptions.Count: 1 } aggregate)
        {
            error = aggregate.InnerExceptions[0];
        }
        return error;
    }
}
