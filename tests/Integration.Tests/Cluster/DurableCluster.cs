using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Integration.Tests.RabbitMq;
using Xunit.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>
/// A durable cluster of real processes for one test: Orleans silo and Api processes (the built Silo.dll and Api.dll,
/// run with <c>dotnet</c>) on free loopback ports, on a fresh database, stream prefix and Orleans cluster of the shared
/// servers, with the fast failure detection the silos use by default. Each process's output goes to a file and into
/// memory. Everything started here is killed on dispose, also when the test fails, and the tail of every log is written
/// to the test output.
/// </summary>
public sealed class DurableCluster : IAsyncDisposable
{
    public const string OperatorKey = "dev-operator-key-change-me";
    public const string DeviceKey = "dev-device-key-change-me";

    private static readonly Lazy<(string Silo, string Api)> Dlls = new(FindDlls);

    private readonly ClusterServers _servers;
    private readonly ITestOutputHelper _output;
    private readonly string _directory;
    private readonly List<NodeProcess> _started = [];
    private readonly Dictionary<string, NodeProcess> _silos = [];
    private readonly HashSet<NodeProcess> _expectedExits = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private NodeProcess? _api;
    private HttpClient? _operator;
    private HttpClient? _device;

    private DurableCluster(ClusterServers servers, ITestOutputHelper output, string connectionString, string streamPrefix)
    {
        _servers = servers;
        _output = output;
        ConnectionString = connectionString;
        StreamPrefix = streamPrefix;
        _directory = Path.Combine(Path.GetTempPath(), $"oiot-cluster-{streamPrefix}");
        Directory.CreateDirectory(_directory);
    }

    public int Partitions { get; } = 8;

