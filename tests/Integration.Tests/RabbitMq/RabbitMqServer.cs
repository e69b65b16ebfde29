using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using RabbitMQ.Client;
using Runtime.RabbitMq;

namespace Integration.Tests.RabbitMq;

[CollectionDefinition(Name)]
public sealed class RabbitMqCollection : ICollectionFixture<RabbitMqServer>
{
    public const string Name = "RabbitMQ";
}

/// <summary>
/// A private RabbitMQ node for the test run, started from the Debian package's scripts: its own node name, AMQP and
/// distribution ports (loopback only), data, logs, config, empty plugin list and Erlang cookie in a temporary
/// directory. Tests share it (one node per run) and isolate themselves with a fresh stream prefix in the vhost
/// <see cref="VirtualHost"/>. Stopped and deleted on dispose, with the epmd it started when none ran before.
/// </summary>
public sealed class RabbitMqServer : IAsyncLifetime
{
    private const string ServerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    private const string CtlScript = "/usr/lib/rabbitmq/bin/rabbitmqctl";

    private Process? _process;
    private StreamWriter? _console;
    private bool _epmdWasRunning;

    public string NodeName { get; } = $"oiot-test-{Guid.NewGuid().ToString("N")[..8]}@localhost";

    public string Directory { get; } = Path.Combine(Path.GetTempPath(), $"oiot-rmq-{Guid.NewGuid().ToString("N")[..8]}");

    public int Port { get; private set; }

    public string VirtualHost => "oiot-test";

    public string Uri => $"amqp://guest:guest@127.0.0.1:{Port}/{VirtualHost}";

    /// <summary>Options for a fresh, isolated set of streams and exchange.</summary>
    public RabbitMqOptions NewOptions() => new()
    {
        Uri = Uri,
        StreamPrefix = $"t{Guid.NewGuid().ToString("N")[..10]}",
        MaxAge = TimeSpan.FromHours(1),
        MaxLengthBytes = 1_000_000_000,
        MaxSegmentSizeBytes = 50_000_000,
        PublishTimeout = TimeSpan.FromSeconds(3),
        ReconnectInterval = TimeSpan.FromMilliseconds(250),
    };

