using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using Tests.Shared;

namespace Browser.Tests;

/// <summary>
/// The Api in embedded mode on a real loopback port (Kestrel), demo off, receipt time driven by the tests (ticks off,
/// <see cref="EventTimeLog"/> in front of the log), and one headless Debian Chromium driven through chromedriver. Shared
/// by every test of the collection.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    public const string OperatorKey = "dev-operator-key-change-me";
    public const string DeviceKey = "dev-device-key-change-me";
    public const long MinuteMs = 60_000;
    private static readonly long BaseTimeMs = DateTimeOffset.Parse("2026-06-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();

    private readonly ApiHost _host = new();
    private string? _profileDir;
    private long _windows;

    public ChromeDriver Driver { get; private set; } = null!;
    public Uri BaseAddress { get; private set; } = null!;
    public HttpClient Operator { get; private set; } = null!;
    public HttpClient Device { get; private set; } = null!;

    /// <summary>Where screenshots go: TestResults/screenshots of this test project (created when missing).</summary>
    public static string ScreenshotDir { get; } = FindScreenshotDir();

    public Task InitializeAsync()
    {
        _host.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        _host.StartServer();
        var address = _host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        Operator = Client(OperatorKey);
        Device = Client(DeviceKey);

        _profileDir = Directory.CreateTempSubdirectory("oiot-chromium-").FullName;
        Driver = StartChrome(_profileDir);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        try
        {
            Driver?.Quit();
        }
        finally
        {
            Driver?.Dispose();
            Operator?.Dispose();
            Device?.Dispose();
            await _host.DisposeAsync();
            if (_profileDir is not null)
            {
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
    }

    /// <summary>Headless Debian Chromium at 1280×800 with its browser log kept, driven through chromedriver.</summary>
    public static ChromeDriver StartChrome(string profileDir)
    {
        var options = new ChromeOptions { BinaryLocation = "/usr/bin/chromium" };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
            "--window-size=1280,800", $"--user-data-dir={profileDir}");
        options.SetLoggingPreference(LogType.Browser, LogLevel.All);
        var service = ChromeDriverService.CreateDefaultService("/usr/bin", "chromedriver");
        service.HideCommandPromptWindow = true;
        service.SuppressInitialDiagnosticInformation = true;
        return new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
    }

    private HttpClient Client(string key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        return client;
    }

    /// <summary>
    /// 10 minutes of event time later than every window taken before: receipt time is shared by the collection's tests
    /// and only moves on, so a window later than every earlier one is received at its own event times.
    /// </summary>
    /// <summary>The Api's MQTT TCP port.</summary>
    public int MqttPort => _host.Services.GetRequiredService<Api.Mqtt.MqttEndpoint>().TcpEndPoint!.Port;

    public long NextWindow() => BaseTimeMs + Interlocked.Increment(ref _windows) * 10 * MinuteMs;

    /// <summary>Moves receipt time on to <paramref name="timeMs"/>: every sensor's clock runs to it, closing the minutes due by then.</summary>
    public Task TickAsync(long timeMs) => _host.Services.GetRequiredService<EventTimeLog>().TickAsync(timeMs);

    /// <summary>Waits until every partition has applied and checkpointed everything appended so far (lag 0 in /cluster).</summary>
    public async Task SettledAsync() => await Until(async () =>
    {
        var cluster = await (await Operator.GetAsync("/api/v1/cluster")).ExpectAsync(HttpStatusCode.OK);
        return cluster.GetProperty("partitionMap").EnumerateArray()
            .All(p => p.TryGetProperty("owner", out _) && p.TryGetProperty("lag", out var lag) && lag.GetInt64() == 0) ? cluster : null;
    }, "every partition committed up to its end offset");

    /// <summary>
    /// Opens a dashboard page in a fresh document with the operator key already in session storage. What the browser
    /// logged before (an earlier test's pages) is dropped: <see cref="ConsoleErrors"/> then reports this page's errors only.
    /// </summary>
    public void Open(string hash)
    {
        Driver.Navigate().GoToUrl(new Uri(BaseAddress, "/?signin=1"));
        Driver.Manage().Logs.GetLog(LogType.Browser);
        ((IJavaScriptExecutor)Driver).ExecuteScript("sessionStorage.setItem('oiot.operatorKey', arguments[0]);", OperatorKey);
        Driver.Navigate().GoToUrl(new Uri(BaseAddress, $"/?load={Guid.NewGuid():N}#{hash}"));
        WaitLive();
    }

    /// <summary>Waits until the page's SignalR connection is up.</summary>
    public void WaitLive() => Until(() => Driver.FindElement(By.Id("live-status")).GetAttribute("data-state") == "connected", "the live connection");

    /// <summary>Messages the browser logged at level SEVERE (console errors, uncaught exceptions, failed loads).</summary>
    public IReadOnlyList<string> ConsoleErrors() =>
        Driver.Manage().Logs.GetLog(LogType.Browser).Where(e => e.Level == LogLevel.Severe).Select(e => e.Message).ToArray();

    /// <summary>Writes a screenshot at the current size and one at a phone's size (390×844).</summary>
    public void Screenshots(string name)
    {
        Directory.CreateDirectory(ScreenshotDir);
        Driver.GetScreenshot().SaveAsFile(Path.Combine(ScreenshotDir, $"{name}.png"));
        var size = Driver.Manage().Window.Size;
        Driver.Manage().Window.Size = new System.Drawing.Size(390, 844);
        try
        {
            Driver.GetScreenshot().SaveAsFile(Path.Combine(ScreenshotDir, $"{name}-phone.png"));
        }
        finally
        {
            Driver.Manage().Window.Size = size;
        }
    }

    /// <summary>
    /// Runs assertions over elements of a page that re-renders them while it polls: a render in the middle makes them
    /// stale, and the whole block runs again on the new ones (until the deadline; other failures fail at once).
    /// </summary>
    public static void OnOneRender(Action assertions, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            try
            {
                assertions();
                return;
            }
            catch (Exception e) when (DateTime.UtcNow < deadline && IsStale(e))
            {
                Thread.Sleep(50);
            }
        }

        static bool IsStale(Exception e) => e is StaleElementReferenceException || (e.InnerException is { } inner && IsStale(inner))
            || (e is Xunit.Sdk.XunitException && e.Message.Contains("stale element", StringComparison.Ordinal));
    }

    /// <summary>Polls a condition in the page (no fixed sleeps) and fails with <paramref name="what"/> after the deadline.</summary>
    public static void Until(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (condition())
                {
                    return;
                }
            }
            catch (WebDriverException e)
            {
                last = e;
            }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"Not seen within {(timeout ?? TimeSpan.FromSeconds(15)).TotalSeconds} s: {what}", last);
    }

    public static async Task<JsonElement> Until(Func<Task<JsonElement?>> probe, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Not seen within {(timeout ?? TimeSpan.FromSeconds(15)).TotalSeconds} s: {what}");
            }
            await Task.Delay(50);
        }
    }

    public static StringContent Json(object body) => new(JsonSerializer.Serialize(body, JsonSerializerOptions.Web), Encoding.UTF8, "application/json");

    public static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static string FindScreenshotDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Browser.Tests.csproj")))
            {
                return Path.Combine(dir.FullName, "TestResults", "screenshots");
            }
        }
        return Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");
    }

    /// <summary>The Api host as configured for the browser tests (as in Api.Tests' ApiFactory).</summary>
    public sealed class ApiHost : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseTestApiSettings();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class DashboardCollection : ICollectionFixture<DashboardFixture>
{
    public const string Name = "dashboard";
}

public static class HttpExtensions
{
    public static async Task<JsonElement> ExpectAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        if (text.Length == 0)
        {
            return default;
        }
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }
}