    /// <summary>How long after a minute's end its readings are still counted (the silos' Grains:AllowedLatenessMs).</summary>
    public TimeSpan AllowedLateness { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The connection string of this test's database.</summary>
    public string ConnectionString { get; }

    public string StreamPrefix { get; }

    public NodeProcess Api => _api ?? throw new InvalidOperationException("The Api was not started.");

    /// <summary>Client of the Api with the operator key.</summary>
    public HttpClient Operator => _operator ?? throw new InvalidOperationException("The Api was not started.");

    /// <summary>Client of the Api with the device key.</summary>
    public HttpClient Device => _device ?? throw new InvalidOperationException("The Api was not started.");

    public NodeProcess Silo(string siloId) => _silos[siloId];

    public static async Task<DurableCluster> CreateAsync(ClusterServers servers, ITestOutputHelper output, TimeSpan? allowedLateness = null)
    {
        var connectionString = await servers.Postgres.CreateDatabaseAsync();
        return new DurableCluster(servers, output, connectionString, $"c{Guid.NewGuid().ToString("N")[..10]}")
        {
            AllowedLateness = allowedLateness ?? TimeSpan.FromSeconds(10),
        };
    }

    /// <summary>Writes a line to the test output, stamped with the seconds since the cluster was created.</summary>
    public void Log(string message) => _output.WriteLine($"[{_clock.Elapsed.TotalSeconds,7:0.000}] {message}");

    private IEnumerable<string> CommonArguments() =>
    [
        "--Cluster:Mode=Durable",
        $"--Postgres:ConnectionString={ConnectionString}",
        $"--RabbitMq:Uri={_servers.RabbitMq.Uri}",
        $"--RabbitMq:StreamPrefix={StreamPrefix}",
        $"--Redis:ConnectionString={_servers.Redis.ConnectionString}",
        $"--Orleans:ClusterId={StreamPrefix}",
        $"--Orleans:ServiceId={StreamPrefix}",
        $"--Grains:AllowedLatenessMs={(long)AllowedLateness.TotalMilliseconds}",
        "--RabbitMq:MaxLengthBytes=1000000000",
        "--RabbitMq:MaxSegmentSizeBytes=50000000",
        "--RabbitMq:PublishTimeout=00:00:03",
        "--RabbitMq:ReconnectInterval=00:00:00.250",
        $"--Silo:Partitions={Partitions}",
        "--Silo:CheckpointInterval=00:00:00.500",
        // As in a large fleet: sensors store their work once it has waited a second, and partitions store only the
        // positions every sensor has covered (the kills, pauses and restarts here then cut into unstored work).
        "--Silo:SensorWriteAllUpTo=0",
        "--Silo:SensorWriteInterval=00:00:01",
        "--Silo:PartitionCheckInterval=00:00:00.250",
        "--Logging:Console:FormatterName=simple",
        "--Logging:Console:FormatterOptions:SingleLine=true",
        "--Logging:Console:FormatterOptions:TimestampFormat=HH:mm:ss.fff ",
    ];

    /// <summary>
    /// Starts a silo process named <paramref name="siloId"/> (a new one, or the same name again after it stopped): its
    /// health endpoint, silo-to-silo and gateway ports are free loopback ports.
    /// </summary>
    public NodeProcess StartSilo(string siloId)
    {
        if (_silos.TryGetValue(siloId, out var running) && !running.HasExited)
        {
            throw new InvalidOperationException($"{siloId} is running.");
        }
        var (port, siloPort, gatewayPort) = (RabbitMqServer.FreePort(), RabbitMqServer.FreePort(), RabbitMqServer.FreePort());
        var generation = _started.Count(p => p.Name.StartsWith(siloId, StringComparison.Ordinal)) + 1;
        var process = NodeProcess.Start($"{siloId}#{generation}", Dlls.Value.Silo,
            [$"--Urls=http://127.0.0.1:{port}", $"--Orleans:SiloName={siloId}", $"--Silo:Port={siloPort}", $"--Silo:GatewayPort={gatewayPort}",
                .. CommonArguments()],
            new Dictionary<string, string?> { ["DOTNET_ENVIRONMENT"] = "Production" },
            Path.Combine(_directory, $"{siloId}-{generation}.log"));
        _started.Add(process);
        _silos[siloId] = process;
        Log($"started {process.Name} (pid {process.Pid}, silo port {siloPort}, gateway {gatewayPort})");
        return process;
    }

    /// <summary>Starts the Api (Development: the dev keys; no demo fleet) and the clients that call it.</summary>
    public NodeProcess StartApi()
    {
        var port = RabbitMqServer.FreePort();
        _api = NodeProcess.Start("api", Dlls.Value.Api,
            [$"--Urls=http://127.0.0.1:{port}", "--Demo:Enabled=false", "--Mqtt:Port=0", .. CommonArguments()],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" },
            Path.Combine(_directory, "api.log"));
        _started.Add(_api);
        _operator = Client(port, OperatorKey);
        _device = Client(port, DeviceKey);
        Log($"started api (pid {_api.Pid}, port {port})");
        return _api;
    }

    /// <summary>Starts another Api node on the same cluster; returns it and the port it listens on.</summary>
    public (NodeProcess Api, int Port) StartAnotherApi(string name)
    {
        var port = RabbitMqServer.FreePort();
        var api = NodeProcess.Start(name, Dlls.Value.Api,
            [$"--Urls=http://127.0.0.1:{port}", "--Demo:Enabled=false", "--Mqtt:Port=0", .. CommonArguments()],
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" },
            Path.Combine(_directory, $"{name}.log"));
        _started.Add(api);
        Log($"started {name} (pid {api.Pid}, port {port})");
        return (api, port);
    }

    /// <summary>The MQTT TCP port of an Api process (started with Mqtt:Port 0: the port it logged).</summary>
    public static async Task<int> MqttPortOfAsync(NodeProcess api)
    {
        var line = await api.WaitForLineAsync(l => l.Contains("MQTT listening on", StringComparison.Ordinal), Scenario.StartTimeout, $"{api.Name}'s MQTT listener");
        return int.Parse(System.Text.RegularExpressions.Regex.Match(line, @"127\.0\.0\.1:(\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>The port of the first Api.</summary>
    public int ApiPort => Operator.BaseAddress!.Port;

    private static HttpClient Client(int port, string key)
    {
        var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{port}"),
            Timeout = TimeSpan.FromSeconds(30),
        };
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    /// <summary>The cluster view of GET /api/v1/cluster; throws when it is not 200.</summary>
    public async Task<ClusterView> ViewAsync()
    {
        using var response = await Operator.GetAsync("/api/v1/cluster");
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new HttpRequestException($"GET /api/v1/cluster answered {(int)response.StatusCode}: {body}");
        }
        return ClusterView.Parse(body);
    }

    /// <summary>The cluster view, or null while the Api cannot give it (starting, a server down).</summary>
    public async Task<ClusterView?> TryViewAsync()
    {
        try
        {
            return await ViewAsync();
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds for the cluster view; returns that view.</summary>
    public async Task<ClusterView> WaitForViewAsync(Func<ClusterView, bool> condition, TimeSpan timeout, string what, TimeSpan? pollInterval = null)
    {
        var clock = Stopwatch.StartNew();
        ClusterView? last = null;
        while (true)
        {
            ThrowIfANodeDied();
            if (await TryViewAsync() is { } view)
            {
                last = view;
                if (condition(view))
                {
                    return view;
                }
            }
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}\nlast view: {last?.Describe() ?? "(none)"}");
            }
            await Task.Delay(pollInterval ?? TimeSpan.FromMilliseconds(100));
        }
    }

    /// <summary>Fails when a process that should run has exited (a crash would otherwise only show as a timeout).</summary>
    private void ThrowIfANodeDied()
    {
        foreach (var node in _silos.Values.Append(_api).OfType<NodeProcess>())
        {
            if (node.HasExited && !_expectedExits.Contains(node))
            {
                throw new InvalidOperationException($"{node.Name} exited unexpectedly with code {node.ExitCode}:\n{node.Tail(40)}");
            }
        }
    }

    /// <summary>A silo that stopped by itself (say, one that learnt it was declared dead) is not a failure of the test.</summary>
    public void ExpectExit(string siloId) => _expectedExits.Add(_silos[siloId]);

    /// <summary>SIGKILL: the silo dies at once, no checkpoint, no hand-over.</summary>
    public void KillSilo(string siloId)
    {
        var silo = _silos[siloId];
        _expectedExits.Add(silo);
        silo.Kill();
        Log($"SIGKILL {silo.Name}");
    }

    /// <summary>SIGTERM and wait for the exit: a graceful stop. Returns the exit code.</summary>
    public async Task<int> TerminateSiloAsync(string siloId, TimeSpan timeout)
    {
        var silo = _silos[siloId];
        _expectedExits.Add(silo);
        Log($"SIGTERM {silo.Name}");
        await silo.SignalAsync("TERM");
        var code = await silo.WaitForExitAsync(timeout);
        Log($"{silo.Name} exited with code {code}");
        return code;
    }

    /// <summary>Waits until every partition is read by one of the active silos named <paramref name="silos"/>, each reading its share.</summary>
    public Task<ClusterView> WaitBalancedAsync(IReadOnlyCollection<string> silos, TimeSpan timeout) =>
        WaitForViewAsync(v => v.IsBalancedOver(silos, Partitions), timeout, $"every partition read, balanced over {string.Join(", ", silos)}");

    /// <summary>
    /// Waits until every partition is processed and committed: committed offset == end offset (lag 0) on every
    /// partition, in <paramref name="stablePolls"/> views in a row.
    /// </summary>
    public async Task<ClusterView> WaitProcessedAsync(TimeSpan timeout, int stablePolls = 4)
    {
        var stable = 0;
        string? previous = null;
        return await WaitForViewAsync(v =>
        {
            var done = v.PartitionMap.All(p => p.Lag == 0 && p.CommittedOffset == p.EndOffset && p.Owner is not null);
            var offsets = string.Join(",", v.PartitionMap.Select(p => p.EndOffset));
            stable = done && offsets == previous ? stable + 1 : done ? 1 : 0;
            previous = offsets;
            return stable >= stablePolls;
        }, timeout, "every partition processed (lag 0, committed == end) and stable");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _started)
        {
            await node.DisposeAsync();
        }
        _operator?.Dispose();
        _device?.Dispose();
        foreach (var node in _started)
        {
            _output.WriteLine($"--- {node.Name} (pid {node.Pid}): last lines of {node.LogPath}");
            _output.WriteLine(node.Tail(25));
        }
        if (Environment.GetEnvironmentVariable("OIOT_KEEP_CLUSTER_LOGS") == "1")
        {
            _output.WriteLine($"--- logs kept in {_directory} (OIOT_KEEP_CLUSTER_LOGS=1)");
            return;
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static (string Silo, string Api) FindDlls()
    {
        // .../tests/Integration.Tests/bin/<Configuration>/<tfm>/
        var baseDirectory = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = baseDirectory.Name;
        var configuration = baseDirectory.Parent!.Name;
        var root = baseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "OrleansIot.sln")))
        {
            root = root.Parent;
        }
        if (root is null)
        {
            throw new InvalidOperationException($"No OrleansIot.sln above {AppContext.BaseDirectory}.");
        }
        var silo = Path.Combine(root.FullName, "Silo", "bin", configuration, tfm, "Silo.dll");
        var api = Path.Combine(root.FullName, "Api", "bin", configuration, tfm, "Api.dll");
        foreach (var dll in new[] { silo, api })
        {
            if (!File.Exists(dll))
            {
                throw new InvalidOperationException($"{dll} is missing: build the solution (Integration.Tests references Silo and Api, so building it builds them).");
            }
        }
        return (silo, api);
    }
}

/// <summary>GET /api/v1/cluster as the tests read it: silos by name and address, partitions by the address of their reader's silo.</summary>
public sealed record ClusterView(IReadOnlyList<SiloView> Silos, IReadOnlyList<PartitionView> PartitionMap)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static ClusterView Parse(string json) => JsonSerializer.Deserialize<ClusterView>(json, Json)
        ?? throw new InvalidOperationException("empty cluster view");

