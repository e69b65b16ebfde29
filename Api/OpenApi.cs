using System.Text.Json.Nodes;
using Api.Alerts;
using Api.Auth;
using Api.Rules;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.OpenApi;

namespace Api;

/// <summary>Settings of section "OpenApi".</summary>
public sealed class OpenApiDocumentOptions
{
    /// <summary>
    /// Whether <see cref="OpenApi.DocumentPath"/> is served without a key. Null (the default): in Development only;
    /// elsewhere operator keys read it.
    /// </summary>
    public bool? Public { get; set; }
}

/// <summary>
/// The OpenAPI description at <see cref="DocumentPath"/>: what a client needs beyond what the endpoints declare. The API
/// key security scheme (header <c>X-Api-Key</c>, or a bearer token) on every operation with a role; 503 with Retry-After
/// on every operation that reaches the cluster, and Retry-After on 429; the telemetry body in its three forms and its
/// 400 extensions; enumerated values as enums; the health endpoints.
/// </summary>
public static class OpenApi
{
    public const string DocumentPath = "/openapi/v1.json";
    public const string ApiKeyScheme = "ApiKey";
    public const string BearerScheme = "Bearer";
    public const string TelemetryReadingSchema = "TelemetryReading";
    public const string TelemetryProblemSchema = "TelemetryProblem";

    /// <summary>Values a string field takes, by the schema it belongs to and its JSON name.</summary>
    private static readonly Dictionary<(Type Owner, string Property), IReadOnlyList<string>> Enums = new()
    {
        [(typeof(RuleRequest), "severity")] = RuleValidator.SeverityNames,
        [(typeof(RuleResponse), "severity")] = RuleValidator.SeverityNames,
        [(typeof(AlertDto), "severity")] = RuleValidator.SeverityNames,
        [(typeof(AlertDto), "state")] = AlertEndpoints.States,
        [(typeof(RuleTargetDto), "kind")] = RuleValidator.TargetKindNames,
        [(typeof(RuleConditionDto), "kind")] = RuleValidator.ConditionKindNames,
        [(typeof(RuleConditionDto), "on")] = RuleValidator.SourceNames,
        [(typeof(RuleConditionDto), "operator")] = RuleValidator.OperatorSymbols,
    };

    /// <summary>Values a query parameter takes, by the operation's path and the parameter's name.</summary>
    private static readonly Dictionary<(string Path, string Parameter), IReadOnlyList<string>> ParameterEnums = new()
    {
        [("api/v1/alerts", "state")] = AlertEndpoints.States,
    };

