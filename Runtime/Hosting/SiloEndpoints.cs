using Grains.Abstractions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Runtime.Hosting;

/// <summary>
/// The silo's internal endpoint, used by Api nodes to read a grain's live state from the silo that owns it:
/// <c>GET /internal/v1/grains/{type}/{key}</c> answers the grain's state as JSON (read under the partition's lock),
/// 404 when the grain does not exist, and 421 (Misdirected Request) when this silo does not own its partition.
/// </summary>
public static class SiloEndpoints
{
    public const string StatePath = "/internal/v1/grains";

    public static IEndpointRouteBuilder MapSiloInternals(this IEndpointRouteBuilder routes)
    {
        routes.MapGet(StatePath + "/{type}/{key}", async (string type, string key, SiloNode silo, GrainHosting hosting, CancellationToken ct) =>
        {
            var id = new GrainId(type, key);
            if (!silo.Owns(id))
            {
                return Results.Problem(statusCode: StatusCodes.Status421MisdirectedRequest, title: "Not the owner",
                    detail: $"Silo {silo.SiloId} does not own the partition of {id}.");
            }
            var (found, state) = await silo.QueryAsync(id, hosting.Serialize, ct);
            return found
                ? Results.Bytes(state!, "application/json")
                : Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Grain not found", detail: $"{id} has no state.");
        }).ExcludeFromDescription();
        return routes;
    }
}
