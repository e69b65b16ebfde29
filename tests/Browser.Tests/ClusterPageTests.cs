using System.Globalization;
using System.Net;
using OpenQA.Selenium;

namespace Browser.Tests;

/// <summary>Issue 5 item 6: the cluster page (silos, partition map, live load charts).</summary>
[Collection(DashboardCollection.Name)]
public sealed class ClusterPageTests(DashboardFixture fx)
{
    private IJavaScriptExecutor Js => (IJavaScriptExecutor)fx.Driver;

    private long ResourceCount(string path) => Convert.ToInt64(Js.ExecuteScript(
        "return performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname === arguments[0]).length;", path),
        CultureInfo.InvariantCulture);

    [Fact]
    public async Task ListsTheSiloAndEveryPartition_ChartsTheLoad_WithoutConsoleErrors_AndStopsPollingWhenLeft()
    {
        // Load for the charts: readings applied by the co-hosted silo.
        var window = fx.NextWindow();
        var body = "[" + string.Join(",", Enumerable.Range(0, 20).Select(i =>
            $$"""{"sensor":"bt-cluster-{{i}}-{{Guid.NewGuid():N}}","temperature":{{20 + i}},"timestamp":{{window + i * 1_000}}}""")) + "]";
        await (await fx.Device.PostAsync("/api/v1/telemetry", DashboardFixture.Json(body))).ExpectAsync(HttpStatusCode.Accepted);
        var cluster = await (await fx.Operator.GetAsync("/api/v1/cluster")).ExpectAsync(HttpStatusCode.OK);
        var silo = Assert.Single(cluster.GetProperty("silos").EnumerateArray());
        var siloId = silo.GetProperty("id").GetString()!;
        var partitions = cluster.GetProperty("partitionMap").GetArrayLength();
        Assert.Equal(2, partitions);

        fx.Driver.Manage().Logs.GetLog(LogType.Browser);
        fx.Open("/cluster");
        DashboardFixture.Until(() => fx.Driver.FindElement(By.CssSelector(".cluster-page")).GetAttribute("data-loaded") == "true", "the cluster page loaded");
        Assert.Equal("Cluster · OrleansIot", fx.Driver.Title);
        Assert.Equal("page", fx.Driver.FindElement(By.CssSelector("#nav a[href='#/cluster']")).GetAttribute("aria-current"));

        // The co-hosted silo holds both partitions.
        var siloRow = By.CssSelector($"#silo-body tr[data-silo-id='{siloId}']");
        DashboardFixture.Until(() => fx.Driver.FindElements(siloRow).Count == 1
            && fx.Driver.FindElement(siloRow).FindElement(By.CssSelector(".silo-partitions")).GetAttribute("data-count") == "2", "the silo holding 2 partitions");
        Assert.Single(fx.Driver.FindElements(By.CssSelector("#silo-body tr")));
        var row = fx.Driver.FindElement(siloRow);
        Assert.Equal("alive", row.GetAttribute("data-status"));
        Assert.Contains("(0, 1)", row.Text, StringComparison.Ordinal);
        Assert.Matches(@"\d+ sensor, \d+ rule", row.Text);
        Assert.EndsWith(" UTC", row.FindElement(By.CssSelector("time")).GetAttribute("title"), StringComparison.Ordinal);

        // A partition map row per partition, owned by the silo.
        var mapRows = fx.Driver.FindElements(By.CssSelector("#partition-body tr"));
        Assert.Equal(partitions, mapRows.Count);
        Assert.Equal(["0", "1"], mapRows.Select(r => r.GetAttribute("data-partition")));
        Assert.All(mapRows, r => Assert.Equal(siloId, r.GetAttribute("data-owner")));
        Assert.All(mapRows, r => Assert.Contains(siloId, r.Text, StringComparison.Ordinal));

        // The charts show the history: the readings/s chart has points, one of them above 0 (the readings posted above).
        DashboardFixture.Until(() => int.Parse(fx.Driver.FindElement(By.Id("chart-readings")).GetAttribute("data-points")!, CultureInfo.InvariantCulture) >= 1
            && double.Parse(fx.Driver.FindElement(By.Id("chart-readings")).GetAttribute("data-max")!, CultureInfo.InvariantCulture) > 0,
            "a readings/s point above 0", TimeSpan.FromSeconds(20));
        Assert.Single(fx.Driver.FindElements(By.CssSelector("#chart-readings .uplot")));
        Assert.Single(fx.Driver.FindElements(By.CssSelector("#chart-alerts .uplot")));
        Assert.Single(fx.Driver.FindElements(By.CssSelector("#chart-silos .uplot")));
        Assert.Contains(siloId, fx.Driver.FindElement(By.Id("chart-silos")).Text, StringComparison.Ordinal);
        Assert.Contains("readings/s", fx.Driver.FindElement(By.Id("cluster-summary")).Text, StringComparison.Ordinal);

        // It polls while shown.
        var polled = ResourceCount("/api/v1/cluster/metrics");
        DashboardFixture.Until(() => ResourceCount("/api/v1/cluster/metrics") > polled, "another poll of the metrics");

        Assert.Empty(fx.ConsoleErrors());
        fx.Screenshots("cluster");
        Js.ExecuteScript("document.getElementById('partitions-heading').scrollIntoView();");
        fx.Screenshots("cluster-partitions");

        // Left for another page: no more polls. Proving an absence needs a wait: 2.5 refresh intervals of 2 s.
        fx.Driver.FindElement(By.CssSelector("#nav a[href='#/alerts']")).Click();
        DashboardFixture.Until(() => fx.Driver.FindElements(By.CssSelector(".alerts-page")).Count == 1, "the alerts page");
        var afterLeaving = ResourceCount("/api/v1/cluster/metrics");
        await Task.Delay(TimeSpan.FromSeconds(5));
        Assert.Equal(afterLeaving, ResourceCount("/api/v1/cluster/metrics"));
    }

    [Fact]
    public void Navigation_ReachesTheClusterPage_WithTheKeyboard()
    {
        fx.Open("/alerts");
        var link = fx.Driver.FindElement(By.CssSelector("#nav a[href='#/cluster']"));
        Assert.Equal("Cluster", link.Text);
        fx.Driver.FindElement(By.CssSelector(".brand")).SendKeys("");
        for (var i = 0; i < 10 && !Equals(fx.Driver.SwitchTo().ActiveElement(), link); i++)
        {
            fx.Driver.SwitchTo().ActiveElement().SendKeys(Keys.Tab);
        }
        Assert.Equal(link, fx.Driver.SwitchTo().ActiveElement());
        link.SendKeys(Keys.Enter);
        DashboardFixture.Until(() => fx.Driver.FindElements(By.CssSelector(".cluster-page[data-loaded='true']")).Count == 1, "the cluster page from the keyboard");
    }
}
