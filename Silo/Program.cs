using Runtime.Hosting;

// A silo process of the durable cluster: an Orleans silo on Redis clustering and Redis grain storage. Orleans places the
// partition readers and the grains on the silos and moves them when a silo dies; on SIGTERM the silo deactivates its
// grains (each writes its state, each partition reader takes a last checkpoint) and leaves the cluster. It answers
// GET /health/live on its Urls for process supervisors.
var builder = WebApplication.CreateBuilder(args);
if (ClusterHosting.ModeOf(builder.Configuration) != ClusterMode.Durable)
{
    Console.Error.WriteLine("A silo process needs the durable cluster: set Cluster:Mode=Durable with Redis:ConnectionString, " +
        "Postgres:ConnectionString and RabbitMq:Uri. (In embedded mode the Api runs the silo itself: dotnet run --project Api.)");
    return 2;
}
builder.Configuration.AddClusterDefaults();
builder.Services.AddClusterServices(builder.Configuration);
builder.UseOrleans(silo => silo.AddOrleansIotSilo(builder.Configuration));
builder.Services.AddHealthChecks();
builder.Host.ConfigureHostOptions(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

var app = builder.Build();
app.MapHealthChecks("/health/live");
app.Run();
return 0;
