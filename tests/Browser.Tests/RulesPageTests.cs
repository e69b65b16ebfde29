using System.Net;
using OpenQA.Selenium;

namespace Browser.Tests;

[Collection(DashboardCollection.Name)]
public sealed class RulesPageTests(DashboardFixture fx)
{
    private IWebElement Field(string name) => fx.Driver.FindElement(By.Id($"f-{name}"));

    private string ErrorOf(string name) => fx.Driver.FindElement(By.Id($"e-{name}")).Text;

    [Fact]
    public async Task RuleCreatedInTheForm_ShowsFieldErrors_FiresLive_IsDisabledAndDeleted()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var sensor = $"bt-form-{suffix}";
        var ruleId = $"bt-form-rule-{suffix}";
        fx.Open("/rules");
        ((IJavaScriptExecutor)fx.Driver).ExecuteScript("window.__noReload = true;");

        Field("id").SendKeys(ruleId);
        Field("name").SendKeys("Form rule " + suffix);
        Field("severity").SendKeys("minor");
        Field("target.kind").SendKeys("sensors");
        Field("target.sensorIds").SendKeys(sensor);
        Field("condition.value").SendKeys("30");
        fx.Driver.FindElement(By.Id("rule-save")).Click();

        // The metric is missing: the API's message is shown next to the field.
        DashboardFixture.Until(() => ErrorOf("condition.metric").Length > 0, "the metric's validation message");
        Assert.Equal("true", Field("condition.metric").GetAttribute("aria-invalid"));
        fx.Screenshots("rules-validation");
        await (await fx.Operator.GetAsync($"/api/v1/rules/{ruleId}")).ExpectAsync(HttpStatusCode.NotFound);

        Field("condition.metric").SendKeys("temperature");
        fx.Driver.FindElement(By.Id("rule-save")).Click();
        var row = By.CssSelector($"tr[data-rule-id='{ruleId}']");
        DashboardFixture.Until(() => fx.Driver.FindElements(row).Count == 1, "the new rule in the list");
        Assert.Contains("temperature > 30", fx.Driver.FindElement(row).Text, StringComparison.Ordinal);
        var stored = await (await fx.Operator.GetAsync($"/api/v1/rules/{ruleId}")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal("minor", stored.GetProperty("severity").GetString());
        fx.Screenshots("rules");

        // Readings posted over HTTP open an alert that the alerts page shows without a reload.
        fx.Driver.FindElement(By.CssSelector("#nav a[href='#/alerts']")).Click();
        DashboardFixture.Until(() => fx.Driver.FindElements(By.CssSelector(".alerts-page")).Count == 1, "the alerts page");
        await (await fx.Device.PostAsync("/api/v1/telemetry", DashboardFixture.Json(
            $$$"""{"sensor":"{{{sensor}}}","temperature":31,"timestamp":{{{fx.NextWindow()}}}}"""))).ExpectAsync(HttpStatusCode.Accepted);
        DashboardFixture.Until(() => fx.Driver.FindElements(By.XPath($"//tbody[@id='alerts-body']/tr[td[normalize-space()='{sensor}']]")).Count == 1,
            "the alert of the form's rule, live");
        Assert.Equal(true, ((IJavaScriptExecutor)fx.Driver).ExecuteScript("return window.__noReload === true;"));

        // Disable, then delete, from the page.
        fx.Driver.FindElement(By.CssSelector("#nav a[href='#/rules']")).Click();
        DashboardFixture.Until(() => fx.Driver.FindElements(row).Count == 1, "the rule list");
        fx.Driver.FindElement(By.CssSelector($"button[data-toggle='{ruleId}']")).Click();
        await DashboardFixture.Until(async () =>
        {
            var rule = await (await fx.Operator.GetAsync($"/api/v1/rules/{ruleId}")).ExpectAsync(HttpStatusCode.OK);
            return rule.GetProperty("enabled").GetBoolean() ? null : rule;
        }, "the rule disabled in the API");
        DashboardFixture.Until(() => fx.Driver.FindElement(row).GetAttribute("data-enabled") == "false", "the row disabled");
        fx.Driver.FindElement(By.CssSelector($"button[data-delete='{ruleId}']")).Click();
        fx.Driver.FindElement(By.CssSelector($"button[data-delete='{ruleId}']")).Click();
        DashboardFixture.Until(() => fx.Driver.FindElements(row).Count == 0, "the rule gone from the list");
        await (await fx.Operator.GetAsync($"/api/v1/rules/{ruleId}")).ExpectAsync(HttpStatusCode.NotFound);
        // The browser logs the 400 of the invalid attempt as a failed load; nothing else may be logged.
        Assert.DoesNotContain(fx.ConsoleErrors(), e => !e.Contains("/api/v1/rules", StringComparison.Ordinal));
    }
}
