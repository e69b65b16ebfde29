using k8s;
using k8s.Models;

namespace Chart.Tests;

/// <summary>
/// The chart rendered by <c>helm template</c> with a set of values: the text, and every object read strictly into its
/// Kubernetes API type (an unknown field, a wrong type or an unknown kind fails the rendering).
/// </summary>
public sealed class Rendered
{
    public const string Release = "oiot-test";
    public const string Namespace = "iot";

    private Rendered(string text, IReadOnlyList<IKubernetesObject> objects, IReadOnlyList<string> arguments)
    {
        Text = text;
        Objects = objects;
        Arguments = arguments;
    }

    public string Text { get; }

    public IReadOnlyList<IKubernetesObject> Objects { get; }

    public IReadOnlyList<string> Arguments { get; }

    public static readonly string ProductionValuesFile = Path.Combine(Tools.ChartDirectory, "ci", "production-values.yaml");

    private static readonly Lazy<Rendered> DefaultValues = new(() => Render());
    private static readonly Lazy<Rendered> ProductionValues = new(() => Render("-f", ProductionValuesFile));
    private static readonly Lazy<Rendered> DependenciesValues = new(() => Render("--set", "dependencies.deploy=true"));

    /// <summary>The default values (rendered once for all tests).</summary>
    public static Rendered Default => DefaultValues.Value;

    /// <summary>ci/production-values.yaml: external servers, existing Secrets, an Ingress, more replicas.</summary>
    public static Rendered Production => ProductionValues.Value;

    /// <summary>The one flag that adds the single-node servers.</summary>
    public static Rendered WithDependencies => DependenciesValues.Value;

    /// <summary>The three renderings every check runs on, by name (for theories).</summary>
    public static Rendered Named(string name) => name switch
    {
        "default" => Default,
        "production" => Production,
        "dependencies" => WithDependencies,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    public static TheoryData<string> Names => new() { "default", "production", "dependencies" };

    public static Rendered Render(params string[] values)
    {
        string[] arguments = ["template", Release, Tools.ChartDirectory, "--namespace", Namespace, .. values];
        var result = Tools.Helm(arguments).Succeeded();
        var objects = KubernetesYaml.LoadAllFromString(result.Stdout, typeMap: null, strict: true)
            .Cast<IKubernetesObject>()
            .ToList();
        return new Rendered(result.Stdout, objects, arguments);
    }

    /// <summary>"Kind/name" of every object, sorted.</summary>
    public IReadOnlyList<string> KindsAndNames() =>
        Objects.Select(o => $"{o.Kind}/{NameOf(o)}").Order(StringComparer.Ordinal).ToList();

    public static string NameOf(IKubernetesObject o) => ((IMetadata<V1ObjectMeta>)o).Metadata.Name;

    public T Get<T>(string name) where T : IKubernetesObject, IMetadata<V1ObjectMeta> =>
        Objects.OfType<T>().SingleOrDefault(o => o.Metadata.Name == name)
        ?? throw new InvalidOperationException($"no {typeof(T).Name} named {name} in: {string.Join(", ", KindsAndNames())}");

    public IEnumerable<T> All<T>() => Objects.OfType<T>();

    /// <summary>The pod templates of the workloads (Deployments and StatefulSets), by workload name.</summary>
    public IEnumerable<(string Name, V1PodTemplateSpec Template)> PodTemplates() =>
        All<V1Deployment>().Select(d => (d.Metadata.Name, d.Spec.Template))
            .Concat(All<V1StatefulSet>().Select(s => (s.Metadata.Name, s.Spec.Template)));
}
