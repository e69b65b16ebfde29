using Microsoft.OpenApi;

namespace Api;

public static class OpenApiBodies
{
    /// <summary>
    /// Documents the request body in OpenAPI only. Unlike <c>Accepts()</c>, it adds no content-type constraint to
    /// routing, which would answer 415 itself before the handler runs: the handler decides which media types it
    /// takes (telemetry also takes application/ndjson and JSON Lines) and explains a refusal in its ProblemDetails.
    /// </summary>
    public static RouteHandlerBuilder DocumentBody(this RouteHandlerBuilder builder, Type? schemaType, params string[] contentTypes) =>
        builder.AddOpenApiOperationTransformer(async (operation, context, cancellationToken) =>
        {
            var content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal);
            foreach (var contentType in contentTypes)
            {
                content[contentType] = new OpenApiMediaType
                {
                    Schema = schemaType is null ? null : await context.GetOrCreateSchemaAsync(schemaType, null, cancellationToken),
                };
            }
            operation.RequestBody = new OpenApiRequestBody { Required = true, Content = content };
        });
}
