using System.Text;

namespace Integration.Tests.Cluster;

/// <summary>A mosquitto client (Debian's mosquitto-clients) run until it exits or is disposed; its output collected.</summary>
public sealed class MosquittoClient : IAsyncDisposable
{
    private readonly System.Diagnostics.Process _process;
    private readonly StringBuilder _output = new();

    private MosquittoClient(System.Diagnostics.Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The MQTT TCP port of an Api process (Mqtt:Port 0: the port it logged).</summary>
    public static async Task<int> PortOfAsync(NodeProcess api)
    {
        var line = await api.WaitForLineAsync(l => l.Contains("MQTT listening on", StringComparison.Ordinal), Scenario.StartTimeout, $"{api.Name}'s MQTT listener");
        return int.Parse(System.Text.RegularExpressions.Regex.Match(line, @"127\.0\.0\.1:(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    public static MosquittoClient Start(string tool, IEnumerable<string> arguments)
    {
        // Line-buffered output (coreutils' stdbuf): mosquitto_pub would hold its -d lines until it exits.
        var info = new System.Diagnostics.ProcessStartInfo("stdbuf") { RedirectStandardOutput = true, RedirectStandardError = true, ArgumentList = { "-oL", "-eL", tool } };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        return new MosquittoClient(System.Diagnostics.Process.Start(info)!);
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

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
