using Microsoft.AspNetCore.Mvc;
using Microsoft.Net.Http.Headers;

namespace Api;

/// <summary>
/// Bodies are UTF-8, sent as they are or compressed with gzip, br or deflate (gateways compress; ASP.NET Core's request
/// decompression runs first and the endpoints' size limits apply to the decompressed bytes). Any other Content-Encoding
/// or charset is refused with 415 before an endpoint reads the body, rather than read as if it were UTF-8 JSON.
/// </summary>
public static class RequestBodyEncoding
{
    /// <summary>The encodings <c>UseRequestDecompression</c> decodes (and removes from the request).</summary>
    public const string Decoded = "gzip, br or deflate";

    public static IApplicationBuilder UseRequestBodyEncodingChecks(this IApplicationBuilder app) =>
        app.Use(async (http, next) =>
        {
            if (Problem(http.Request) is { } problem)
            {
                http.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails = new ProblemDetails
                    {
                        Status = StatusCodes.Status415UnsupportedMediaType,
                        Title = "Unsupported media type",
                        Detail = problem,
                    },
                });
                return;
            }

            await next(http);
        });

    /// <summary>What is wrong with the body's encoding (after request decompression), or null.</summary>
    public static string? Problem(HttpRequest request)
    {
        var encoding = request.Headers.ContentEncoding.ToString().Trim();
        if (encoding.Length > 0 && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            return $"Content-Encoding '{encoding}' is not accepted: send the body uncompressed or compressed with {Decoded}.";
        }

        if (request.ContentType is { } contentType && MediaTypeHeaderValue.TryParse(contentType, out var mediaType)
            && mediaType.Charset.HasValue
            && !mediaType.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase)
            && !mediaType.Charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
        {
            return $"charset '{mediaType.Charset}' is not accepted: bodies are UTF-8.";
        }

        return null;
    }
}
