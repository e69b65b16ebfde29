namespace Chart.Tests;

/// <summary>
/// What can be checked of the images without a container engine: the Release publish that Api/Dockerfile and
/// Silo/Dockerfile run succeeds, and the Dockerfiles expose the ports the chart uses. Build output goes to artifacts/
/// (git-ignored), so a second run is incremental: about 50 s the first time on two cores, about 10 s after.
/// </summary>
public sealed class PublishTests
{
    private static readonly string Artifacts = Path.Combine(Tools.RepositoryRoot, "artifacts", "chart-tests");

    [Fact]
    public void The_silo_and_the_api_publish_in_release()
    {
        foreach (var (project, entry, asset) in new[] { ("Silo", "Silo.dll", "appsettings.json"), ("Api", "Api.dll", Path.Combine("wwwroot", "index.html")) })
        {
            var output = Path.Combine(Artifacts, "publish", project.ToLowerInvariant());
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
            Tools.DotnetNiced(TimeSpan.FromMinutes(5), "publish", Path.Combine(Tools.RepositoryRoot, project, $"{project}.csproj"),
                "-c", "Release", "-o", output, "-p:UseAppHost=false", "--artifacts-path", Path.Combine(Artifacts, "build"), "--nologo", "-v", "q").Succeeded();
            Assert.True(File.Exists(Path.Combine(output, entry)), $"{project}: no {entry} in {output}");
            Assert.True(File.Exists(Path.Combine(output, asset)), $"{project}: no {asset} in {output}");
            Assert.True(File.Exists(Path.Combine(output, $"{project}.runtimeconfig.json")));
        }
    }

    [Theory]
    [InlineData("Silo", "Silo.dll", "8080 11111 30000")]
    [InlineData("Api", "Api.dll", "8080 1883")]
    public void The_dockerfiles_build_with_dotnet_publish_and_run_as_the_non_root_user_on_the_charts_ports(string project, string entry, string ports)
    {
        var lines = File.ReadAllLines(Path.Combine(Tools.RepositoryRoot, project, "Dockerfile"));
        Assert.Contains(lines, l => l.StartsWith("FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"RUN dotnet publish {project}/{project}.csproj -c Release", StringComparison.Ordinal));
        Assert.Equal("FROM mcr.microsoft.com/dotnet/aspnet:10.0", lines.Last(l => l.StartsWith("FROM ", StringComparison.Ordinal)));
        Assert.Contains("USER $APP_UID", lines);
        Assert.Contains($"EXPOSE {ports}", lines);
        Assert.Contains(lines, l => l.StartsWith("ENV Urls=http://0.0.0.0:8080", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("HEALTHCHECK ", StringComparison.Ordinal));
        Assert.Contains($"ENTRYPOINT [\"dotnet\", \"{entry}\"]", lines);
    }
}