    /// <summary>The name of the silo at <paramref name="address"/> (null when no silo has it).</summary>
    public string? NameOf(string? address) => Silos.FirstOrDefault(s => s.Id == address)?.Name;

    /// <summary>The partitions read by the active silo named <paramref name="siloName"/>.</summary>
    public IReadOnlyList<int> OwnedBy(string siloName) =>
        PartitionMap.Where(p => Silos.Any(s => s.Id == p.Owner && s.Name == siloName && s.Status == "active")).Select(p => p.Partition).ToArray();

    public PartitionView Partition(int partition) => PartitionMap.Single(p => p.Partition == partition);

    /// <summary>The name of the silo reading <paramref name="partition"/> (null when no reader answered).</summary>
    public string? OwnerName(int partition) => NameOf(Partition(partition).Owner);

    /// <summary>Every partition is read by an active silo among <paramref name="silos"/>, each reading its share (P/n rounded down or up).</summary>
    public bool IsBalancedOver(IReadOnlyCollection<string> silos, int partitions)
    {
        if (PartitionMap.Count != partitions || PartitionMap.Any(p => OwnerName(p.Partition) is not { } name || !silos.Contains(name)))
        {
            return false;
        }
        return silos.All(s => OwnedBy(s).Count is var n && n >= partitions / silos.Count && n <= (partitions + silos.Count - 1) / silos.Count);
    }

    public string Describe() => string.Join("; ", PartitionMap.Select(p =>
        $"p{p.Partition}={OwnerName(p.Partition) ?? p.Owner ?? "-"} {p.CommittedOffset}/{p.EndOffset}"))
        + " | " + string.Join(", ", Silos.Select(s => $"{s.Name}:{s.Status}[{string.Join(",", s.Partitions)}]"));
}

public sealed record SiloView(string Id, string Name, string Status, IReadOnlyList<int> Partitions);

public sealed record PartitionView(int Partition, string? Owner, long? CommittedOffset, long? EndOffset, long? Lag);

internal static class Wait
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            }
            await Task.Delay(20);
        }
    }

    public static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture) + " s";
}
