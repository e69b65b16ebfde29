using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenQA.Selenium;
using OpenQA.Selenium.Interactions;

namespace Browser.Tests;

/// <summary>
/// The sensor page's charts with the outside conditions of the sensor's location (issue 13 item 3): a dashed "outside
/// temperature" line on the temperature chart, a small chart of its own for an outside metric the sensor does not
/// measure, new minutes live, and nothing of it for a sensor whose location has no outside values.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed class SensorOutsidePageTests(DashboardFixture fx)
{
    private static string Iso(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    private async Task PostAsync(string body) =>
        await (await fx.Device.PostAsync("/api/v1/telemetry", DashboardFixture.Json(body))).ExpectAsync(HttpStatusCode.Accepted);

    private async Task PostConditionsAsync(string location, string body) =>
        await (await fx.Operator.PostAsync($"/api/v1/locations/{location}/conditions", DashboardFixture.Json(body))).ExpectAsync(HttpStatusCode.Accepted);

    /// <summary>The sensor's closed minutes, or null while the read store does not know the sensor yet (404).</summary>
    private async Task<JsonElement?> MetricsAsync(string sensor, string range)
    {
        using var response = await fx.Operator.GetAsync($"/api/v1/sensors/{sensor}/metrics?{range}");
        return response.StatusCode == HttpStatusCode.NotFound ? null : await response.ExpectAsync(HttpStatusCode.OK);
    }

    private static By Chart(string metric) => By.CssSelector($"figure.chart[data-metric={metric}]");

    private string[] LegendLabels(string metric) =>
        fx.Driver.FindElement(Chart(metric)).FindElements(By.CssSelector(".u-legend .u-series .u-label")).Select(l => l.Text).ToArray();

    [Fact]
    public async Task SensorPage_DrawsTheOutsideConditionsOfItsLocation_BesideItsOwnValues_AndLive()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var location = $"bt-yard-{suffix}";
        var sensor = $"bt-out-{suffix}";
        var indoors = $"bt-in-{suffix}";
        var t0 = fx.NextWindow();

        // The weather of the location a minute before the window (current in each of its minutes), then three minutes of
        // temperature readings of a sensor there and of one at a location without outside values.
        await PostConditionsAsync(location, $$$"""{"timestamp":{{{t0 - DashboardFixture.MinuteMs}}},"metrics":{"temperature":12.5,"humidity":85}}""");
        var body = new StringBuilder("[");
        for (var minute = 0; minute < 3; minute++)
        {
            foreach (var second in new[] { 5, 35 })
            {
                var at = t0 + minute * DashboardFixture.MinuteMs + second * 1000;
                body.Append(CultureInfo.InvariantCulture,
                    $$$"""{"sensor":"{{{sensor}}}","temperature":{{{20 + minute}}},"timestamp":{{{at}}},"metadata":{"location":"{{{location}}}"}},""");
                body.Append(CultureInfo.InvariantCulture,
                    $$$"""{"sensor":"{{{indoors}}}","temperature":{{{22 + minute}}},"timestamp":{{{at}}},"metadata":{"location":"bt-cellar-{{{suffix}}}"}},""");
            }
        }
        body.Length--;
        await PostAsync(body.Append(']').ToString());
        await fx.TickAsync(t0 + 3 * DashboardFixture.MinuteMs + 11_000);
        var range = $"from={Iso(t0)}&to={Iso(t0 + 10 * DashboardFixture.MinuteMs)}";
        await DashboardFixture.Until(async () =>
        {
            var metrics = await MetricsAsync(sensor, range);
            return metrics?.GetProperty("points").GetArrayLength() == 3 && metrics.Value.TryGetProperty("outside", out var outside) && outside.GetArrayLength() == 6
                ? metrics : null;
        }, "3 closed minutes with the outside temperature and humidity");
        await DashboardFixture.Until(async () =>
        {
            var metrics = await MetricsAsync(indoors, range);
            return metrics?.GetProperty("points").GetArrayLength() == 3 ? metrics : null;
        }, "3 closed minutes of the sensor without outside values");

        // The temperature chart: the sensor's band and average, and the outside temperature as a fourth, dashed series.
        fx.Open($"/sensors/{sensor}?{range}");
        DashboardFixture.Until(() => fx.Driver.FindElements(Chart("temperature")).Count == 1, "the temperature chart");
        var temperature = fx.Driver.FindElement(Chart("temperature"));
        Assert.Equal("3", temperature.GetAttribute("data-points"));
        Assert.Equal("3", temperature.GetAttribute("data-outside-points"));
        Assert.Equal("12.5", temperature.GetAttribute("data-outside-last"));
        Assert.Equal(["Time", "min", "max", "avg", "outside temperature"], LegendLabels("temperature"));
        Assert.Contains("dashed: outside at the sensor's location", temperature.FindElement(By.TagName("figcaption")).Text, StringComparison.Ordinal);

        // The pointer over the chart: the legend gives the outside value of the minute beside the sensor's average.
        ((IJavaScriptExecutor)fx.Driver).ExecuteScript("arguments[0].scrollIntoView({ block: 'center' });", temperature);
        new Actions(fx.Driver).MoveToElement(temperature.FindElement(By.CssSelector(".u-over"))).Perform();
        DashboardFixture.Until(() => LegendValue("temperature", "outside temperature") == "12.5 °C", "the outside temperature in the legend");
        Assert.Equal("21 °C", LegendValue("temperature", "avg"));
        Assert.Equal("dashed", LegendRow("temperature", "outside temperature").FindElement(By.CssSelector(".u-marker")).GetCssValue("border-top-style"));
        Assert.Equal("solid", LegendRow("temperature", "avg").FindElement(By.CssSelector(".u-marker")).GetCssValue("border-top-style"));

        // Outside humidity, which the sensor does not measure: a small chart of its own, labelled as outside.
        var humidity = fx.Driver.FindElement(Chart("humidity"));
        Assert.Contains("chart-outside", humidity.GetAttribute("class"), StringComparison.Ordinal);
        Assert.StartsWith("outside humidity (%)", humidity.FindElement(By.TagName("figcaption")).Text, StringComparison.Ordinal);
        Assert.Equal("0", humidity.GetAttribute("data-points"));
        Assert.Equal("3", humidity.GetAttribute("data-outside-points"));
        Assert.Equal("85", humidity.GetAttribute("data-outside-last"));
        Assert.Equal(["Time", "outside humidity"], LegendLabels("humidity"));
        Assert.Equal(2, fx.Driver.FindElements(By.CssSelector("figure.chart")).Count);
        fx.Screenshots("sensor-outside");

        // The weather changes in the next minute: the closed minute arrives over SignalR with the new outside value.
        await PostConditionsAsync(location, $$$"""{"timestamp":"{{{Iso(t0 + 3 * DashboardFixture.MinuteMs + 30_000)}}}","metrics":{"temperature":14}}""");
        await PostAsync($$"""{"sensor":"{{sensor}}","temperature":24,"timestamp":{{t0 + 3 * DashboardFixture.MinuteMs + 20_000}}}""");
        await fx.TickAsync(t0 + 4 * DashboardFixture.MinuteMs + 11_000);
        DashboardFixture.Until(() => fx.Driver.FindElement(Chart("temperature")).GetAttribute("data-points") == "4", "the fourth minute, live");
        DashboardFixture.OnOneRender(() =>
        {
            Assert.Equal("4", fx.Driver.FindElement(Chart("temperature")).GetAttribute("data-outside-points"));
            Assert.Equal("14", fx.Driver.FindElement(Chart("temperature")).GetAttribute("data-outside-last"));
            Assert.Equal("4", fx.Driver.FindElement(Chart("humidity")).GetAttribute("data-outside-points"));
            Assert.Equal("85", fx.Driver.FindElement(Chart("humidity")).GetAttribute("data-outside-last"));
        });
        Assert.Empty(fx.ConsoleErrors());

        // A sensor whose location has no outside values: its chart is as before, without an outside series or chart.
        fx.Open($"/sensors/{indoors}?{range}");
        DashboardFixture.Until(() => fx.Driver.FindElements(Chart("temperature")).Count == 1, "the temperature chart of the sensor without outside values");
        var plain = fx.Driver.FindElement(Chart("temperature"));
        Assert.Equal("3", plain.GetAttribute("data-points"));
        Assert.Null(plain.GetAttribute("data-outside-points"));
        Assert.Equal(["Time", "min", "max", "avg"], LegendLabels("temperature"));
        Assert.DoesNotContain("outside", plain.FindElement(By.TagName("figcaption")).Text, StringComparison.Ordinal);
        Assert.Single(fx.Driver.FindElements(By.CssSelector("figure.chart")));
        Assert.Empty(fx.Driver.FindElements(By.CssSelector("figure.chart-outside")));
        Assert.Empty(fx.ConsoleErrors());
    }

    private IWebElement LegendRow(string metric, string label) =>
        fx.Driver.FindElement(Chart(metric)).FindElements(By.CssSelector(".u-legend .u-series"))
            .Single(row => row.FindElement(By.CssSelector(".u-label")).Text == label);

    private string LegendValue(string metric, string label) => LegendRow(metric, label).FindElement(By.CssSelector(".u-value")).Text;
}
