extern alias ApiApp;

using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Tests.Shared;

namespace Simulator.Tests;

/// <summary>
/// --alert-probe against the real Api in embedded mode (in-memory log and store, a co-hosted silo with 2 partitions)
/// on a loopback port: the probe needs a real socket for its HttpClient and its SignalR WebSocket.
/// </summary>
public sealed class AlertProbeTests : IAsyncLifetime
{
    private const string OperatorKey = "dev-operator-key-change-me";
    private const string DeviceKey = "dev-device-key-change-me";

    private readonly ApiHost _api = new();
    private HttpClient _operator = null!;

    private Uri BaseAddress { get; set; } = null!;

    public Task InitializeAsync()
    {
        _api.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        _api.StartServer();
        var address = _api.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address);
        _operator = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        _operator.DefaultRequestHeaders.Add("X-Api-Key", OperatorKey);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _operator?.Dispose();
        await _api.DisposeAsync();
    }

    [Fact]
    public async Task Measures_every_sample_but_the_first_from_the_live_hub_and_deletes_its_rule()
    {
        const int samples = 5;
        var probe = new AlertProbe(BaseAddress, DeviceKey, OperatorKey, samples, TimeSpan.FromMilliseconds(20));
        // Generous for a busy machine: the probe itself waits at most 30 s for the first event and 10 s for each other.
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(4));

        var summary = await probe.RunAsync(cancel.Token);

        Assert.Equal(samples - 1, summary.Samples);
        Assert.Equal(0, summary.Timeouts);
        var latency = summary.LatencyMs;
        Assert.True(latency.P50 > 0 && latency.P50 <= latency.P99 && latency.P99 <= latency.Max, $"latency {latency}");
        // Every measured sample is among the slowest kept (fewer than kept), in the order sent, the slowest one the maximum.
        Assert.Equal(samples - 1, summary.Slowest.Length);
        Assert.Equal(summary.Slowest.OrderBy(s => s.SentAt), summary.Slowest);
        Assert.Equal(Math.Round(latency.Max, 1), summary.Slowest.Max(s => s.LatencyMs)!.Value, 0.15);

        // The probe deleted its rule.
        using (var rule = await _operator.GetAsync($"/api/v1/rules/{probe.RuleId}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, rule.StatusCode);
        }

        // Each sample opened one alert of the probe's rule on the probe's sensor, and its normal reading resolved it
        // (not the rule's deletion, which resolves the alerts still open).
        await Until(async () =>
        {
            var alerts = await AlertsAsync(probe.SensorId);
            return alerts.GetArrayLength() == samples && alerts.EnumerateArray().All(a => a.GetProperty("state").GetString() == "resolved");
        }, $"{samples} resolved alerts of {probe.SensorId}");
        await SettledAsync();
        var settled = await AlertsAsync(probe.SensorId);
        Assert.Equal(samples, settled.GetArrayLength());
        Assert.Equal(samples, settled.EnumerateArray().Select(a => a.GetProperty("id").GetString()).Distinct().Count());
        Assert.All(settled.EnumerateArray(), alert =>
        {
            Assert.Equal(probe.RuleId, alert.GetProperty("ruleId").GetString());
            Assert.Equal(probe.SensorId, alert.GetProperty("sensorId").GetString());
            Assert.Equal("Latency probe", alert.GetProperty("ruleName").GetString());
            Assert.Equal("info", alert.GetProperty("severity").GetString());
            Assert.Equal("resolved", alert.GetProperty("state").GetString());
            Assert.Equal("condition cleared", alert.GetProperty("resolvedReason").GetString());
            Assert.Equal(1, alert.GetProperty("value").GetDouble());
            Assert.Equal(0.5, alert.GetProperty("threshold").GetDouble());
            Assert.True(alert.GetProperty("resolvedAt").GetDateTimeOffset() > alert.GetProperty("openedAt").GetDateTimeOffset());
        });
        // Newest first: one incident after the other, each resolved before the next opened.
        var incidents = settled.EnumerateArray().Reverse()
            .Select(a => (Opened: a.GetProperty("openedAt").GetDateTimeOffset(), Resolved: a.GetProperty("resolvedAt").GetDateTimeOffset())).ToList();
        for (var i = 1; i < incidents.Count; i++)
        {
            Assert.True(incidents[i].Opened > incidents[i - 1].Resolved, $"incident {i} opened at {incidents[i].Opened:O}, the one before resolved at {incidents[i - 1].Resolved:O}");
        }
        // No alert on any other sensor came from the probe's rule.
        using var byRule = await _operator.GetAsync($"/api/v1/alerts?ruleId={probe.RuleId}");
        Assert.Equal(HttpStatusCode.OK, byRule.StatusCode);
        using var byRuleBody = JsonDocument.Parse(await byRule.Content.ReadAsStringAsync());
        Assert.Equal(samples, byRuleBody.RootElement.GetArrayLength());
    }

    [Fact]
    public async Task With_a_time_limit_starts_no_sample_after_it()
    {
        // Far more samples than the limit leaves time for (at least 20 ms each: over half an hour): the probe stops at the
        // limit with what it measured, long before the cancellation would end it with an exception.
        var probe = new AlertProbe(BaseAddress, DeviceKey, OperatorKey, 100_000, TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(2));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var started = System.Diagnostics.Stopwatch.GetTimestamp();

        var summary = await probe.RunAsync(cancel.Token);

        // It sampled until the limit, not fewer: at least 2 s, and samples all along (each takes 20 ms and the alert's
        // few milliseconds; at most 100 fit in 2 s).
        Assert.True(System.Diagnostics.Stopwatch.GetElapsedTime(started) >= TimeSpan.FromSeconds(2));
        Assert.InRange(summary.Samples, 5, 100);
        Assert.Equal(0, summary.Timeouts);
        // Every sample it started, the unmeasured first among them, opened one alert.
        await Until(async () => (await AlertsAsync(probe.SensorId)).GetArrayLength() == summary.Samples + 1, $"{summary.Samples + 1} alerts of {probe.SensorId}");
    }

    private async Task<JsonElement> AlertsAsync(string sensorId)
    {
        using var response = await _operator.GetAsync($"/api/v1/alerts?sensorId={Uri.EscapeDataString(sensorId)}");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET alerts: {(int)response.StatusCode} {text}");
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    /// <summary>Waits until every partition has applied and checkpointed everything appended so far (lag 0 in /cluster).</summary>
    private Task SettledAsync() => Until(async () =>
    {
        using var response = await _operator.GetAsync("/api/v1/cluster");
        if (!response.IsSuccessStatusCode)
        {
            return false;
        }
        using var cluster = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return cluster.RootElement.GetProperty("partitionMap").EnumerateArray()
            .All(p => p.TryGetProperty("owner", out var owner) && owner.ValueKind == JsonValueKind.String && p.GetProperty("lag").GetInt64() == 0);
    }, "every partition committed up to its end offset");

    /// <summary>Polls a condition (no fixed sleeps) and fails with <paramref name="what"/> after 30 s.</summary>
    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Not seen within 30 s: {what}");
            }
            await Task.Delay(50);
        }
    }

    /// <summary>The Api host as configured for Api.Tests' ApiFactory: embedded mode, demo off, ticks off.</summary>
    private sealed class ApiHost : WebApplicationFactory<ApiApp::Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseTestApiSettings();
        }
    }
}
