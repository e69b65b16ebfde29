using System.Globalization;
using System.Net;
using System.Text;
using OpenQA.Selenium;
using Tests.Shared;

namespace Browser.Tests;

[Collection(DashboardCollection.Name)]
public sealed class SensorPagesTests(DashboardFixture fx)
{
    private static string Iso(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    private async Task PostAsync(string body) =>
        await (await fx.Device.PostAsync("/api/v1/telemetry", DashboardFixture.Json(body))).ExpectAsync(HttpStatusCode.Accepted);

    [Fact]
    public async Task SensorList_SearchesAndPages()
    {
        var location = $"bt-site-{Guid.NewGuid().ToString("N")[..6]}";
        var t0 = fx.NextWindow() + 1_000;
        var items = Enumerable.Range(0, 60).Select(i =>
            $$$"""{"sensor":"{{{location}}}-{{{i:D2}}}","temperature":{{{20 + i % 7}}},"humidity":{{{40 + i % 11}}},"timestamp":{{{t0 + i}}},"metadata":{"location":"{{{location}}}","model":"BT-1"}}""");
        await PostAsync("[" + string.Join(",", items) + "]");
        await DashboardFixture.Until(async () =>
        {
            var page = await (await fx.Operator.GetAsync($"/api/v1/sensors?search={location}&limit=1")).ExpectAsync(HttpStatusCode.OK);
            return page.GetProperty("total").GetInt32() == 60 ? page : null;
        }, "60 sensors in the read store");

        fx.Open("/sensors");
        var search = fx.Driver.FindElement(By.Id("sensor-query"));
        search.SendKeys(location);
        fx.Driver.FindElement(By.Id("sensor-limit")).SendKeys("25");
        DashboardFixture.Until(() => fx.Driver.FindElement(By.Id("page-info")).Text.Replace('\u2013', '-') == "1-25 of 60 sensors", "the first page");
        var rows = fx.Driver.FindElements(By.CssSelector("#sensors-body tr[data-sensor-id]"));
        Assert.Equal(25, rows.Count);
        Assert.Equal($"{location}-00", rows[0].GetAttribute("data-sensor-id"));
        Assert.Contains("°C", rows[0].Text, StringComparison.Ordinal);
        Assert.Contains("BT-1", rows[0].Text, StringComparison.Ordinal);
        fx.Screenshots("sensors");

        fx.Driver.FindElement(By.Id("page-next")).Click();
        DashboardFixture.Until(() => fx.Driver.FindElement(By.Id("page-info")).Text.Replace('\u2013', '-') == "26-50 of 60 sensors", "the second page");
        Assert.Equal($"{location}-25", fx.Driver.FindElement(By.CssSelector("#sensors-body tr[data-sensor-id]")).GetAttribute("data-sensor-id"));
        Assert.Empty(fx.ConsoleErrors());
    }

    [Fact]
    public async Task SensorDetail_ChartsDrawOnePointPerClosedMinute_AndANewMinuteArrivesLive()
    {
        var sensor = $"bt-chart-{Guid.NewGuid().ToString("N")[..8]}";
        var t0 = fx.NextWindow();
        var body = new StringBuilder("[");
        for (var minute = 0; minute < 5; minute++)
        {
            foreach (var second in new[] { 5, 35 })
            {
                body.Append(CultureInfo.InvariantCulture,
                    $$$"""{"sensor":"{{{sensor}}}","temperature":{{{20 + minute + second / 35.0}}},"humidity":{{{50 + minute}}},"timestamp":{{{t0 + minute * DashboardFixture.MinuteMs + second * 1000}}},"metadata":{"location":"bt-lab"}},""");
            }
        }
        body.Length--;
        await PostAsync(body.Append(']').ToString());
        await fx.TickAsync(t0 + 5 * DashboardFixture.MinuteMs + 11_000);
        await DashboardFixture.Until(async () =>
        {
            var metrics = await (await fx.Operator.GetAsync($"/api/v1/sensors/{sensor}/metrics?from={Iso(t0)}&to={Iso(t0 + 10 * DashboardFixture.MinuteMs)}&metric=temperature"))
                .ExpectAsync(HttpStatusCode.OK);
            return metrics.GetProperty("points").GetArrayLength() == 5 ? metrics : null;
        }, "5 closed minutes");

        fx.Open($"/sensors/{sensor}?from={Iso(t0)}&to={Iso(t0 + 10 * DashboardFixture.MinuteMs)}");
        var temperature = By.CssSelector("figure.chart[data-metric=temperature]");
        DashboardFixture.Until(() => fx.Driver.FindElements(temperature).Count == 1, "the temperature chart");
        Assert.Equal("5", fx.Driver.FindElement(temperature).GetAttribute("data-points"));
        Assert.Equal("5", fx.Driver.FindElement(By.CssSelector("figure.chart[data-metric=humidity]")).GetAttribute("data-points"));
        Assert.NotEmpty(fx.Driver.FindElement(temperature).FindElements(By.TagName("canvas")));
        DashboardFixture.Until(() => fx.Driver.FindElements(By.CssSelector("#last-readings-table tbody tr")).Count == 10, "the last readings");

        // A reading in minute 5, then stream time past its close: the aggregate arrives over SignalR and is drawn.
        await PostAsync($$"""{"sensor":"{{sensor}}","temperature":30,"humidity":60,"timestamp":{{t0 + 5 * DashboardFixture.MinuteMs + 20_000}}}""");
        DashboardFixture.Until(() => fx.Driver.FindElements(By.CssSelector("#current-minute-table tbody tr")).Count == 2, "the current minute");
        await fx.TickAsync(t0 + 6 * DashboardFixture.MinuteMs + 11_000);
        DashboardFixture.Until(() => fx.Driver.FindElement(temperature).GetAttribute("data-points") == "6", "the sixth minute, live");

        // The device connects over MQTT: the page says since when, and on which Api node.
        DashboardFixture.OnOneRender(() => Assert.Equal("not connected", fx.Driver.FindElement(By.Id("sensor-mqtt")).Text));
        await using (Mosquitto.StartRunning("mosquitto_sub", ["-h", "127.0.0.1", "-p", fx.MqttPort.ToString(CultureInfo.InvariantCulture), "-V", "mqttv5",
            "-i", sensor, "-u", sensor, "-P", DashboardFixture.DeviceKey, "-t", $"devices/{sensor}/commands"]))
        {
            DashboardFixture.Until(() => fx.Driver.FindElement(By.Id("sensor-mqtt")).Text is var text
                && text.StartsWith("connected since", StringComparison.Ordinal) && text.Contains("MQTT 5, Api node", StringComparison.Ordinal),
                "the MQTT connection (since when, MQTT 5, which Api node) on the sensor page", TimeSpan.FromSeconds(20));
        }
        Assert.Empty(fx.ConsoleErrors());
        fx.Screenshots("sensor-detail");
    }

    [Fact]
    public async Task SensorDetail_ListsTheCommandsSentToIt()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var sensor = $"bt-cmd-{suffix}";
        var ruleId = $"bt-cmd-rule-{suffix}";
        await (await fx.Operator.PostAsync("/api/v1/rules", DashboardFixture.Json(new
        {
            id = ruleId,
            name = "Too hot " + suffix,
            severity = "major",
            target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "threshold", metric = "temperature", @operator = ">", value = 30 },
            controlAction = new { command = "vent", parameters = new Dictionary<string, string> { ["speed"] = "2" } },
        }))).ExpectAsync(HttpStatusCode.Created);
        var t0 = fx.NextWindow() + 1_000;
        await PostAsync($$"""{"sensor":"{{sensor}}","temperature":35,"timestamp":{{t0}}}""");
        var alert = await DashboardFixture.Until(async () =>
        {
            var alerts = await (await fx.Operator.GetAsync($"/api/v1/alerts?ruleId={ruleId}")).ExpectAsync(HttpStatusCode.OK);
            return alerts.GetArrayLength() == 1 ? alerts[0] : null;
        }, "the alert of the rule");
        var commandId = alert.GetProperty("id").GetString() + "/open";

