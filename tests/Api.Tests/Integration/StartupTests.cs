using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Options;

namespace Api.Tests.Integration;

/// <summary>Issue 2 item 8: outside Development the Api refuses to start without API keys.</summary>
public sealed class StartupTests
{
    private sealed class ProductionFactory(bool withKeys) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Production");
            builder.UseSetting("Silo:Partitions", "2");
            builder.UseSetting("Silo:TicksEnabled", "false");
            if (withKeys)
            {
                builder.UseSetting("Auth:Keys:0:Name", "ops");
                builder.UseSetting("Auth:Keys:0:Key", "production-operator-key-0001");
                builder.UseSetting("Auth:Keys:0:Role", "operator");
            }
        }
    }

    [Fact]
    public void Production_WithoutKeys_RefusesToStart()
    {
        var validation = StartupFailure();

        Assert.Contains("Auth:Keys", validation.Message, StringComparison.Ordinal);
        Assert.Equal(
            ["No API keys are configured (section Auth:Keys). Outside Development the Api refuses to start without keys."],
            validation.Failures);
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

    /// <summary>
    /// Starts the Api in Production without keys and returns the validation error it fails with. WebApplicationFactory
    /// lets the app's own entry point run the host while the factory waits for it to start; when the start fails fast,
    /// the entry point can dispose the host before the factory looks at it, and the factory then reports an
    /// ObjectDisposedException instead of the start error. That outcome also means the start failed, so it is retried
    /// until the error itself is seen.
    /// </summary>
    private static OptionsValidationException StartupFailure()
    {
        for (var attempt = 1; ; attempt++)
        {
            using var factory = new ProductionFactory(withKeys: false);
            var error = Record.Exception(() => factory.CreateClient());
            Assert.True(error is not null, "the Api started in Production without API keys");
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
