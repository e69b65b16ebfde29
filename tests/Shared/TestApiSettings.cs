using Microsoft.AspNetCore.Hosting;

namespace Tests.Shared;

/// <summary>The Api as the test suites host it: embedded mode with dev keys, no demo fleet, two partitions, no ticks, fast checkpoints and leases.</summary>
public static class TestApiSettings
{
    public static IWebHostBuilder UseTestApiSettings(this IWebHostBuilder builder) => builder
        .UseEnvironment("Development")
        .UseSetting("Demo:Enabled", "false")
        .UseSetting("Silo:Partitions", "2")
        .UseSetting("Silo:TicksEnabled", "false")
        .UseSetting("Silo:CheckpointInterval", "00:00:00.050")
        .UseSetting("Silo:LeaseDuration", "00:00:02")
        .UseSetting("Silo:RenewInterval", "00:00:00.200");
}
