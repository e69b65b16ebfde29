using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Runtime;
using Tests.Shared;

namespace Api.Tests.Integration;

/// <summary>
/// The Api in embedded mode (in-memory log, store and a co-hosted silo with 2 partitions), Development keys plus a
/// device key restricted to <see cref="RestrictedDeviceId"/>. Receipt time is driven by the tests (<see cref="EventTimeLog"/>):
/// each test takes its own window of event time with <see cref="NextWindow"/> and closes minutes with <see cref="TickAsync"/>.
/// </summary>
public class ApiFactory : WebApplicationFactory<Program>
{
    public const string OperatorKey = "dev-operator-key-change-me";
    public const string DeviceKey = "dev-device-key-change-me";
    public const string RestrictedDeviceKey = "restricted-device-key-for-tests";
    public const string RestrictedKeyName = "restricted-device";
    public const int MaxBodyBytes = 64 * 1024;
    public const long MinuteMs = 60_000;

    /// <summary>Event time of the first window: a fixed day in the past.</summary>
    public static readonly long BaseTimeMs = DateTimeOffset.Parse("2026-06-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();

    private long _windows;

    /// <summary>The only device the restricted device key may act for (fresh per factory).</summary>
    public string RestrictedDeviceId { get; } = "dev-a-" + Guid.NewGuid().ToString("N")[..8];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseTestApiSettings();
        builder.UseSetting("Telemetry:MaxBodyBytes", MaxBodyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("Auth:Keys:2:Name", RestrictedKeyName);
        builder.UseSetting("Auth:Keys:2:Key", RestrictedDeviceKey);
        builder.UseSetting("Auth:Keys:2:Role", "device");
        builder.UseSetting("Auth:Keys:2:Devices:0", RestrictedDeviceId);
    }

    /// <summary>
    /// Reserves 10 minutes of event time later than every window reserved before and returns its start (a minute
    /// boundary). Receipt time is shared by the factory's tests and only moves on: a window later than every earlier
    /// one is received at its own event times.
    /// </summary>
    public long NextWindow() => BaseTimeMs + Interlocked.Increment(ref _windows) * 10 * MinuteMs;

    public HttpClient Client(string? apiKey)
    {
        var client = CreateClient();
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        }
        client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        return client;
    }

    public HttpClient Operator() => Client(OperatorKey);

    public HttpClient Device() => Client(DeviceKey);

    public EventTimeLog Log => Services.GetRequiredService<EventTimeLog>();

    /// <summary>Moves receipt time on to <paramref name="timeMs"/>: every sensor's clock runs to it, closing the minutes due by then.</summary>
    public Task TickAsync(long timeMs) => Log.TickAsync(timeMs);

    /// <summary>
    /// Ticks far enough past the minute holding <paramref name="timeMs"/> for it to close (end + 10 s lateness) for every
    /// sensor posted in it, and not the next one: 30 s more, since a sensor whose last reading came with later readings of
    /// other sensors in one request has a clock up to their spread behind receipt time.
    /// </summary>
    public Task CloseMinuteAsync(long timeMs) => TickAsync(MinuteOf(timeMs) + MinuteMs + 40_000);

    public static long MinuteOf(long timeMs) => timeMs - (timeMs % MinuteMs);
}

public static class ApiFactoryExtensions
{
    /// <summary>Waits until every partition has applied and checkpointed everything appended so far (lag 0 in /cluster).</summary>
    public static async Task SettledAsync(this ApiFactory factory)
    {
        var client = factory.Operator();
        await Eventually.Until(async () =>
        {
            var response = await client.GetAsync("/api/v1/cluster");
            if (!response.IsSuccessStatusCode)
            {
                return false;
            }
            var body = await response.BodyAsync();
            return body.GetProperty("partitionMap").EnumerateArray()
                .All(p => p.TryGetProperty("owner", out _) && p.GetProperty("lag").GetInt64() == 0);
        }, what: "every partition committed up to its end offset");
    }
}
