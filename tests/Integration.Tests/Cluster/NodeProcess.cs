using System.Diagnostics;

namespace Integration.Tests.Cluster;

/// <summary>
/// A silo or Api process started with <c>dotnet &lt;dll&gt;</c>: its stdout and stderr go, line by line, to a file and
/// into memory (tests wait for a line), and it can be sent SIGTERM, SIGSTOP, SIGCONT (through <c>kill</c>) or SIGKILL.
/// </summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];

    /// <summary>When each line of <see cref="_lines"/> arrived (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    private readonly List<long> _arrivals = [];
    private readonly StreamWriter _file;

    private NodeProcess(string name, Process process, string logPath)
    {
        Name = name;
        _process = process;
        LogPath = logPath;
        _file = new StreamWriter(logPath) { AutoFlush = true };
    }

    public string Name { get; }

    public string LogPath { get; }

    public int Pid { get; private set; }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Starts <c>dotnet <paramref name="dll"/></c> in the dll's folder.</summary>
    public static NodeProcess Start(string name, string dll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?> environment, string logPath)
    {
        var info = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        // Whatever the test host runs with must not leak into the nodes' configuration.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("ASPNETCORE_", StringComparison.Ordinal) || k.StartsWith("DOTNET_ENVIRONMENT", StringComparison.Ordinal)).ToList())
        {
            info.Environment.Remove(key);
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        var process = new Process { StartInfo = info };
        var node = new NodeProcess(name, process, logPath);
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data is null ? null : "stderr: " + e.Data);
        process.Start();
        node.Pid = process.Id;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>The dotnet host that runs the tests (the SDK sets DOTNET_HOST_PATH), else "dotnet" from PATH.</summary>
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_lines)
        {
            _lines.Add(line);
            _arrivals.Add(Stopwatch.GetTimestamp());
            try
            {
                _file.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>How many lines were captured so far: a mark for <see cref="WaitForLineAsync"/>.</summary>
    public int LineCount
    {
        get { lock (_lines) return _lines.Count; }
    }

    public IReadOnlyList<string> Lines(int from = 0)
    {
        lock (_lines) return _lines.Skip(from).ToArray();
    }

    public bool HasLine(Func<string, bool> predicate, int from = 0) => Lines(from).Any(predicate);

    /// <summary>When the first line matching <paramref name="predicate"/> arrived (<see cref="Stopwatch.GetTimestamp"/>), or null.</summary>
    public long? ArrivalOf(Func<string, bool> predicate, int from = 0)
    {
        lock (_lines)
        {
            for (var i = from; i < _lines.Count; i++)
            {
                if (predicate(_lines[i]))
                {
                    return _arrivals[i];
                }
            }

            return null;
        }
    }

    /// <summary>Waits for a line (from line <paramref name="from"/> on) that matches; returns it. Fails when the process exits first.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan timeout, string what, int from = 0)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (Lines(from).FirstOrDefault(predicate) is { } line)
            {
                return line;
            }
            if (HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with code {ExitCode} before: {what}\n{Tail(30)}");
            }
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for {Name} to log: {what}\n{Tail(30)}");
            }
            await Task.Delay(25);
        }
    }

    public string Tail(int lines) => string.Join('\n', Lines().TakeLast(lines).Select(l => $"  {Name}| {l}"));

    /// <summary>Sends a signal with <c>kill -SIG pid</c> (TERM, STOP, CONT, ...).</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            UseShellExecute = false,
            RedirectStandardError = true,
        })!;
        var error = await kill.StandardError.ReadToEndAsync();
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {Pid} ({Name}) failed: {error}");
        }
    }

    /// <summary>SIGKILL: the process ends at once, as a crash.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
    }

    /// <summary>Waits for the process to end and returns its exit code; kills it and fails after <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"{Name} did not exit within {timeout.TotalSeconds:0.#} s\n{Tail(30)}");
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            Kill();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
        }
        _process.Dispose();
        lock (_lines)
        {
            _file.Dispose();
        }
    }
}
