using Runtime.Hosting;

// A silo process: joins the durable cluster, takes its share of partition leases and runs their grains.
// It serves its grains' live state to Api nodes on an internal endpoint and stops gracefully on SIGTERM
// (final checkpoint, leases handed over).
var builder = WebApplication.CreateBuilder(args);
if (RuntimeServiceCollectionExtensions.ModeOf(builder.Configuration) != ClusterMode.Durable)
{
    Console.Error.WriteLine("A silo process needs the durable cluster: set Cluster:Mode=Durable with Postgres:ConnectionString and RabbitMq:Uri. " +
        "(In embedded mode the Api runs the silo itself: dotnet run --project Api.)");
    return 2;
}
if (string.IsNullOrEmpty(builder.Configuration["Silo:Address"]) && builder.Configuration["Urls"] is { } urls && !urls.Contains(';'))
{
    // Api nodes reach this silo where it listens, unless told otherwise.
    builder.Configuration["Silo:Address"] = urls;
}
builder.Services.AddCluster(builder.Configuration, hostSilo: true);
builder.Services.AddHealthChecks();
builder.Host.ConfigureHostOptions(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

var app = builder.Build();
app.MapHealthChecks("/health/live");
app.MapSiloInternals();
app.Run();
return 0;
