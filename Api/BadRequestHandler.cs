using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Api;

/// <summary>
/// A request the framework could not read (a query or route value of the wrong kind, a body cut short of its
/// Content-Length, a body over the size limit) is the client's mistake: 400 (or the status the framework gave it) with a
/// ProblemDetails body saying which value was wrong, in every environment, logged without a stack trace. The endpoints
/// run with <c>RouteHandlerOptions.ThrowOnBadRequest</c> so that every such failure reaches this handler.
/// </summary>
public sealed partial class BadRequestHandler(IProblemDetailsService problems, ILogger<BadRequestHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not BadHttpRequestException bad)
        {
            return false;
        }

        var (name, problem) = Describe(bad.Message);
        LogBadRequest(logger, http.Request.Method, http.Request.Path, bad.StatusCode, problem);
        http.Response.StatusCode = bad.StatusCode;
        var details = name is null
            ? new ProblemDetails { Detail = problem }
            : new HttpValidationProblemDetails(new Dictionary<string, string[]> { [name] = [problem] });
        details.Status = bad.StatusCode;
        details.Title = bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Request too large"
            : name is not null && http.Request.Query.ContainsKey(name) ? "Invalid query"
            : "Invalid request";
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = details });
    }

    /// <summary>
    /// The framework's message in the API's words, with the parameter it names (null: the request as a whole): what the
    /// value should be and the value given; no .NET type names.
    /// </summary>
    public static (string? Parameter, string Problem) Describe(string message)
    {
        var binding = BindingFailure().Match(message);
        if (binding.Success)
        {
            var name = binding.Groups["name"].Value;
            return (name, $"{name} must be {Expected(binding.Groups["type"].Value)}; '{binding.Groups["value"].Value}' is not");
        }

        var missing = MissingParameter().Match(message);
        if (missing.Success)
        {
            var name = missing.Groups["name"].Value;
            return (name, $"{name} is required");
        }

        return (null, message switch
        {
            _ when message.StartsWith("Unexpected end of request content", StringComparison.Ordinal) =>
                "The request body ended before the length its Content-Length header announced.",
            _ when message.StartsWith("Request body too large", StringComparison.Ordinal) => message,
            _ when message.StartsWith("Reading the request body timed out", StringComparison.Ordinal) =>
                "The request body arrived too slowly or stopped before the length its Content-Length header announced.",
            _ => "The request could not be read.",
        });
    }

    private static string Expected(string type)
    {
        var core = NullableType().Match(type) is { Success: true } nullable ? nullable.Groups["inner"].Value : type;
        return core switch
        {
            "int" or "Int32" or "long" or "Int64" or "short" or "Int16" => "a whole number",
            "double" or "Double" or "float" or "Single" or "decimal" or "Decimal" => "a number",
            "bool" or "Boolean" => "true or false",
            "DateTimeOffset" or "DateTime" => "a date and time (ISO 8601, such as 2026-11-29T10:00:00Z)",
            "Guid" => "a GUID",
            _ => "a valid value",
        };
    }

    [GeneratedRegex("""^Failed to bind parameter "(?<type>.+) (?<name>[^ "]+)" from "(?<value>.*)"\.$""")]
    private static partial Regex BindingFailure();

    [GeneratedRegex("""^Required parameter "(?<type>.+) (?<name>[^ "]+)" was not provided""")]
    private static partial Regex MissingParameter();

    [GeneratedRegex("""^Nullable<(?<inner>.+)>$""")]
    private static partial Regex NullableType();

    [LoggerMessage(Level = LogLevel.Information, Message = "{Method} {Path} answered {Status}: {Detail}")]
    private static partial void LogBadRequest(ILogger logger, string method, string path, int status, string detail);
}
