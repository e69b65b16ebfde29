using System.Text.RegularExpressions;

namespace Chart.Tests;

/// <summary>
/// kubectl's own client-side reading of the rendered objects, with no cluster. `kubectl create/apply --dry-run=client`
/// ask the API server for its resource list (and for the OpenAPI schema when validating) even with --validate=false,
/// so they cannot run here. `kubectl set env --local` decodes every object into kubectl's compiled-in API types
/// (apiVersion and kind known, field types, resource quantities) without a server: workloads come back by name, every
/// other object is refused only as "not a pod", naming the Go type it was decoded into. Schema validation proper
/// (unknown fields) is done by <see cref="Rendered"/>'s strict reading into the Kubernetes client's types.
/// </summary>
public sealed partial class KubectlTests
{
    [GeneratedRegex(@"error: (\S+)\s+the object is not a pod or does not have a pod template: \*(v\d\w*)\.(\w+)\s*")]
    private static partial Regex NotAPod();

    [Theory]
    [MemberData(nameof(Rendered.Names), MemberType = typeof(Rendered))]
    public void Kubectl_decodes_every_rendered_object_offline(string values)
    {
        var rendered = Rendered.Named(values);
        var result = Tools.Kubectl(rendered.Text, "set", "env", "--local", "-f", "-", "-o", "name", "OIOT_CHART_CHECK=1");

        var workloads = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var others = NotAPod().Matches(result.Stderr).Select(m => (Name: m.Groups[1].Value, Kind: m.Groups[3].Value)).ToList();
        // Nothing else was said: no decoding error, no unknown kind.
        Assert.Equal("", NotAPod().Replace(result.Stderr, "").Trim());
        Assert.All(others, o => Assert.StartsWith(o.Kind.ToLowerInvariant() + ".", o.Name.Split('/')[0] + ".", StringComparison.Ordinal));

        var expected = rendered.Objects.Select(o => $"{o.Kind.ToLowerInvariant()}/{Rendered.NameOf(o)}").Order(StringComparer.Ordinal);
        var seen = workloads.Concat(others.Select(o => o.Name)).Select(n => Regex.Replace(n, @"^([a-z]+)(\.[a-z0-9.]+)?/", "$1/")).Order(StringComparer.Ordinal);
        Assert.Equal(expected, seen);
        Assert.Equal(rendered.PodTemplates().Count(), workloads.Count);
    }

    [Fact]
    public void Kubectl_refuses_what_it_cannot_decode()
    {
        // The check above can fail: a wrong type in a workload is reported as a decoding error.
        var broken = Rendered.Default.Text.Replace("minReadySeconds: 10", "minReadySeconds: \"ten\"", StringComparison.Ordinal);
        Assert.NotEqual(Rendered.Default.Text, broken);
        var result = Tools.Kubectl(broken, "set", "env", "--local", "-f", "-", "-o", "name", "OIOT_CHART_CHECK=1");
        Assert.Contains("unable to decode", result.Stderr, StringComparison.Ordinal);
    }
}
