using System.Security.Claims;
using Api.Auth;
using Api.Sensors;
using Runtime;

namespace Api.Devices;

public static class CommandEndpoints
{
    public static IEndpointRouteBuilder MapDeviceCommands(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/devices/{id}/commands", async Task<IResult> (string id, ClaimsPrincipal user, IReadStore store, CancellationToken ct) =>
            {
                if (!user.MayActFor(id))
                {
                    return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
                        detail: $"This API key may not read the commands of device '{id}'.");
                }
                var commands = await store.TakePendingCommandsAsync(id, ct);
                return TypedResults.Ok(commands.Select(c => c.ToDto()).ToArray());
            })
            .ForDevices()
            .WithSensorIdInPath()
            .WithTags("Devices")
            .WithSummary("Pending commands of a device, oldest first; returned once, then marked delivered")
            .Produces<CommandDto[]>()
            .ProducesProblem(StatusCodes.Status403Forbidden);
        return routes;
    }
}