        fx.Open($"/sensors/{sensor}");
        var row = By.CssSelector($"#commands-table tr[data-command-id='{commandId}']");
        DashboardFixture.Until(() => fx.Driver.FindElements(row).Count == 1, "the command in the sensor's history");
        var cells = fx.Driver.FindElement(row).FindElements(By.TagName("td"));
        Assert.Equal("vent", cells[1].Text);
        Assert.Equal("speed=2", cells[2].Text);
        Assert.Equal(ruleId, cells[3].Text);
        Assert.Equal("pending", cells[4].Text);
        var created = cells[0].FindElement(By.TagName("time"));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(t0).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture),
            created.GetAttribute("title"));

        // The device fetches it: the page shows when (refreshed without a reload).
        var taken = await (await fx.Device.GetAsync($"/api/v1/devices/{sensor}/commands")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(1, taken.GetArrayLength());
        DashboardFixture.Until(() => fx.Driver.FindElement(row).GetAttribute("data-delivered") == "true", "the delivery time", TimeSpan.FromSeconds(20));
        Assert.NotEmpty(fx.Driver.FindElement(row).FindElements(By.CssSelector("td:last-child time[title$=' UTC']")));
        Assert.Empty(fx.ConsoleErrors());
        fx.Screenshots("sensor-commands");
    }
}
