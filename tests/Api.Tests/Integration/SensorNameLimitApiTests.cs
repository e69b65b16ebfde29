using System.Net;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// Distinct metric and attribute names per sensor are bounded (issue 10 item 5): a reading that would give its sensor
/// one name more than it may have is rejected at ingest with its index, nothing of it stored; the sensor's other readings
/// and other sensors go on.
/// </summary>
public sealed class SensorNameLimitApiTests(LimitedApiFactory factory) : IClassFixture<LimitedApiFactory>
{
    [Fact]
    public async Task A_reading_with_a_name_past_its_sensor_s_limit_is_rejected_and_nothing_of_it_is_stored()
    {
        var sensor = Ids.New("names");
        var other = Ids.New("names-other");
        var t = factory.NextWindow() + 1_000;
        var device = factory.Device();

        await (await device.PostAsync("/api/v1/telemetry", Json($$$"""{"id":"{{{sensor}}}","timestamp":{{{t}}},"a":1,"b":2,"door":"open"}""")))
            .ExpectAsync(HttpStatusCode.Accepted);
        var response = await (await device.PostAsync("/api/v1/telemetry", Json($$$"""
            [{"id":"{{{sensor}}}","timestamp":{{{t + 1}}},"a":10,"c":3},
             {"id":"{{{sensor}}}","timestamp":{{{t + 2}}},"a":20,"d":4},
             {"id":"{{{sensor}}}","timestamp":{{{t + 3}}},"b":30,"door":"shut","window":"open","hatch":"up"},
             {"id":"{{{other}}}","timestamp":{{{t + 4}}},"d":5,"e":6,"f":7,"hatch":"up"}]
            """))).ExpectAsync(HttpStatusCode.Accepted);
        JsonAssert.Equal(new
        {
            accepted = 2,
            rejected = new object[]
            {
                new { index = 1, error = $"metric 'd' would be a new metric of sensor '{sensor}', which has 3 already, its limit (Grains:MaxMetricNames)" },
                new { index = 2, error = $"attribute 'hatch' would be a new attribute of sensor '{sensor}', which has 2 already, its limit (Grains:MaxAttributeNames)" },
            },
        }, response);

        await factory.CloseMinuteAsync(t);
        await factory.SettledAsync();
        var detail = await (await factory.Operator().GetAsync($"/api/v1/sensors/{sensor}")).ExpectAsync(HttpStatusCode.OK);
        JsonAssert.Equal(new Dictionary<string, double> { ["a"] = 10, ["b"] = 2, ["c"] = 3 }, detail.GetProperty("latest"));
        JsonAssert.Equal(new Dictionary<string, string> { ["door"] = "open" }, detail.GetProperty("attributes"));
        Assert.Equal(2, detail.GetProperty("lastReadings").GetArrayLength());
        Assert.False(detail.TryGetProperty("namesDropped", out _));
        var neighbour = await (await factory.Operator().GetAsync($"/api/v1/sensors/{other}")).ExpectAsync(HttpStatusCode.OK);
        JsonAssert.Equal(new Dictionary<string, double> { ["d"] = 5, ["e"] = 6, ["f"] = 7 }, neighbour.GetProperty("latest"));
    }

    /// <summary>A body of many new sensors is admitted a window of grain calls at a time, each answer for its own sensor.</summary>
    [Fact]
    public async Task A_body_of_600_new_sensors_gets_each_sensor_s_own_answer()
    {
        var p = Ids.New("names-many");
        var t = factory.NextWindow() + 1_000;
        // Even sensors bring three metrics (admitted), odd ones four (one too many).
        var body = "[" + string.Join(",", Enumerable.Range(0, 600).Select(i => i % 2 == 0
            ? $$$"""{"id":"{{{p}}}-{{{i}}}","timestamp":{{{t}}},"a":1,"b":2,"c":3}"""
            : $$$"""{"id":"{{{p}}}-{{{i}}}","timestamp":{{{t}}},"a":1,"b":2,"c":3,"d":4}""")) + "]";

        var response = await (await factory.Device().PostAsync("/api/v1/telemetry", Json(body))).ExpectAsync(HttpStatusCode.Accepted);

        Assert.Equal(300, response.GetProperty("accepted").GetInt32());
        var rejected = response.GetProperty("rejected").EnumerateArray().ToList();
        Assert.Equal(Enumerable.Range(0, 300).Select(k => 2 * k + 1), rejected.Select(r => r.GetProperty("index").GetInt32()));
        Assert.All(rejected, r => Assert.Equal(
            $"metric 'd' would be a new metric of sensor '{p}-{r.GetProperty("index").GetInt32()}', which has 3 already, its limit (Grains:MaxMetricNames)",
            r.GetProperty("error").GetString()));
    }
}
