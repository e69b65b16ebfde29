using System.Net;
using OpenQA.Selenium;

namespace Browser.Tests;

/// <summary>The sensor page's metadata form (issue 13 item 2): what the device sent next to what the operator sets, saved over the API.</summary>
[Collection(DashboardCollection.Name)]
public sealed class SensorMetadataPageTests(DashboardFixture fx)
{
    private IWebElement Row(string field) => fx.Driver.FindElement(By.CssSelector($"#metadata-table tr[data-meta-field='{field}']"));

    private string Cell(string field, string cell) => Row(field).FindElement(By.CssSelector($"td.{cell}")).Text;

    private Task<System.Text.Json.JsonElement> DetailAsync(string sensor, Func<System.Text.Json.JsonElement, bool> ready, string what) =>
        DashboardFixture.Until(async () =>
        {
            var detail = await (await fx.Operator.GetAsync($"/api/v1/sensors/{sensor}")).ExpectAsync(HttpStatusCode.OK);
            return ready(detail) ? detail : null;
        }, what);

    [Fact]
    public async Task SensorPage_EditsTheOperatorMetadata_NextToWhatTheDeviceSent()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var sensor = $"bt-meta-{suffix}";
        var moved = $"bt-roof-{suffix}";
        var t0 = fx.NextWindow() + 1_000;
        await (await fx.Device.PostAsync("/api/v1/telemetry", DashboardFixture.Json(
                $$$"""{"sensor":"{{{sensor}}}","temperature":21,"timestamp":{{{t0}}},"metadata":{"location":"bt-garden","model":"BT-2","site":"north"}}""")))
            .ExpectAsync(HttpStatusCode.Accepted);
        await DetailAsync(sensor, d => d.TryGetProperty("metadata", out _), "the device's metadata");

        fx.Open($"/sensors/{sensor}");
        DashboardFixture.Until(() => Cell("location", "device-value") == "bt-garden", "what the device sent");
        Assert.Equal("bt-garden", Cell("location", "effective-value"));
        Assert.Equal("BT-2", Cell("model", "device-value"));
        Assert.Equal("site=north", Cell("tags", "device-value"));
        Assert.Equal("", fx.Driver.FindElement(By.Id("m-location")).GetAttribute("value"));

        // A value the API refuses: its message appears next to the field, and nothing is set.
        var location = fx.Driver.FindElement(By.Id("m-location"));
        location.SendKeys(new string('x', 257));
        fx.Driver.FindElement(By.Id("metadata-save")).Click();
        DashboardFixture.Until(() => fx.Driver.FindElement(By.Id("me-location")).Text == "location is longer than 256 characters", "the field error");
        Assert.Equal("true", location.GetAttribute("aria-invalid"));

        location.Clear();
        location.SendKeys(moved);
        fx.Driver.FindElement(By.Id("m-tags")).SendKeys("site=south\nteam=ops");
        fx.Driver.FindElement(By.Id("metadata-save")).Click();
        DashboardFixture.Until(() => fx.Driver.FindElement(By.Id("metadata-status")).Text == "Saved.", "the save");
        Assert.Equal("", fx.Driver.FindElement(By.Id("me-location")).Text);
        var detail = await DetailAsync(sensor, d => d.TryGetProperty("operatorMetadata", out _), "the operator's metadata in the API");
        Assert.Equal(moved, detail.GetProperty("operatorMetadata").GetProperty("location").GetString());
        Assert.Equal("south", detail.GetProperty("metadata").GetProperty("extra").GetProperty("site").GetString());

        // The page shows the merge (refreshed without a reload): the operator's location and tag win, the device's stay visible.
        // Read in one retried condition: a live refresh may replace the cells between finding one and reading it.
        DashboardFixture.Until(() => Cell("location", "effective-value") == $"{moved} operator"
            && Cell("location", "device-value") == "bt-garden"
            && Cell("model", "effective-value") == "BT-2"
            && Cell("tags", "effective-value") == "site=south, team=ops"
            && fx.Driver.FindElement(By.Id("meta-location")).Text == $"{moved} operator",
            "the operator's location and tags in effect, the device's location visible, the header's location");
        fx.Screenshots("sensor-metadata");

        // Emptied, the field is left to the device again. Erased with keys, as a user does: WebDriver's Clear() fires no
        // input event, so the page would not know the form is being edited and a refresh could fill it in again.
        location = fx.Driver.FindElement(By.Id("m-location"));
        Erase(location);
        Erase(fx.Driver.FindElement(By.Id("m-tags")));
        fx.Driver.FindElement(By.Id("metadata-save")).Click();
        await DetailAsync(sensor, d => !d.TryGetProperty("operatorMetadata", out _), "no operator metadata in the API");
        DashboardFixture.Until(() => Cell("location", "effective-value") == "bt-garden" && Cell("tags", "effective-value") == "site=north",
            "the device's location and tags in effect again");
        // The browser logs the 400 of the refused attempt as a failed load; nothing else may be logged.
        Assert.Equal([$"/api/v1/sensors/{sensor}/metadata 400"],
            fx.ConsoleErrors().Select(e => e.Contains($"/api/v1/sensors/{sensor}/metadata", StringComparison.Ordinal) && e.Contains("400", StringComparison.Ordinal)
                ? $"/api/v1/sensors/{sensor}/metadata 400" : e).ToArray());
    }

    private static void Erase(IWebElement field)
    {
        field.SendKeys(Keys.Control + "a");
        field.SendKeys(Keys.Delete);
    }
}
