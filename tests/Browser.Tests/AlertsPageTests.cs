using System.Net;
using System.Text.Json;
using OpenQA.Selenium;

namespace Browser.Tests;

[Collection(DashboardCollection.Name)]
public sealed class AlertsPageTests(DashboardFixture fx)
{
    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public void KeyForm_AsksOnce_ThenShowsAlertsWithoutConsoleErrors()
    {
        fx.Driver.Navigate().GoToUrl(new Uri(fx.BaseAddress, "/"));
        ((IJavaScriptExecutor)fx.Driver).ExecuteScript("sessionStorage.clear();");
        fx.Driver.Navigate().GoToUrl(new Uri(fx.BaseAddress, $"/?load={Guid.NewGuid():N}#/alerts"));
        DashboardFixture.Until(() => fx.Driver.FindElements(By.Id("key-input")).Count == 1, "the key form");
        fx.Driver.Manage().Logs.GetLog(LogType.Browser);

        fx.Driver.FindElement(By.Id("key-input")).SendKeys(DashboardFixture.OperatorKey);
        fx.Driver.FindElement(By.CssSelector("#key-form button[type=submit]")).Click();
        DashboardFixture.Until(() => fx.Driver.FindElements(By.CssSelector(".alerts-page")).Count == 1, "the alerts page");
        fx.WaitLive();

        // Kept for the session: a reload does not ask again.
        fx.Driver.Navigate().Refresh();
        DashboardFixture.Until(() => fx.Driver.FindElements(By.CssSelector(".alerts-page")).Count == 1, "the alerts page after a reload");
        Assert.Empty(fx.Driver.FindElements(By.Id("key-input")));
        fx.WaitLive();
        Assert.Equal(5 + 1, fx.Driver.FindElements(By.CssSelector("#alert-counts .count")).Count);
        Assert.Empty(fx.ConsoleErrors());
        fx.Screenshots("alerts");
    }

    [Fact]
    public void KeyForm_RejectsAnUnknownKey()
    {
        fx.Driver.Navigate().GoToUrl(new Uri(fx.BaseAddress, "/"));
        ((IJavaScriptExecutor)fx.Driver).ExecuteScript("sessionStorage.clear();");
        fx.Driver.Navigate().GoToUrl(new Uri(fx.BaseAddress, $"/?load={Guid.NewGuid():N}#/alerts"));
        DashboardFixture.Until(() => fx.Driver.FindElements(By.Id("key-input")).Count == 1, "the key form");
        fx.Driver.FindElement(By.Id("key-input")).SendKeys("not-a-key-of-this-api");
        fx.Driver.FindElement(By.Id("key-input")).SendKeys(Keys.Enter);
        DashboardFixture.Until(() => fx.Driver.FindElement(By.Id("key-error")).Text.Contains("not known", StringComparison.Ordinal), "the error");
        Assert.Null(((IJavaScriptExecutor)fx.Driver).ExecuteScript("return sessionStorage.getItem('oiot.operatorKey');"));
    }

    [Fact]
    public async Task RuleFiresOnHttpReadings_AlertAppearsWithoutReload_AcknowledgedInThePage()
    {
        var sensor = NewId("bt-sensor");
        var rule = NewId("bt-hot");
        var t0 = fx.NextWindow() + 5_000;
        await (await fx.Operator.PostAsync("/api/v1/rules", DashboardFixture.Json(new
        {
            id = rule,
            name = "Browser test hot",
            severity = "critical",
            target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "threshold", metric = "temperature", on = "raw", @operator = ">", value = 30 },
        }))).ExpectAsync(HttpStatusCode.Created);

        fx.Open("/alerts");
        var js = (IJavaScriptExecutor)fx.Driver;
        js.ExecuteScript("window.__noReload = true;");
        var criticalBefore = int.Parse(fx.Driver.FindElement(By.CssSelector("#alert-counts [data-severity=critical]")).GetAttribute("data-count")!,
            System.Globalization.CultureInfo.InvariantCulture);

        await (await fx.Device.PostAsync("/api/v1/telemetry", DashboardFixture.Json(
            $$"""{"sensor":"{{sensor}}","temperature":35.5,"timestamp":{{t0}}}"""))).ExpectAsync(HttpStatusCode.Accepted);

        var rowSelector = By.XPath($"//tbody[@id='alerts-body']/tr[td[normalize-space()='{sensor}']]");
        DashboardFixture.Until(() => fx.Driver.FindElements(rowSelector).Count == 1, "the alert row, live");
        Assert.Equal(true, js.ExecuteScript("return window.__noReload === true;"));
        var row = fx.Driver.FindElement(rowSelector);
        Assert.Equal("open", row.GetAttribute("data-state"));
        Assert.Contains("35.5 > 30", row.Text, StringComparison.Ordinal);
        Assert.Equal((criticalBefore + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
            fx.Driver.FindElement(By.CssSelector("#alert-counts [data-severity=critical]")).GetAttribute("data-count"));
        var alertId = row.GetAttribute("data-alert-id")!;
        fx.Screenshots("alerts-live");

        fx.Driver.FindElement(By.CssSelector($"button[data-ack='{alertId}']")).Click();

        var acknowledged = await DashboardFixture.Until(async () =>
        {
            var alerts = await (await fx.Operator.GetAsync($"/api/v1/alerts?sensorId={sensor}")).ExpectAsync(HttpStatusCode.OK);
            var alert = alerts.EnumerateArray().SingleOrDefault(a => a.GetProperty("id").GetString() == alertId);
            return alert.ValueKind == JsonValueKind.Object && alert.GetProperty("acknowledged").GetBoolean() ? alert : null;
        }, "the alert acknowledged in the API");
        Assert.Equal("open", acknowledged.GetProperty("state").GetString());
        DashboardFixture.Until(() => fx.Driver.FindElement(By.CssSelector($"tr[data-alert-id='{alertId}']")).GetAttribute("data-state") == "acknowledged",
            "the row acknowledged");
        Assert.Empty(fx.ConsoleErrors());
        fx.Screenshots("alerts-acknowledged");
    }
}
