using System.Text.Json;
using Api.Auth;
using Microsoft.Extensions.Options;
using Runtime.Outputs;

namespace Api.Outputs;

/// <summary>A page of an output stream: its records from the asked offset, where to ask next, and the stream's end.</summary>
public sealed record OutputPageResponse(string Stream, long Offset, long Next, long End, IReadOnlyList<OutputRecordDto> Records);

/// <summary>One message of an output stream; <see cref="Body"/> is its JSON as appended.</summary>
public sealed record OutputRecordDto(long Offset, string Id, string Type, JsonElement Body);

public static class OutputEndpoints
{
    public static IEndpointRouteBuilder MapOutputs(this IEndpointRouteBuilder routes)
    {
        var outputs = routes.MapGroup("/api/v1/outputs").ForOperators().WithTags("Outputs");

        outputs.MapGet("/{stream}", async Task<IResult> (string stream, long? offset, int? limit, IOutputStreams streams,
                IOptions<OutputOptions> options, CancellationToken ct) =>
            {
                var errors = new Dictionary<string, string[]>();
                if (!OutputMessages.TryParse(stream, out var parsed))
                {
                    errors["stream"] = [$"stream must be one of {string.Join(", ", OutputMessages.Streams.Select(OutputMessages.Name))}"];
                }
                Query.CheckPage(offset, limit, 1000, errors);
                if (errors.Count > 0)
                {
                    return TypedResults.ValidationProblem(errors, title: "Invalid query");
                }
                if (!options.Value.KeptStreams().Contains(parsed))
                {
                    return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Output stream not kept",
                        detail: $"This cluster keeps the output streams {options.Value.DescribeStreams()} (Outputs:Streams); '{stream}' is not one of them.");
                }
                var from = offset ?? 0;
                var page = await streams.ReadAsync(parsed, from, limit ?? 100, ct);
                var records = page.Records.Select(r => new OutputRecordDto(r.Offset, r.Id, r.Type, JsonSerializer.Deserialize<JsonElement>(r.Body))).ToArray();
                var next = records.Length > 0 ? records[^1].Offset + 1 : from;
                return TypedResults.Ok(new OutputPageResponse(OutputMessages.Name(parsed), from, next, page.End, records));
            })
            .WithSummary("Messages of an output stream (aggregates, alerts, commands) from an offset, oldest first: the same messages, "
                + "ids and offsets a RabbitMQ stream consumer reads in durable mode; 404 for a stream the cluster does not keep (Outputs:Streams)")
            .Produces<OutputPageResponse>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        return routes;
    }
}
