namespace Chart.Tests;

/// <summary>Values the chart refuses, with a message that says what to change.</summary>
public sealed class ValuesTests
{
    [Theory]
    [InlineData("orleans.clusterId=prod cluster", "orleans.clusterId \"prod cluster\" must be a Kubernetes label value")]
    [InlineData("orleans.serviceId=-oiot", "orleans.serviceId \"-oiot\" must be a Kubernetes label value")]
    [InlineData("connections.existingSecret=mine,dependencies.deploy=true", "connections.existingSecret and dependencies.deploy=true are exclusive")]
    [InlineData("serviceAccount.create=false", "serviceAccount.name: the existing ServiceAccount of the silos")]
    public void Rendering_fails_with_a_message(string values, string message)
    {
        var result = Tools.Helm("template", Rendered.Release, Tools.ChartDirectory, "--set", values);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
    }
}
