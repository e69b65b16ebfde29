namespace Runtime.Hosting;

/// <summary>
/// The pod a durable silo runs in, from the environment Kubernetes and the chart give it: the API server's address
/// (<c>KUBERNETES_SERVICE_HOST</c>, set in every pod) and the pod's own fields from the downward API (<c>POD_NAME</c>,
/// <c>POD_NAMESPACE</c>, <c>POD_IP</c>). Outside a pod (a process started by hand or by scripts/cluster.sh) there is none,
/// and the silo starts exactly as it always did; in one, it adds Orleans' Kubernetes hosting (silo name = pod name, the
/// pod's address advertised, a deleted silo pod declared dead at once) on top of Redis clustering. Deleting the pods of
/// dead silos stays off (Kubernetes replaces failed pods itself), so the chart's Role grants no delete.
/// </summary>
public sealed record KubernetesPod(string Name, string? Namespace, string? IP)
{
    /// <summary>The pod of this process, or null outside Kubernetes.</summary>
    public static KubernetesPod? Current => From(Environment.GetEnvironmentVariable);

    /// <summary>The pod the variables describe: both the API server's address and the pod's name must be there.</summary>
    public static KubernetesPod? From(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        return variable("KUBERNETES_SERVICE_HOST") is { Length: > 0 } && variable("POD_NAME") is { Length: > 0 } name
            ? new KubernetesPod(name, variable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : null, variable("POD_IP") is { Length: > 0 } ip ? ip : null)
            : null;
    }
}