    public static IServiceCollection AddApiOpenApi(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<OpenApiDocumentOptions>().Bind(configuration.GetSection("OpenApi"));
        services.AddOpenApi(o =>
        {
            o.AddDocumentTransformer((document, _, _) =>
            {
                DescribeSecuritySchemes(document);
                DescribeTelemetryBody(document);
                DescribeHealth(document);
                return Task.CompletedTask;
            });
            o.AddOperationTransformer((operation, context, _) =>
            {
                DescribeAccess(operation, context);
                foreach (var parameter in operation.Parameters ?? [])
                {
                    if (parameter is OpenApiParameter { Schema: OpenApiSchema schema } writable
                        && ParameterEnums.TryGetValue((context.Description.RelativePath?.TrimEnd('/') ?? "", writable.Name ?? ""), out var values))
                    {
                        schema.Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))];
                    }
                }
                return Task.CompletedTask;
            });
            o.AddSchemaTransformer((schema, context, _) =>
            {
                if (context.JsonPropertyInfo is { DeclaringType: var declaring, Name: "timestamp" } && declaring == typeof(Api.Locations.OutsideObservationBody))
                {
                    // Parsed as the telemetry's timestamps are, not as a DateTimeOffset.
                    schema.Type = null;
                    schema.Format = null;
                    var timestamp = FlexibleTimestamp();
                    schema.Description = timestamp.Description;
                    schema.OneOf = timestamp.OneOf;
                }

                if (context.JsonPropertyInfo is { } property
                    && Enums.TryGetValue((property.DeclaringType, property.Name), out var values))
                {
                    schema.Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))];
                    if (schema.Type?.HasFlag(JsonSchemaType.Null) == true)
                    {
                        schema.Enum.Add(null!); // an optional field of a request may be null (then the server's default applies)
                    }
                }
                return Task.CompletedTask;
            });
        });
        return services;
    }

    /// <summary>Serves the document: without a key where it is public, for operator keys otherwise.</summary>
    public static void MapApiOpenApi(this WebApplication app)
    {
        var isPublic = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<OpenApiDocumentOptions>>().Value.Public
            ?? app.Environment.IsDevelopment();
        var document = app.MapOpenApi(DocumentPath);
        if (!isPublic)
        {
            document.ForOperators();
        }
    }

    /// <summary>
    /// Documents the request body in OpenAPI only. Unlike <c>Accepts()</c>, it adds no content-type constraint to
    /// routing, which would answer 415 itself before the handler runs: the handler decides which media types it
    /// takes (telemetry also takes application/ndjson and JSON Lines) and explains a refusal in its ProblemDetails.
    /// </summary>
    public static RouteHandlerBuilder DocumentBody(this RouteHandlerBuilder builder, Type schemaType, string contentType) =>
        builder.DocumentBody(schemaType, contentType, oneOrMany: false);

    /// <summary>As <see cref="DocumentBody(RouteHandlerBuilder, Type, string)"/>; with <paramref name="oneOrMany"/>, the body is one such object or an array of them.</summary>
    public static RouteHandlerBuilder DocumentBody(this RouteHandlerBuilder builder, Type schemaType, string contentType, bool oneOrMany) =>
        builder.AddOpenApiOperationTransformer(async (operation, context, cancellationToken) =>
        {
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
                {
                    [contentType] = new() { Schema = await SchemaAsync() },
                },
            };

            async Task<IOpenApiSchema> SchemaAsync()
            {
                var one = await context.GetOrCreateSchemaAsync(schemaType, null, cancellationToken);
                return oneOrMany ? new OpenApiSchema { OneOf = [one, new OpenApiSchema { Type = JsonSchemaType.Array, Items = one }] } : one;
            }
        });

    private static void DescribeSecuritySchemes(OpenApiDocument document)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal)
        {
            [ApiKeyScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Header,
                Name = "X-Api-Key",
                Description = "An API key of the Auth:Keys section. Device keys post telemetry and read their commands; operator keys "
                    + "use every endpoint.",
            },
            [BearerScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "The same API key as a bearer token (Authorization: Bearer <key>).",
            },
        };
    }

    /// <summary>Security, 503 and the Retry-After headers of an operation with a role (every /api/v1 operation).</summary>
    private static void DescribeAccess(OpenApiOperation operation, OpenApiOperationTransformerContext context)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        if (!metadata.OfType<IAuthorizeData>().Any())
        {
            return;
        }

        var roles = string.Join(", ", metadata.OfType<IAuthorizeData>().Select(a => a.Policy).Distinct());
        operation.Security =
        [
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyScheme, context.Document)] = [] },
            new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] },
        ];
        operation.Description = operation.Description is { Length: > 0 } description
            ? $"{description}\n\nRole: {roles}."
            : $"Role: {roles}.";
        operation.Responses ??= new OpenApiResponses();
        operation.Responses["503"] = Problem("The log, the store or the cluster cannot serve the request now; nothing of it was stored.");
        WithRetryAfter(operation.Responses["503"]);
        if (metadata.OfType<EnableRateLimitingAttribute>().Any() && operation.Responses.TryGetValue("429", out var tooMany))
        {
            WithRetryAfter(tooMany);
        }
    }

    private static OpenApiResponse Problem(string description) => new()
    {
        Description = description,
        Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
        {
            ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference("ProblemDetails") },
        },
    };

    private static void WithRetryAfter(IOpenApiResponse response)
    {
        if (response is OpenApiResponse writable)
        {
            writable.Headers ??= new Dictionary<string, IOpenApiHeader>(StringComparer.Ordinal);
            writable.Headers["Retry-After"] = new OpenApiHeader
            {
                Description = "Seconds to wait before sending the request again.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1" },
            };
        }
    }

    /// <summary>A timestamp as the Api reads it in request bodies: epoch seconds or milliseconds, or ISO-8601.</summary>
    private static OpenApiSchema FlexibleTimestamp() => new()
    {
        Description = "Epoch seconds (below 10^11), epoch milliseconds, or ISO-8601; absent: the time of receipt.",
        OneOf = [new OpenApiSchema { Type = JsonSchemaType.Integer }, new OpenApiSchema { Type = JsonSchemaType.String, Format = "date-time" }],
    };

    /// <summary>The body of POST /api/v1/telemetry (one object, an array of them, or NDJSON) and its 400 answer.</summary>
    private static void DescribeTelemetryBody(OpenApiDocument document)
    {
        document.Components!.Schemas ??= new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        var text = new OpenApiSchema { Type = JsonSchemaType.String };
        document.Components.Schemas[TelemetryReadingSchema] = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "One reading. The sensor id is the first present of id, sensor, sensorId, deviceId, nodo. Numbers are "
                + "metrics (from 'metrics' when present, else the top-level numeric fields), strings and booleans attributes.",
            Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
            {
                ["id"] = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = 128 },
                ["sensor"] = text, ["sensorId"] = text, ["deviceId"] = text, ["nodo"] = text,
                ["timestamp"] = FlexibleTimestamp(),
                ["metrics"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Object,
                    AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Number, Minimum = "-1e15", Maximum = "1e15" },
                },
                ["metadata"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Object,
                    Description = "Describes the sensor: model, location, version, owner, ...",
                    AdditionalProperties = text,
                },
            },
            AdditionalProperties = new OpenApiSchema
            {
                OneOf = [new OpenApiSchema { Type = JsonSchemaType.Number }, text, new OpenApiSchema { Type = JsonSchemaType.Boolean }],
            },
        };
        document.Components.Schemas[TelemetryProblemSchema] = new OpenApiSchema
        {
            AllOf = [new OpenApiSchemaReference("ProblemDetails", document)],
            Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
            {
                ["rejected"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Array,
                    Description = "No valid reading: each item with its index in the body and what is wrong with it.",
                    Items = new OpenApiSchemaReference("RejectedItem", document),
                },
                ["line"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Description = "Malformed JSON: the line (from 1) of the error." },
                ["position"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Description = "Malformed JSON: the byte position in that line." },
            },
        };

        if (document.Paths.TryGetValue("/api/v1/telemetry", out var path) && path.Operations?.TryGetValue(HttpMethod.Post, out var post) == true)
        {
            var reading = new OpenApiSchemaReference(TelemetryReadingSchema, document);
            post.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Description = "Gzip, br or deflate bodies are decoded (Content-Encoding); the size limit counts the decoded bytes. UTF-8 only.",
                Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
                {
                    ["application/json"] = new()
                    {
                        Schema = new OpenApiSchema { OneOf = [reading, new OpenApiSchema { Type = JsonSchemaType.Array, Items = reading }] },
                    },
                    ["application/x-ndjson"] = new()
                    {
                        Schema = new OpenApiSchema
                        {
                            Type = JsonSchemaType.String,
                            Description = "One TelemetryReading JSON object per line (also application/ndjson, application/jsonl).",
                        },
                    },
                },
            };
            if (post.Responses?.TryGetValue("400", out var badRequest) == true && badRequest is OpenApiResponse writable)
            {
                writable.Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
                {
                    ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(TelemetryProblemSchema, document) },
                };
            }
        }
    }

    private static void DescribeHealth(OpenApiDocument document)
    {
        OpenApiPathItem Health(string summary)
        {
            var item = new OpenApiPathItem();
            item.AddOperation(HttpMethod.Get, new OpenApiOperation
            {
                Tags = new HashSet<OpenApiTagReference> { new("Health", document) },
                Summary = summary,
                Responses = new OpenApiResponses
                {
                    ["200"] = PlainText("Healthy"),
                    ["503"] = PlainText("Unhealthy"),
                },
            });
            return item;
        }

        document.Tags ??= new HashSet<OpenApiTag>();
        document.Tags.Add(new OpenApiTag { Name = "Health" });
        document.Paths["/health/live"] = Health("The process answers (no key needed)");
        document.Paths["/health/ready"] = Health("Every partition's reader answers: the node serves requests (no key needed)");
    }

    private static OpenApiResponse PlainText(string body) => new()
    {
        Description = body,
        Content = new Dictionary<string, OpenApiMediaType>(StringComparer.Ordinal)
        {
            ["text/plain"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Enum = [JsonValue.Create(body)] } },
        },
    };
}
