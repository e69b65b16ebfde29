using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace Integration.Tests;

/// <summary>
/// A private PostgreSQL 15 server for the test run: initdb in a fresh temporary directory, postgres on a free
/// loopback port (fsync off), a fresh database per test, and on dispose a fast shutdown and the directory deleted.
/// PostgreSQL refuses to run as root, so as root the binaries run as the "postgres" user through runuser.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private const string BinDirectory = "/usr/lib/postgresql/15/bin";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"orleansiot-pg-{Guid.NewGuid():N}");
    private readonly StringBuilder _output = new();
    private readonly bool _asRoot = Environment.IsPrivilegedProcess;
    private Process? _postgres;

    public int Port { get; private set; }

    private string DataDirectory => Path.Combine(_directory, "data");

    /// <summary>Connection string of the maintenance database (no password: trust authentication on loopback).</summary>
    public string AdminConnectionString => ConnectionStringFor("postgres");

    public string ConnectionStringFor(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Database = database,
        Username = "postgres",
        IncludeErrorDetail = true,
    }.ConnectionString;

    public async Task InitializeAsync()
    {
        if (!File.Exists(Path.Combine(BinDirectory, "postgres")))
        {
            throw new InvalidOperationException($"PostgreSQL 15 is not installed ({BinDirectory}/postgres is missing); run ./test.sh as root, or apt-get install postgresql.");
        }
        Directory.CreateDirectory(_directory);
        if (_asRoot)
        {
            await RunAsync("chown", ["postgres:postgres", _directory], asPostgres: false);
        }
        await RunAsync(Bin("initdb"), ["-D", DataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"]);

        Port = FreePort();
        await StartServerAsync();
    }

    /// <summary>
    /// Stops the server with a fast shutdown (open sessions are ended, nothing committed is lost), as an outage that
    /// <see cref="RestartAsync"/> ends. Clients see the connection refused meanwhile.
    /// </summary>
    public async Task StopAsync()
    {
        if (_postgres is not { HasExited: false } postgres)
        {
            return;
        }
        await RunAsync(Bin("pg_ctl"), ["stop", "-D", DataDirectory, "-m", "fast", "-w", "-t", "30"]);
        await postgres.WaitForExitAsync();
        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>Starts the server again on the same port and data directory after <see cref="StopAsync"/>; returns once it accepts connections.</summary>
    public async Task RestartAsync()
    {
        if (_postgres is { HasExited: false })
        {
            throw new InvalidOperationException("PostgreSQL is running; stop it first.");
        }
        _postgres?.Dispose();
        _postgres = null;
        await StartServerAsync();
        // Connections pooled by this process before the restart are dead.
        NpgsqlConnection.ClearAllPools();
    }

    private async Task StartServerAsync()
    {
        var postgres = _postgres = Start(Bin("postgres"), ["-D", DataDirectory, "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={_directory}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300"]);

        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            if (postgres.HasExited)
            {
                throw new InvalidOperationException($"postgres exited with code {postgres.ExitCode} at start:\n{Output()}");
            }
            try
            {
                await using var connection = new NpgsqlConnection(AdminConnectionString + ";Pooling=false;Timeout=2");
                await connection.OpenAsync();
                return;
            }
            catch (Exception e) when (e is NpgsqlException or SocketException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>Creates an empty database for one test and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"t_{Guid.NewGuid():N}";
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionStringFor(name);
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_postgres is { HasExited: false })
        {
            try
            {
                await RunAsync(Bin("pg_ctl"), ["stop", "-D", DataDirectory, "-m", "fast", "-w", "-t", "20"]);
            }
            catch (InvalidOperationException)
            {
            }
            using var exited = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _postgres.WaitForExitAsync(exited.Token);
            }
            catch (OperationCanceledException)
            {
                _postgres.Kill(entireProcessTree: true);
            }
        }
        _postgres?.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string Bin(string name) => Path.Combine(BinDirectory, name);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private string Output()
    {
        lock (_output) return _output.ToString();
    }

    /// <summary>Starts a program; a PostgreSQL binary runs as the postgres user when this process is root.</summary>
    private Process Start(string file, IReadOnlyList<string> arguments, bool asPostgres = true)
    {
        var viaRunuser = asPostgres && _asRoot;
        var info = new ProcessStartInfo
        {
            FileName = viaRunuser ? "runuser" : file,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,
        };
        if (viaRunuser)
        {
            foreach (var a in (string[])["-u", "postgres", "--", file])
            {
                info.ArgumentList.Add(a);
            }
        }
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;

        void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output) _output.AppendLine(line);
            }
        }
    }

    private async Task RunAsync(string file, IReadOnlyList<string> arguments, bool asPostgres = true)
    {
        using var process = Start(file, arguments, asPostgres);
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} exited with code {process.ExitCode}:\n{Output()}");
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL";
}
