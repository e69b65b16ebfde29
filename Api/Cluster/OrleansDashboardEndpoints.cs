using Api.Auth;
using Orleans.Dashboard;

namespace Api.Cluster;

/// <summary>
/// The Orleans Dashboard (package Microsoft.Orleans.Dashboard: silos, grain types and activations, call rates, reminders,
/// the log stream) served by the Api at <see cref="Path"/>, for operators only. Its data comes from the dashboard's
/// collectors that every silo and the Api's Orleans client register (<c>AddDashboard</c> in the cluster hosting).
/// A browser loads its pages without custom headers: the operator key is then given as the password of HTTP Basic
/// authentication, which <see cref="ApiKeyHandler"/> accepts and asks for under this path.
/// </summary>
public static class OrleansDashboardEndpoints
{
    public const string Path = "/orleans";

    public static IEndpointRouteBuilder MapOrleansDashboardForOperators(this IEndpointRouteBuilder routes)
    {
        // The pages (/orleans/, its script, styles, fonts) and the JSON the page polls (/orleans/DashboardCounters,
        // /orleans/ClusterStats, /orleans/GrainTypes, …): all of them, the log stream (/orleans/Trace) included, for
        // operators only. Not part of the Api's OpenAPI description.
        routes.MapOrleansDashboard(Path)
            .ForOperators()
            .ExcludeFromDescription();
        return routes;
    }
}
