using Microsoft.AspNetCore.Diagnostics;
using Runtime;
using Runtime.Postgres;

namespace Api;

/// <summary>
/// When the log cannot take writes or the store cannot be reached, the request gets 503 with Retry-After and
/// nothing of it was acknowledged; the client sends it again later. When the Orleans cluster does not answer in time (a
/// silo failing, before Orleans declares it dead and its grains move), also 503 with Retry-After.
/// </summary>
public sealed partial class ServerUnavailableHandler(IProblemDetailsService problems, ILogger<ServerUnavailableHandler> logger) : IExceptionHandler
{
    public const int RetryAfterSeconds = 2;

    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
    {
        var what = exception switch
        {
            LogUnavailableException => "The message log cannot take writes now; nothing of this request was stored",
            // Also a pooled connection lost when the server shut down or restarted, not only one that could not be opened.
            _ when PostgresUnavailableException.IsUnavailable(exception) => "The database cannot be reached now; nothing of this request was stored",
            TimeoutException or SiloUnavailableException or OrleansMessageRejectionException =>
                "The cluster did not answer in time (a silo may be failing over)",
            _ => null,
        };
        if (what is null)
        {
            return false;
        }
        LogUnavailable(logger, http.Request.Method, http.Request.Path, exception.Message);
        http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        http.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            Exception = exception,
            ProblemDetails =
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "Service unavailable",
                Detail = $"{what}. Retry after {RetryAfterSeconds} s.",
            },
        });
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Method} {Path} answered 503: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string method, string path, string reason);
}
