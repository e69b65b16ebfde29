using Runtime.Hosting;

namespace Runtime.Tests;

/// <summary>
/// A durable silo adds Orleans' Kubernetes hosting only in a pod (issue 11 item 6): outside one it starts exactly as
/// before, because Kubernetes hosting needs the in-cluster API and refuses to start without it.
/// </summary>
public sealed class KubernetesPodTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Outside_a_pod_there_is_none()
    {
        Assert.Null(KubernetesPod.From(Env()));
        // A shell on a machine that talks to a cluster may have the API address, but no pod name.
        Assert.Null(KubernetesPod.From(Env(("KUBERNETES_SERVICE_HOST", "10.0.0.1"))));
        // The chart's downward-API variables without the API server: not a pod either.
        Assert.Null(KubernetesPod.From(Env(("POD_NAME", "oiot-silo-0"), ("POD_IP", "10.1.2.3"))));
        Assert.Null(KubernetesPod.From(Env(("KUBERNETES_SERVICE_HOST", ""), ("POD_NAME", "oiot-silo-0"))));
    }

    [Fact]
    public void In_a_pod_the_downward_api_fields_describe_it()
    {
        Assert.Equal(new KubernetesPod("oiot-silo-0", "iot", "10.1.2.3"), KubernetesPod.From(Env(
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"), ("POD_NAME", "oiot-silo-0"), ("POD_NAMESPACE", "iot"), ("POD_IP", "10.1.2.3"))));
        Assert.Equal(new KubernetesPod("oiot-silo-0", null, null), KubernetesPod.From(Env(
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"), ("POD_NAME", "oiot-silo-0"))));
    }
}
