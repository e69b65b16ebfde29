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
        using var factory = new ProductionFactory(withKeys: false);

        var error = Record.Exception(() => factory.CreateClient());

        Assert.NotNull(error);
        var validation = Unwrap(error) as OptionsValidationException;
        Assert.True(validation is not null, $"expected an OptionsValidationException, got {error}");
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

    private static Exception Unwrap(Exception error)
    {
        while (error is AggregateException { InnerExceptions.Count: 1 } aggregate)
        {
            error = aggregate.InnerExceptions[0];
        }
        return error;
    }
}
