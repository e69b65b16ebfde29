using System.Globalization;
using System.Net;
using OpenQA.Selenium;

namespace Browser.Tests;

/// <summary>Issue 5 item 6: the cluster page (Orleans silos, partition map, live load charts, link to the Orleans Dashboard).</summary>
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
        var siloName = silo.GetProperty("name").GetString()!;
        var partitions = cluster.GetProperty("partitionMap").GetArrayLength();
        Assert.Equal(2, partitions);

        fx.Driver.Manage().Logs.GetLog(LogType.Browser);
        fx.Open("/cluster");
        DashboardFixture.Until(() => fx.Driver.FindElement(By.CssSelector(".cluster-page")).GetAttribute("data-loaded") == "true", "the cluster page loaded");
        Assert.Equal("Cluster · OrleansIot", fx.Driver.Title);
        Assert.Equal("page", fx.Driver.FindElement(By.CssSelector("#nav a[href='#/cluster']")).GetAttribute("aria-current"));

        // The columns of the Orleans cluster: no epochs, leases or alerts per silo any more.
        Assert.Equal(["Silo", "Status", "Uptime", "Partitions", "Activations", "Readings/s", "Readings applied", "Last “I am alive”"],
            fx.Driver.FindElements(By.CssSelector("#silo-table thead th")).Select(h => h.Text));
        Assert.Equal(["Partition", "Silo", "Active since", "Committed", "Applied", "End", "Lag", "Readings", "Sensors", "Last checkpoint"],
            fx.Driver.FindElements(By.CssSelector("#partition-map thead th")).Select(h => h.Text));

        // The co-hosted silo runs the readers of both partitions, and their partition grains.
        var siloRow = By.CssSelector($"#silo-body tr[data-silo-id='{siloId}']");
        DashboardFixture.Until(() => fx.Driver.FindElements(siloRow).Count == 1
            && fx.Driver.FindElement(siloRow).FindElement(By.CssSelector(".silo-partitions")).GetAttribute("data-count") == "2", "the silo running 2 partitions");
        DashboardFixture.OnOneRender(() =>
        {
            Assert.Single(fx.Driver.FindElements(By.CssSelector("#silo-body tr")));
            var row = fx.Driver.FindElement(siloRow);
            Assert.Equal("active", row.GetAttribute("data-status"));
            Assert.Equal(siloName, row.FindElement(By.CssSelector(".silo-name")).Text);
            Assert.Equal(siloId, row.FindElement(By.CssSelector(".silo-address")).Text);
            Assert.Contains("(0, 1)", row.Text, StringComparison.Ordinal);
            Assert.Matches(@"^\d+ sensor, \d+ rule, 2 partition$", row.FindElement(By.CssSelector(".silo-activations")).Text);
            Assert.EndsWith(" UTC", row.FindElement(By.CssSelector("time")).GetAttribute("title"), StringComparison.Ordinal);

            // A partition map row per partition, run by the silo: since when, positions, lag, readings, sensors, last checkpoint.
            var mapRows = fx.Driver.FindElements(By.CssSelector("#partition-body tr"));
            Assert.Equal(partitions, mapRows.Count);
            Assert.Equal(["0", "1"], mapRows.Select(r => r.GetAttribute("data-partition")));
            Assert.All(mapRows, r => Assert.Equal(siloId, r.GetAttribute("data-owner")));
            Assert.All(mapRows, r => Assert.Contains(siloId, r.Text, StringComparison.Ordinal));
            Assert.All(mapRows, r => Assert.Contains(siloName, r.Text, StringComparison.Ordinal));
            Assert.All(mapRows, r => Assert.All(r.FindElements(By.CssSelector("td.num")), c => Assert.Matches(@"^[\d,.\s\u00a0\u202f]+$", c.Text)));
            Assert.All(mapRows, r => Assert.Equal(2, r.FindElements(By.CssSelector("time[title$=' UTC']")).Count));
        });
        // The 20 readings posted above, applied by the two readers (more from the collection's other tests).
        DashboardFixture.Until(() => fx.Driver.FindElements(By.CssSelector("#partition-body tr"))
            .Sum(r => long.Parse(r.GetAttribute("data-readings")!, CultureInfo.InvariantCulture)) >= 20,
            "the readings applied by the partitions' readers");

        // The Orleans Dashboard, served by the Api to operators.
        var orleans = fx.Driver.FindElement(By.Id("orleans-dashboard-link"));
        Assert.Equal("Orleans Dashboard", orleans.Text);
        Assert.Equal(new Uri(fx.BaseAddress, "/orleans/").ToString(), orleans.GetAttribute("href"));
        Assert.Contains("operator key as the password", fx.Driver.FindElement(By.Id(orleans.GetAttribute("aria-describedby")!)).Text, StringComparison.Ordinal);

        // The charts show the history: the readings/s chart has points, one of them above 0 (the readings posted above).
        DashboardFixture.Until(() => int.Parse(fx.Driver.FindElement(By.Id("chart-readings")).GetAttribute("data-points")!, CultureInfo.InvariantCulture) >= 1
            && double.Parse(fx.Driver.FindElement(By.Id("chart-readings")).GetAttribute("data-max")!, CultureInfo.InvariantCulture) > 0,
            "a readings/s point above 0", TimeSpan.FromSeconds(20));
        Assert.Single(fx.Driver.FindElements(By.CssSelector("#chart-readings .uplot")));
        Assert.Single(fx.Driver.FindElements(By.CssSelector("#chart-alerts .uplot")));
        Assert.Single(fx.Driver.FindElements(By.CssSelector("#chart-silos .uplot")));
        Assert.Contains(siloId, fx.Driver.FindElement(By.Id("chart-silos")).Text, StringComparison.Ordinal);
        DashboardFixture.OnOneRender(() =>
        {
            Assert.Contains("readings/s", fx.Driver.FindElement(By.Id("cluster-summary")).Text, StringComparison.Ordinal);
            Assert.Matches("^[0-9,]+", fx.Driver.FindElement(By.Id("summary-mqtt")).Text);
        });

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
    public async Task OrleansDashboard_Opens_WithTheOperatorKeyAsThePassword()
    {
        var cluster = await (await fx.Operator.GetAsync("/api/v1/cluster")).ExpectAsync(HttpStatusCode.OK);
        var siloId = Assert.Single(cluster.GetProperty("silos").EnumerateArray()).GetProperty("id").GetString()!;

        // What the browser does once the operator typed a user name and the key into its Basic prompt (headless Chromium
        // cannot show the prompt): the page, its script and the JSON it polls all load with those credentials.
        var withCredentials = new UriBuilder(new Uri(fx.BaseAddress, "/orleans/")) { UserName = "operator", Password = DashboardFixture.OperatorKey }.Uri;
        fx.Driver.Navigate().GoToUrl(withCredentials);
        DashboardFixture.Until(() => fx.Driver.Title == "Orleans Dashboard", "the Orleans Dashboard's page");
        DashboardFixture.Until(() => fx.Driver.FindElement(By.Id("content")).Text.Contains("ACTIVE SILOS\n1", StringComparison.OrdinalIgnoreCase),
            "one active silo in the overview", TimeSpan.FromSeconds(20));

        // Its pages of this cluster: the silo (by its address, as /api/v1/cluster names it) and the grain types.
        fx.Driver.Navigate().GoToUrl(new Uri(fx.BaseAddress, "/orleans/#/silos"));
        DashboardFixture.Until(() => fx.Driver.FindElement(By.Id("content")).Text.Contains(siloId, StringComparison.Ordinal),
            "this cluster's silo in the Orleans Dashboard", TimeSpan.FromSeconds(20));
        fx.Driver.Navigate().GoToUrl(new Uri(fx.BaseAddress, "/orleans/#/grains"));
        DashboardFixture.Until(() => fx.Driver.FindElement(By.Id("content")).Text.Contains("PartitionGrain", StringComparison.Ordinal),
            "the partition grains in the Orleans Dashboard", TimeSpan.FromSeconds(20));
        Assert.Equal(0L, Convert.ToInt64(Js.ExecuteScript(
            "return performance.getEntriesByType('resource').filter(e => e.responseStatus >= 400).length;"), CultureInfo.InvariantCulture));
        // (Reading the browser log also empties it for the collection's next test.)
        Assert.DoesNotContain(fx.ConsoleErrors(), e => e.Contains(" 401 ", StringComparison.Ordinal) || e.Contains(" 403 ", StringComparison.Ordinal));
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
