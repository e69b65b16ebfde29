using System.Net;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// A rule preview's cost is bounded (issue 10 item 5): the sensors it would replay times the minutes of its range may
/// not pass Rules:PreviewMaxSensorMinutes; past it, a 400 says by how much, and nothing is read.
/// </summary>
public sealed class RulePreviewLimitApiTests(LimitedApiFactory factory) : IClassFixture<LimitedApiFactory>
{
    [Fact]
    public async Task A_preview_past_its_sensor_minute_budget_is_a_400_and_one_within_it_runs()
    {
        var sensors = new[] { Ids.New("pvl-a"), Ids.New("pvl-b") };
        var t = factory.NextWindow();
        foreach (var sensor in sensors)
        {
            await (await factory.Device().PostAsync("/api/v1/telemetry", Json($$$"""{"id":"{{{sensor}}}","timestamp":{{{t + 1_000}}},"hum":50}""")))
                .ExpectAsync(HttpStatusCode.Accepted);
        }
        await factory.CloseMinuteAsync(t);
        await factory.SettledAsync();
        object Preview(long minutes) => new
        {
            rule = new
            {
                name = "Preview budget",
                severity = "minor",
                target = new { kind = "sensors", sensorIds = sensors },
                condition = new { kind = "threshold", metric = "hum", on = "avg", @operator = ">", value = 60 },
            },
            from = Iso(t),
            to = Iso(t + minutes * ApiFactory.MinuteMs),
        };

        await (await factory.Operator().PostAsync("/api/v1/rules/preview", Json(Preview(51))))
            .ExpectValidationProblemAsync("The preview request is not valid", new Dictionary<string, string[]>
            {
                ["to"] = ["the preview would replay 2 sensors over 51 minutes (102 sensor-minutes); at most 100 (Rules:PreviewMaxSensorMinutes): "
                    + "shorten the range or narrow the target"],
            });
        var within = await (await factory.Operator().PostAsync("/api/v1/rules/preview", Json(Preview(50)))).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal((2, 2, 0), (within.GetProperty("sensorsTargeted").GetInt32(), within.GetProperty("sensorsScanned").GetInt32(), within.GetProperty("total").GetInt32()));
    }
}
