using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using StackExchange.Redis;

namespace Integration.Tests;

/// <summary>When Redis fsyncs its append-only file: once a second (a machine crash may lose the last second), or before
/// it acknowledges each write.</summary>
public enum RedisAppendFsync
{
    EverySec,
    Always,
}

/// <summary>
/// A private Redis server (the Debian package's redis-server) for a test or a test run: a free loopback port (bind
/// 127.0.0.1, protected mode, no password), a fresh temporary directory holding its config, data and log, the
/// append-only file on (fsync policy <see cref="AppendFsync"/>) and no RDB snapshots. <see cref="StopAsync"/>,
/// <see cref="KillAsync"/> and <see cref="RestartAsync"/> make outages and crashes (the restart replays the AOF);
/// on dispose the server is stopped and the directory deleted.
/// </summary>
public sealed class RedisServer : IAsyncLifetime, IAsyncDisposable
{
    private const string ServerBinary = "/usr/bin/redis-server";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(20);

    private readonly StringBuilder _output = new();
    private Process? _process;

    /// <summary>The append-only file's fsync policy; set before <see cref="InitializeAsync"/>.</summary>
    public RedisAppendFsync AppendFsync { get; init; } = RedisAppendFsync.EverySec;

    public string Directory { get; } = Path.Combine(Path.GetTempPath(), $"oiot-redis-{Guid.NewGuid().ToString("N")[..8]}");

    public int Port { get; private set; }

    /// <summary>For StackExchange.Redis (and the Orleans Redis providers): this server, reconnecting after an outage.</summary>
    public string ConnectionString => $"127.0.0.1:{Port},abortConnect=false";

    public string DataDirectory => Path.Combine(Directory, "data");

    public string LogFile => Path.Combine(Directory, "redis.log");

    private string ConfigFile => Path.Combine(Directory, "redis.conf");

    /// <summary>True while the server process runs.</summary>
    public bool IsRunning => _process is { HasExited: false };

    public async Task InitializeAsync()
    {
        if (!File.Exists(ServerBinary))
        {
            throw new InvalidOperationException($"{ServerBinary} is missing: install the Debian package redis-server (./test.sh does).");
        }
        System.IO.Directory.CreateDirectory(DataDirectory);
        Port = FreePort();
        var fsync = AppendFsync == RedisAppendFsync.Always ? "always" : "everysec";
        await File.WriteAllTextAsync(ConfigFile,
            $"""
            bind 127.0.0.1
            protected-mode yes
            port {Port.ToString(CultureInfo.InvariantCulture)}
            daemonize no
            supervised no
            dir "{DataDirectory}"
            logfile "{LogFile}"
            appendonly yes
            appendfsync {fsync}
            save ""
            """ + "\n");
        await StartServerAsync();
    }

    /// <summary>A fresh key prefix, so that tests sharing one server do not see each other's keys.</summary>
    public static string NewKeyPrefix() => $"t{Guid.NewGuid().ToString("N")[..10]}:";

    /// <summary>Connects with StackExchange.Redis (with <paramref name="allowAdmin"/>, CONFIG, INFO and the like too); the
    /// caller disposes the connection.</summary>
    public Task<ConnectionMultiplexer> ConnectAsync(bool allowAdmin = false) =>
        ConnectionMultiplexer.ConnectAsync(allowAdmin ? ConnectionString + ",allowAdmin=true" : ConnectionString);

    /// <summary>Deletes every key of every database.</summary>
    public async Task FlushAllAsync()
    {
        var reply = await CommandAsync("FLUSHALL SYNC");
        if (reply != "+OK")
        {
            throw new InvalidOperationException($"FLUSHALL answered {reply}");
        }
    }

    /// <summary>
    /// Stops the server gracefully (SHUTDOWN: the AOF is written and fsynced), as an outage that <see cref="RestartAsync"/>
    /// ends. Clients see the connection refused meanwhile.
    /// </summary>
    public async Task StopAsync()
    {
        if (_process is not { HasExited: false } process)
        {
            return;
        }
        string? reply = null;
        try
        {
            // On success the server closes the connection without a reply.
            reply = await CommandAsync("SHUTDOWN");
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
        }
        using var exited = new CancellationTokenSource(StopTimeout);
        try
        {
            await process.WaitForExitAsync(exited.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync();
            throw new InvalidOperationException($"redis-server did not stop within {StopTimeout} of SHUTDOWN (reply {reply ?? "none"}); killed.\n{Tail()}");
        }
    }

    /// <summary>Kills the server with SIGKILL, as a crash: what it has not written to the AOF is lost.</summary>
    public async Task KillAsync()
    {
        if (_process is not { HasExited: false } process)
        {
            return;
        }
        process.Kill();
        await process.WaitForExitAsync();
    }

    /// <summary>
    /// Starts the server again on the same port and directory after <see cref="StopAsync"/> or <see cref="KillAsync"/>;
    /// returns once it has replayed the AOF and answers PING.
    /// </summary>
    public async Task RestartAsync()
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("redis-server is running; stop or kill it first.");
        }
        await StartServerAsync();
    }

    private async Task StartServerAsync()
    {
        _process?.Dispose();
        var start = new ProcessStartInfo(ServerBinary)
        {
            WorkingDirectory = Directory,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(ConfigFile);
        var process = _process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        // PING answers -LOADING until the AOF is replayed, +PONG after.
        var deadline = Stopwatch.StartNew();
        string? last = null;
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited with code {process.ExitCode} at start:\n{Tail()}");
            }
            try
            {
                last = await CommandAsync("PING");
                if (last == "+PONG")
                {
                    return;
                }
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
                last = e.Message;
            }
            if (deadline.Elapsed > StartTimeout)
            {
                throw new InvalidOperationException($"redis-server did not answer PING on port {Port} within {StartTimeout} (last: {last}):\n{Tail()}");
            }
            await Task.Delay(20);
        }

        void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output) _output.AppendLine(line);
            }
        }
    }

    /// <summary>Sends one inline command on a fresh connection and returns the first line of the reply (null when the
    /// server closed the connection without one).</summary>
    private async Task<string?> CommandAsync(string command)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
        await using var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"), timeout.Token);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return await reader.ReadLineAsync(timeout.Token);
    }

    private string Tail()
    {
        string log;
        try
        {
            using var stream = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            log = string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(30));
        }
        catch (IOException)
        {
            log = "(no log)";
        }
        lock (_output) return $"--- output\n{_output}--- {LogFile}\n{log}";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async Task DisposeAsync()
    {
        if (_process is { } process)
        {
            try
            {
                await StopAsync();
            }
            catch (InvalidOperationException)
            {
                // Killed by StopAsync after its timeout.
            }
            process.Dispose();
            _process = null;
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    async ValueTask IAsyncDisposable.DisposeAsync() => await DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisServer>
{
    public const string Name = "Redis";
}
