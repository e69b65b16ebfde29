namespace Api.Sensors;

/// <summary>The sensor-id rule (<see cref="SensorIds"/>) applied to the <c>{id}</c> of a path.</summary>
public static class SensorIdPaths
{
    /// <summary>
    /// Refuses a request whose route value <c>id</c> is not a sensor id: 400 with the problem under "id", before the
    /// handler runs (a well-formed id that names no sensor is the handler's 404).
    /// </summary>
    public static TBuilder WithSensorIdInPath<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
            context.HttpContext.Request.RouteValues.TryGetValue("id", out var value) && value is string id && SensorIds.Problem(id) is { } problem
                ? TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["id"] = [$"sensor id {problem}"] }, title: "Invalid sensor id")
                : await next(context))
        .ProducesValidationProblem();
}
