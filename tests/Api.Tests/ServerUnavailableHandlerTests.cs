using System.Text.Json;
using Api;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Runtime;

namespace Api.Tests;

/// <summary>What a request gets when a server it needs cannot answer: 503, Retry-After and a ProblemDetails body saying which.</summary>
public sealed class ServerUnavailableHandlerTests
{
    private static async Task<(bool Handled, HttpContext Http, JsonElement? Body)> HandleAsync(Exception exception)
    {
        var services = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();
        var http = new DefaultHttpContext { RequestServices = services };
        http.Request.Method = "GET";
        http.Request.Path = "/api/v1/cluster";
        http.Response.Body = new MemoryStream();
        var handler = new ServerUnavailableHandler(services.GetRequiredService<Microsoft.AspNetCore.Http.IProblemDetailsService>(),
            NullLogger<ServerUnavailableHandler>.Instance);
        var handled = await handler.TryHandleAsync(http, exception, CancellationToken.None);
        if (!handled)
        {
            return (false, http, null);
        }

        http.Response.Body.Position = 0;
        return (true, http, JsonDocument.Parse(http.Response.Body).RootElement.Clone());
    }

    [Fact]
    public async Task The_log_refusing_writes_is_503_and_says_nothing_was_stored()
    {
        var (handled, http, body) = await HandleAsync(new LogUnavailableException("broker down"));
        Assert.True(handled);
        Assert.Equal(503, http.Response.StatusCode);
        Assert.Equal("2", http.Response.Headers.RetryAfter.ToString());
        Assert.Equal("The message log cannot take writes now; nothing of this request was stored. Retry after 2 s.",
            body!.Value.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData(typeof(TimeoutException))]
    [InlineData(typeof(SiloUnavailableException))]
    public async Task The_cluster_not_answering_in_time_is_503_with_retry_after(Type type)
    {
        var (handled, http, body) = await HandleAsync((Exception)Activator.CreateInstance(type)!);
        Assert.True(handled);
        Assert.Equal(503, http.Response.StatusCode);
        Assert.Equal("2", http.Response.Headers.RetryAfter.ToString());
        Assert.Equal(503, body!.Value.GetProperty("status").GetInt32());
        Assert.Equal("The cluster did not answer in time (a silo may be failing over). Retry after 2 s.",
            body.Value.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Other_failures_are_left_to_the_default_handler()
    {
        var (handled, http, _) = await HandleAsync(new InvalidOperationException("a bug"));
        Assert.False(handled);
        Assert.Equal(200, http.Response.StatusCode);
    }
}
