using Microsoft.AspNetCore.Hosting;

namespace Tests.Shared;

/// <summary>
/// The Api as the test suites host it: embedded mode with dev keys, no demo fleet, two partitions, no wall-clock ticks,
/// fast checkpoints, and receipt time driven by the tests (<see cref="EventTimeLog"/>).
/// </summary>
public static class TestApiSettings
{
    public static IWebHostBuilder UseTestApiSettings(this IWebHostBuilder builder) => builder
        .UseEnvironment("Development")
        .UseSetting("Demo:Enabled", "false")
        .UseSetting("Silo:Partitions", "2")
        .UseSetting("Silo:TicksEnabled", "false")
        .UseSetting("Silo:CheckpointInterval", "00:00:00.050")
        .UseSetting("Silo:PartitionCheckInterval", "00:00:00.250")
        // Every test host's MQTT listener on a free port of its own.
        .UseSetting("Mqtt:Port", "0")
        .UseEventTimeLog();
}
