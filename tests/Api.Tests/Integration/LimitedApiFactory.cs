using Microsoft.AspNetCore.Hosting;

namespace Api.Tests.Integration;

/// <summary>
/// The Api with bounds small enough for a test to reach in a few requests: three rules, three Idempotency-Keys per
/// caller, three metric and two attribute names per sensor, previews of 100 sensor-minutes. Each test class that uses
/// it gets a host of its own.
/// </summary>
public sealed class LimitedApiFactory : ApiFactory
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Rules:MaxRules", "3");
        builder.UseSetting("Telemetry:MaxIdempotencyKeysPerCaller", "3");
        builder.UseSetting("Grains:MaxMetricNames", "3");
        builder.UseSetting("Grains:MaxAttributeNames", "2");
        builder.UseSetting("Rules:PreviewMaxSensorMinutes", "100");
    }
}