    public async Task InitializeAsync()
    {
        if (!File.Exists(ServerScript) || !File.Exists(CtlScript))
        {
            throw new InvalidOperationException($"{ServerScript} is missing: install the Debian package rabbitmq-server (./test.sh does).");
        }
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "mnesia"));
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "log"));
        Port = FreePort();
        var distPort = FreePort(Port);
        await File.WriteAllTextAsync(Path.Combine(Directory, "rabbitmq.conf"),
            $"listeners.tcp.default = 127.0.0.1:{Port}\n" +
            "disk_free_limit.absolute = 10MB\n" +
            "log.console = false\n" +
            "log.file.level = info\n");
        await File.WriteAllTextAsync(Path.Combine(Directory, "enabled_plugins"), "[].\n");
        await File.WriteAllTextAsync(Path.Combine(Directory, "rabbitmq-env.conf"), "");
        _epmdWasRunning = (await RunAsync("epmd", ["-names"], TimeSpan.FromSeconds(10))).ExitCode == 0;

        var start = new ProcessStartInfo(ServerScript)
        {
            WorkingDirectory = Directory,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        SetEnvironment(start);
        start.Environment["RABBITMQ_NODE_PORT"] = Port.ToString();
        start.Environment["RABBITMQ_DIST_PORT"] = distPort.ToString();
        start.Environment["RABBITMQ_MNESIA_BASE"] = Path.Combine(Directory, "mnesia");
        start.Environment["RABBITMQ_LOG_BASE"] = Path.Combine(Directory, "log");
        start.Environment["RABBITMQ_CONFIG_FILE"] = Path.Combine(Directory, "rabbitmq.conf");
        start.Environment["RABBITMQ_ADVANCED_CONFIG_FILE"] = Path.Combine(Directory, "advanced.config");
        start.Environment["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(Directory, "enabled_plugins");
        start.Environment["RABBITMQ_PID_FILE"] = Path.Combine(Directory, "rabbitmq.pid");
        start.Environment["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}";
        var console = _console = new StreamWriter(Path.Combine(Directory, "console.log")) { AutoFlush = true };
        _process = new Process { StartInfo = start };
        _process.OutputDataReceived += (_, e) => Write(console, e.Data);
        _process.ErrorDataReceived += (_, e) => Write(console, e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        await WaitForAmqpAsync("/", TimeSpan.FromSeconds(60));
        await CtlAsync("add_vhost", VirtualHost);
        await CtlAsync("set_permissions", "-p", VirtualHost, "guest", ".*", ".*", ".*");
    }

    private static void Write(StreamWriter writer, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (writer)
        {
            try
            {
                writer.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>Stops the RabbitMQ application on the node (the Erlang node stays up), closing every client connection.</summary>
    public Task StopAppAsync() => CtlAsync("stop_app");

    /// <summary>Starts the application again and waits until the test vhost accepts AMQP connections.</summary>
    public async Task StartAppAsync()
    {
        await CtlAsync("start_app");
        await WaitForAmqpAsync(VirtualHost, TimeSpan.FromSeconds(60));
    }

    /// <summary>Runs rabbitmqctl against this node and returns its standard output; throws when it fails.</summary>
    public async Task<string> CtlAsync(params string[] arguments)
    {
        var result = await RunAsync(CtlScript, ["-n", NodeName, .. arguments], TimeSpan.FromSeconds(60), SetEnvironment);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)} failed ({result.ExitCode}): {result.Output}");
        }
        return result.Output;
    }

    private void SetEnvironment(ProcessStartInfo start)
    {
        // HOME holds the Erlang cookie that the node creates and rabbitmqctl reads.
        start.Environment["HOME"] = Directory;
        start.Environment["RABBITMQ_NODENAME"] = NodeName;
        start.Environment["RABBITMQ_CONF_ENV_FILE"] = Path.Combine(Directory, "rabbitmq-env.conf");
        start.Environment["ERL_EPMD_ADDRESS"] = "127.0.0.1";
        // An Erlang VM that fails (a node that cannot start) writes erl_crash.dump into its working directory by default.
        start.Environment["ERL_CRASH_DUMP"] = CrashDump;
    }

    private string CrashDump => Path.Combine(Directory, "erl_crash.dump");

    private async Task WaitForAmqpAsync(string vhost, TimeSpan timeout)
    {
        var factory = new ConnectionFactory
        {
            HostName = "127.0.0.1",
            Port = Port,
            VirtualHost = vhost,
            AutomaticRecoveryEnabled = false,
            RequestedConnectionTimeout = TimeSpan.FromSeconds(2),
        };
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (_process is { HasExited: true })
            {
                throw new InvalidOperationException($"rabbitmq-server exited with {_process.ExitCode} while starting:\n{Tail()}");
            }
            try
            {
                await using var connection = await factory.CreateConnectionAsync();
                await connection.CloseAsync();
                return;
            }
            catch (Exception e) when (deadline.Elapsed < timeout)
            {
                _ = e;
                await Task.Delay(200);
            }
            catch (Exception e)
            {
                throw new InvalidOperationException($"RabbitMQ node {NodeName} did not accept AMQP on port {Port} within {timeout}: {e.Message}\n{Tail()}", e);
            }
        }
    }

    private string Tail()
    {
        var text = "";
        foreach (var file in new[] { Path.Combine(Directory, "console.log"), Path.Combine(Directory, "log", $"{NodeName}.log") })
        {
            try
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var reader = new StreamReader(stream);
                var lines = reader.ReadToEnd().Split('\n');
                text += $"--- {file}\n{string.Join('\n', lines.TakeLast(40))}\n";
            }
            catch (IOException)
            {
            }
        }
        try
        {
            // Its third line, "Slogan: ...", says why the VM stopped.
            text += $"--- {CrashDump}\n{string.Join('\n', File.ReadLines(CrashDump).Take(3))}\n";
        }
        catch (IOException)
        {
        }
        return text;
    }

    public async Task DisposeAsync()
    {
        if (_process is { } process)
        {
            if (!process.HasExited)
            {
                try
                {
                    await CtlAsync("stop");
                }
                catch (InvalidOperationException)
                {
                }
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                try
                {
                    await process.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
            }
            process.Dispose();
        }
        if (_console is { } console)
        {
            lock (console)
            {
                console.Dispose();
            }
        }
        if (!_epmdWasRunning)
        {
            // Refused by epmd while other nodes are registered, so it only ends an epmd nobody else uses.
            await RunAsync("epmd", ["-kill"], TimeSpan.FromSeconds(10));
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A free loopback port, outside the range rabbitmqctl uses for its own distribution port (35672-35682).</summary>
    public static int FreePort(int except = 0)
    {
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            if (port != except && port is not (>= 35672 and <= 35682))
            {
                return port;
            }
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] arguments, TimeSpan timeout,
        Action<ProcessStartInfo>? configure = null)
    {
        var start = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        configure?.Invoke(start);
        start.Environment["ERL_EPMD_ADDRESS"] = "127.0.0.1";
        try
        {
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                return (-1, $"timed out after {timeout}");
            }
            return (process.ExitCode, await output + await error);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }
}
