using Api;
using Api.Alerts;
using Api.Auth;
using Api.Cluster;
using Api.Demo;
using Api.Devices;
using Api.Ingest;
using Api.IotEngine;
using Api.Live;
using Api.Locations;
using Api.Mqtt;
using Api.Outputs;
using Api.Rules;
using Api.Sensors;
using Microsoft.AspNetCore.SignalR;
using Runtime.Hosting;

var builder = WebApplication.CreateBuilder(args);

builder.Services.AddProblemDetails();
builder.Services.ConfigureHttpJsonOptions(o =>
{
    o.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
    // Numbers are numbers (the web defaults also read "5" as 5, and the OpenAPI schemas would say "integer or string").
    o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
    o.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
    o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
    o.SerializerOptions.TypeInfoResolverChain.Insert(1, RulesJsonContext.Default);
});
builder.Services.AddApiOpenApi(builder.Configuration);
builder.Services.AddApiKeyAuth(builder.Configuration, builder.Environment);
builder.Services.AddApiRateLimits(builder.Configuration);
builder.Configuration.AddClusterDefaults();
builder.Services.AddClusterServices(builder.Configuration);
if (ClusterHosting.ModeOf(builder.Configuration) == ClusterMode.Embedded)
{
    // Embedded: this process co-hosts an Orleans silo (loopback, in-memory grain storage, log and read models).
    builder.UseOrleans(silo => silo.AddOrleansIotSilo(builder.Configuration));
}
else
{
    // Durable: the grains run in silo processes (dotnet run --project Silo); this node is an Orleans client of them, so
    // Api nodes scale and restart without moving a grain.
    builder.UseOrleansClient(client => client.AddOrleansIotClient(builder.Configuration));
}
builder.Services.AddRequestDecompression();
builder.Services.AddExceptionHandler<BadRequestHandler>();
builder.Services.AddExceptionHandler<ServerUnavailableHandler>();
// Binding failures reach BadRequestHandler in every environment (by default only Development throws them).
builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
builder.Services.AddOptions<TelemetryOptions>().Bind(builder.Configuration.GetSection("Telemetry"))
    .Validate(o => o.MaxBodyBytes is >= 1024 and <= 256 * 1024 * 1024, "Telemetry:MaxBodyBytes must be between 1 KiB and 256 MiB")
    .Validate(o => o.Limits.MaxItems is >= 1 and <= 1_000_000, "Telemetry:Limits:MaxItems must be between 1 and 1000000 (a log record holds at most 2^20 readings)")
    .Validate(o => o.MaxIdempotencyKeysPerCaller is >= 1 and <= 10_000_000, "Telemetry:MaxIdempotencyKeysPerCaller must be between 1 and 10000000")
    .ValidateOnStart();
builder.Services.AddSignalR(o => o.AddFilter<LiveHubErrors>()).AddJsonProtocol(o =>
{
    o.PayloadSerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
    o.PayloadSerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
});
builder.Services.AddOptions<RuleOptions>().Bind(builder.Configuration.GetSection("Rules"))
    .Validate(o => o.MaxRules is >= 1 and <= 100_000, "Rules:MaxRules must be between 1 and 100000")
    .Validate(o => o.PreviewMaxSensors is >= 1 and <= 100_000 && o.PreviewMaxSensorMinutes is >= 1 and <= 100_000_000
        && o.PreviewConcurrency is >= 1 and <= 64, "Rules:PreviewMaxSensors (1-100000), PreviewMaxSensorMinutes (1-100000000) and PreviewConcurrency (1-64) are out of range")
    .ValidateOnStart();
builder.Services.AddOptions<LiveOptions>().Bind(builder.Configuration.GetSection("Live"))
    .Validate(o => o.MaxSubscriptionsPerConnection is >= 1 and <= 100_000, "Live:MaxSubscriptionsPerConnection must be between 1 and 100000")
    .ValidateOnStart();
builder.Services.AddSingleton<LiveSubscriptions>();
builder.Services.AddHostedService<LiveEventForwarder>();
// Hub method failures are logged by LiveHubErrors (a client's refused request is not an error); SignalR's dispatcher
// would log every one of them at Error with a stack trace.
builder.Logging.AddFilter("Microsoft.AspNetCore.SignalR.Internal.DefaultHubDispatcher", LogLevel.Critical);
builder.Services.AddClusterMetrics(builder.Configuration);
builder.Services.AddSingleton<SensorQueries>();
builder.Services.AddSingleton<SensorNameAdmission>();
builder.Services.AddSingleton<TelemetryIntake>();
builder.Services.AddSingleton<RulePreview>();
builder.Services.AddHealthChecks().AddCheck<ClusterReadyCheck>("cluster", tags: ["ready"]);
builder.Services.AddDemoFleet(builder.Configuration);
// MQTT: devices publish telemetry and receive commands (TCP on Mqtt:Port, WebSockets at /mqtt).
builder.Services.AddMqtt(builder.Configuration);

var app = builder.Build();

app.UseExceptionHandler();
app.UseStatusCodePages();
// gzip, br and deflate bodies decoded (the endpoints' size limits count the decoded bytes); other encodings and charsets 415.
app.UseRequestDecompression();
app.UseRequestBodyEncodingChecks();
// The operator dashboard, built from ClientApp/ into wwwroot/ (hash routing: every page is served by index.html).
app.UseDefaultFiles();
app.UseStaticFiles();
app.UseAuthentication();
app.UseAuthorization();
// Per API key, after authentication: 429 with Retry-After past a key's limits (RateLimits.cs).
app.UseRateLimiter();

app.MapApiOpenApi();
app.MapTelemetry();
app.MapSensors();
app.MapRules();
app.MapAlerts();
app.MapDeviceCommands();
app.MapCluster();
app.MapOrleansDashboardForOperators();
app.MapMqttWebSockets();
app.MapMqttStatus();
app.MapIotEngine();
app.MapOutputs();
app.MapOutsideConditions();
app.MapHub<LiveHub>(LiveHub.Path).RequireRateLimiting(RateLimits.DevicePolicy);
app.MapHealthChecks("/health/live", new() { Predicate = _ => false });
app.MapHealthChecks("/health/ready", new() { Predicate = c => c.Tags.Contains("ready") });

app.Run();

/// <summary>The Api host; public so that tests can start it with WebApplicationFactory.</summary>
public partial class Program;
