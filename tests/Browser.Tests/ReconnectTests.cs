using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;

namespace Browser.Tests;

/// <summary>
/// Issue 5 item 2: the alerts page reconnects by itself after the Api restarts, and shows that it is reconnecting.
/// Its own Api on a fixed loopback port (stopped and started again on that port) and its own browser, so the shared
/// dashboard Api of the other tests is never stopped.
/// </summary>
public sealed class ReconnectTests : IAsyncLifetime
{
    private static readonly long BaseTimeMs = DateTimeOffset.Parse("2026-07-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();

    private readonly int _port = FreePort();
    private DashboardFixture.ApiHost? _api;
    private string _profileDir = "";
    private ChromeDriver _driver = null!;

    private Uri BaseAddress => new($"http://127.0.0.1:{_port}");

    public Task InitializeAsync()
    {
        StartApi();
        _profileDir = Directory.CreateTempSubdirectory("oiot-chromium-").FullName;
        _driver = DashboardFixture.StartChrome(_profileDir);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        try
        {
            _driver?.Quit();
        }
        finally
        {
            _driver?.Dispose();
            await StopApiAsync();
            try
            {
                Directory.Delete(_profileDir, recursive: true);
            }
            catch (IOException)
            {
                // Chromium may still be writing; the temp folder is cleaned by the system.
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void StartApi()
    {
        var api = new DashboardFixture.ApiHost();
        api.UseKestrel(o => o.Listen(IPAddress.Loopback, _port));
        api.StartServer();
        _api = api;
    }

    private async Task StopApiAsync()
    {
        if (_api is { } api)
        {
            _api = null;
            await api.DisposeAsync();
        }
    }

    private HttpClient Client(string key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    private string LiveState() => _driver.FindElement(By.Id("live-status")).GetAttribute("data-state") ?? "";

    [Fact]
    public async Task AlertsPage_ShowsReconnecting_WhileTheApiIsDown_AndShowsANewAlertAfterItsRestart_WithoutAReload()
    {
        _driver.Navigate().GoToUrl(new Uri(BaseAddress, "/?signin=1"));
        ((IJavaScriptExecutor)_driver).ExecuteScript("sessionStorage.setItem('oiot.operatorKey', arguments[0]);", DashboardFixture.OperatorKey);
        _driver.Navigate().GoToUrl(new Uri(BaseAddress, "/#/alerts"));
        DashboardFixture.Until(() => _driver.FindElements(By.CssSelector(".alerts-page")).Count == 1, "the alerts page");
        DashboardFixture.Until(() => LiveState() == "connected", "the live connection");
        Assert.Equal("Live", _driver.FindElement(By.Id("live-status")).Text);
        Assert.DoesNotContain(_driver.Manage().Logs.GetLog(LogType.Browser), e => e.Level == LogLevel.Severe);
        ((IJavaScriptExecutor)_driver).ExecuteScript("window.__noReload = true;");

        await StopApiAsync();
        DashboardFixture.Until(() => LiveState() == "reconnecting", "the reconnecting state", TimeSpan.FromSeconds(30));
        Assert.Equal("Reconnecting…", _driver.FindElement(By.Id("live-status")).Text);
        _driver.GetScreenshot().SaveAsFile(Path.Combine(CreatedScreenshotDir(), "alerts-reconnecting.png"));

        StartApi();
        DashboardFixture.Until(() => LiveState() == "connected", "the live connection back after the restart", TimeSpan.FromSeconds(30));
        Assert.Equal("Live", _driver.FindElement(By.Id("live-status")).Text);

        // The restarted Api is a new embedded cluster: a rule and a reading posted now raise an alert that reaches the open page live.
        var sensor = $"bt-reconnect-{Guid.NewGuid():N}"[..24];
        var rule = $"bt-reconnect-rule-{Guid.NewGuid():N}"[..28];
        using var operatorClient = Client(DashboardFixture.OperatorKey);
        using var device = Client(DashboardFixture.DeviceKey);
        await (await operatorClient.PostAsync("/api/v1/rules", DashboardFixture.Json(new
        {
            id = rule,
            name = "Reconnect hot",
            severity = "major",
            target = new { kind = "sensors", sensorIds = new[] { sensor } },
            condition = new { kind = "threshold", metric = "temperature", on = "raw", @operator = ">", value = 30 },
        }))).ExpectAsync(HttpStatusCode.Created);
        await (await device.PostAsync("/api/v1/telemetry", DashboardFixture.Json(
            $$"""{"sensor":"{{sensor}}","temperature":41,"timestamp":{{BaseTimeMs + 5_000}}}"""))).ExpectAsync(HttpStatusCode.Accepted);

        var rowSelector = By.XPath($"//tbody[@id='alerts-body']/tr[td[normalize-space()='{sensor}']]");
        DashboardFixture.Until(() => _driver.FindElements(rowSelector).Count == 1, "the new alert's row, live after the restart");
        Assert.Equal("open", _driver.FindElement(rowSelector).GetAttribute("data-state"));
        Assert.Contains("41 > 30", _driver.FindElement(rowSelector).Text, StringComparison.Ordinal);
        Assert.Equal(true, ((IJavaScriptExecutor)_driver).ExecuteScript("return window.__noReload === true;"));

        // The only errors logged are the failed connections to the stopped Api (no script error).
        var errors = _driver.Manage().Logs.GetLog(LogType.Browser).Where(e => e.Level == LogLevel.Severe).Select(e => e.Message).ToArray();
        Assert.All(errors, e => Assert.Contains($"127.0.0.1:{_port}", e, StringComparison.Ordinal));
    }

    private static string CreatedScreenshotDir()
    {
        Directory.CreateDirectory(DashboardFixture.ScreenshotDir);
        return DashboardFixture.ScreenshotDir;
    }
}
