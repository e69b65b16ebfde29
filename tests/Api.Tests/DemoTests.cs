using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Api.Tests;

/// <summary>The demo option: a new user sees sensors, closed minute aggregates and alerts within seconds of start.</summary>
public sealed class DemoTests
{
    [Fact]
    public async Task The_demo_fleet_shows_sensors_aggregates_and_alerts_within_seconds()
    {
        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b => b.UseSetting("Demo:Enabled", "true").UseSetting("Mqtt:Port", "0"));
        using var client = factory.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", "dev-operator-key-change-me");

        var deadline = DateTime.UtcNow.AddSeconds(20);
        int sensors = 0, minutes = 0, outside = 0;
        string? alert = null;
        while (DateTime.UtcNow < deadline && (sensors < 24 || minutes < 9 || outside < 2 * minutes || alert is null))
        {
            using var list = JsonDocument.Parse(await client.GetStringAsync("/api/v1/sensors?limit=100"));
            sensors = list.RootElement.GetProperty("total").GetInt32();
            var to = DateTimeOffset.UtcNow.AddMinutes(1).ToString("O");
            var metrics = await client.GetAsync($"/api/v1/sensors/garden-01/metrics?metric=temperature&from={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(-15).ToString("O"))}&to={Uri.EscapeDataString(to)}");
            if (metrics.IsSuccessStatusCode)
            {
                using var body = JsonDocument.Parse(await metrics.Content.ReadAsStringAsync());
                minutes = body.RootElement.GetProperty("points").GetArrayLength();
                outside = body.RootElement.TryGetProperty("outside", out var o) ? o.GetArrayLength() : 0;
            }
            using var alerts = JsonDocument.Parse(await client.GetStringAsync("/api/v1/alerts?state=open&ruleId=demo-greenhouse-hot"));
            alert = alerts.RootElement.EnumerateArray().Select(a => a.GetProperty("sensorId").GetString()).FirstOrDefault();
            await Task.Delay(100);
        }

        Assert.Equal(24, sensors);
        Assert.InRange(minutes, 9, 11);
        Assert.Equal(2 * minutes, outside); // outside temperature and humidity joined into every closed minute
        Assert.Equal("greenhouse-01", alert);
        var rules = await client.GetFromJsonAsync<JsonElement>("/api/v1/rules");
        Assert.Equal(["demo-greenhouse-hot", "demo-greenhouse-warm", "demo-humid-minute", "demo-offline"], rules.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("id").GetString()));
    }
}
