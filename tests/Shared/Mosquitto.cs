using System.Diagnostics;

namespace Tests.Shared;

/// <summary>The mosquitto command-line clients (Debian's mosquitto-clients), real MQTT peers independent of MQTTnet.</summary>
public static class Mosquitto
{
    public sealed record Result(int ExitCode, string Output);

    /// <summary>Runs mosquitto_pub (or mosquitto_sub) to completion, at most <paramref name="timeout"/>; -d output included.</summary>
    public static async Task<Result> RunAsync(string tool, IEnumerable<string> arguments, string? stdin = null, TimeSpan? timeout = null)
    {
        using var process = Start(tool, arguments, stdin is not null);
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        var output = ReadAllAsync(process);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return new Result(-1, await output);
        }
        return new Result(process.ExitCode, await output);
    }

    /// <summary>Starts a client that runs until killed; its output is collected in <see cref="Running.Output"/>.</summary>
    public static Running StartRunning(string tool, IEnumerable<string> arguments) =>
        // Line-buffered output (coreutils' stdbuf): a client that keeps running would hold its -d lines in its buffer.
        new(Start("stdbuf", ["-oL", "-eL", tool, .. arguments], redirectInput: false));

    private static Process Start(string tool, IEnumerable<string> arguments, bool redirectInput)
    {
        var info = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectInput,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        return Process.Start(info) ?? throw new InvalidOperationException($"{tool} did not start");
    }

    private static async Task<string> ReadAllAsync(Process process)
    {
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        return await stdout + await stderr;
    }

    public sealed class Running : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly System.Text.StringBuilder _output = new();

        public Running(Process process)
        {
            _process = process;
            _process.OutputDataReceived += (_, e) => Append(e.Data);
            _process.ErrorDataReceived += (_, e) => Append(e.Data);
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(line);
                }
            }
        }

        /// <summary>Ends the client (SIGKILL: no DISCONNECT, as a device losing power).</summary>
        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            await _process.WaitForExitAsync();
            _process.Dispose();
        }
    }
}
