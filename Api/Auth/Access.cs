namespace Api.Auth;

/// <summary>
/// Who may call an endpoint and under which rate limit, in one place: every protected endpoint of the Api is either for
/// operators or for devices (device keys, and operator keys acting for any device). Its OpenAPI description gets the
/// answers the access rules add: 401, 403 and 429.
/// </summary>
public static class Access
{
    /// <summary>Operator keys only, under <see cref="RateLimits.OperatorPolicy"/>.</summary>
    public static TBuilder ForOperators<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(Roles.OperatorPolicy).RequireRateLimiting(RateLimits.OperatorPolicy).ProducesAccessProblems();

    /// <summary>Device and operator keys, under <see cref="RateLimits.DevicePolicy"/>.</summary>
    public static TBuilder ForDevices<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(Roles.DevicePolicy).RequireRateLimiting(RateLimits.DevicePolicy).ProducesAccessProblems();

    private static TBuilder ProducesAccessProblems<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);
}
