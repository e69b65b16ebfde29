using System.Globalization;
using System.Net;
using System.Text.Json;
using OpenQA.Selenium;

namespace Browser.Tests;

[Collection(DashboardCollection.Name)]
public sealed class RulePreviewPageTests(DashboardFixture fx)
{
    private const long M = DashboardFixture.MinuteMs;

    /// <summary>
    /// Per-minute averages: a one-minute streak (too short for forMinutes 3), a five-minute streak (one alert) and a
    /// last streak still pending at the end of the range.
    /// </summary>
    private static readonly double[] Averages = [50, 70, 50, 71, 72, 73, 74, 75, 50, 70];

    private IWebElement Field(string name) => fx.Driver.FindElement(By.Id($"f-{name}"));

    private string ErrorOf(string name) => fx.Driver.FindElement(By.Id($"e-{name}")).Text;

    private void Choose(string name, string value) => ((IJavaScriptExecutor)fx.Driver).ExecuteScript(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change', { bubbles: true }));", Field(name), value);

    /// <summary>Sets a datetime-local field to an instant, written in the browser's zone as a user would type it.</summary>
    private void SetLocalTime(string name, long ms) => ((IJavaScriptExecutor)fx.Driver).ExecuteScript("""
        const d = new Date(arguments[1]);
        const p = (n) => String(n).padStart(2, '0');
        arguments[0].value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
        arguments[0].dispatchEvent(new Event('change', { bubbles: true }));
        """, Field(name), ms);

    /// <summary>Two readings per minute (+5 s and +35 s) whose average is the minute's value.</summary>
    private static string Readings(string sensor, string location, long windowMs, IEnumerable<int> minutes) =>
        "[" + string.Join(",", minutes.SelectMany(k => new[] { (5_000, Averages[k] - 1), (35_000, Averages[k] + 1) }.Select(r =>
            string.Create(CultureInfo.InvariantCulture,
                $$$"""{"sensor":"{{{sensor}}}","hum":{{{r.Item2}}},"timestamp":{{{windowMs + k * M + r.Item1}}},"metadata":{"location":"{{{location}}}"}}""")))) + "]";

    private async Task PostAsync(string body) =>
        await (await fx.Device.PostAsync("/api/v1/telemetry", DashboardFixture.Json(body))).ExpectAsync(HttpStatusCode.Accepted);

    private static string Iso(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    private async Task StoredMinutesAsync(string sensor, long windowMs) =>
        await DashboardFixture.Until(async () =>
        {
            var metrics = await (await fx.Operator.GetAsync($"/api/v1/sensors/{sensor}/metrics?from={Iso(windowMs)}&to={Iso(windowMs + 10 * M)}&metric=hum"))
                .ExpectAsync(HttpStatusCode.OK);
            return metrics.GetProperty("points").GetArrayLength() == 10 ? metrics : null;
        }, $"10 stored minutes of {sensor}");

    [Fact]
    public async Task PreviewCount_EqualsTheAlertsTheSavedRuleOpens_OnReplayedData()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var location = $"bt-pv-site-{suffix}";
        var first = $"bt-pv-a-{suffix}";
        var second = $"bt-pv-b-{suffix}";
        var name = $"Preview rule {suffix}";
        var w1 = fx.NextWindow();
        await PostAsync(Readings(first, location, w1, Enumerable.Range(0, 10)));
        await fx.TickAsync(w1 + 10 * M + 10_000);
        await StoredMinutesAsync(first, w1);

        fx.Open("/rules");
        Field("name").SendKeys(name);
        Choose("severity", "minor");
        Choose("target.kind", "location");
        Field("target.location").SendKeys(location);
        Choose("condition.on", "avg");
        Choose("condition.operator", ">");
        Field("condition.value").SendKeys("60");
        Field("condition.forMinutes").SendKeys("3");
        Choose("preview.range", "custom");
        SetLocalTime("preview.from", w1);
        SetLocalTime("preview.to", w1 + 10 * M);

        // Without a metric, the preview shows the API's message next to the field, as saving does.
        var preview = fx.Driver.FindElement(By.Id("rule-preview"));
        preview.Click();
        DashboardFixture.Until(() => ErrorOf("condition.metric").Length > 0, "the metric's validation message");
        Assert.Equal("metric must not be empty or whitespace", ErrorOf("condition.metric"));
        Assert.Equal("true", Field("condition.metric").GetAttribute("aria-invalid"));

        // Keyboard: type the metric, then Enter in the range field previews (it does not save).
        Field("condition.metric").SendKeys("hum");
        Field("preview.to").SendKeys(Keys.Enter);
        var count = By.Id("preview-count");
        DashboardFixture.Until(() => fx.Driver.FindElements(count).Count == 1, "the preview result");
        var previewed = int.Parse(fx.Driver.FindElement(count).GetAttribute("data-count")!, CultureInfo.InvariantCulture);
        Assert.Equal(1, previewed);
        Assert.Equal("1", fx.Driver.FindElement(By.CssSelector($"#preview-sensors tr[data-sensor-id='{first}'] td")).Text);
        Assert.Single(fx.Driver.FindElements(By.CssSelector("#preview-alerts tbody tr")));
        Assert.Empty(fx.Driver.FindElements(By.Id("preview-approximation")));
        JsonElement rules = await (await fx.Operator.GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK);
        Assert.DoesNotContain(rules.GetProperty("items").EnumerateArray(), r => r.GetProperty("name").GetString() == name);
        ((IJavaScriptExecutor)fx.Driver).ExecuteScript("document.getElementById('preview-result').scrollIntoView({ block: 'center' });");
        fx.Screenshots("rules-preview");

        fx.Driver.FindElement(By.Id("rule-save")).Click();
        var ruleId = (await DashboardFixture.Until(async () =>
        {
            var list = await (await fx.Operator.GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK);
            return list.GetProperty("items").EnumerateArray().Where(r => r.GetProperty("name").GetString() == name).Select(r => (JsonElement?)r).FirstOrDefault();
        }, "the saved rule")).GetProperty("id").GetString()!;

        // The same readings from a second sensor of the site, ten minutes later, one minute at a time as a device
        // sending in real time would: the saved rule opens exactly as many alerts as the preview counted.
        var w2 = fx.NextWindow();
        for (var k = 0; k < 10; k++)
        {
            await PostAsync(Readings(second, location, w2, [k]));
            await fx.SettledAsync();
            await fx.SettledAsync();
        }
        await fx.TickAsync(w2 + 10 * M + 10_000);
        await StoredMinutesAsync(second, w2);
        await fx.SettledAsync();
        await fx.SettledAsync();
        var alerts = await (await fx.Operator.GetAsync($"/api/v1/alerts?ruleId={ruleId}")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(previewed, alerts.GetArrayLength());
        Assert.All(alerts.EnumerateArray(), a => Assert.Equal(second, a.GetProperty("sensorId").GetString()));
        Assert.DoesNotContain(fx.ConsoleErrors(), e => !e.Contains("/api/v1/rules/preview", StringComparison.Ordinal));
    }
}
