using Runtime.Hosting;

// A silo process: joins the cluster, takes its share of partition leases and runs their grains.
// The providers come from configuration; this build has the in-memory ones, which live inside one process,
// so a separate silo process shares nothing with an Api process until durable providers are configured.
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddEmbeddedCluster(builder.Configuration);
builder.Services.AddHealthChecks();

var app = builder.Build();
app.MapHealthChecks("/health/live");
app.Run();
