using k8s.Models;

namespace Chart.Tests;

/// <summary>helm lint, and which objects the chart renders with each set of values.</summary>
public sealed class ObjectTests
{
    [Theory]
    [InlineData()]
    [InlineData("-f", "ci/production-values.yaml")]
    [InlineData("--set", "dependencies.deploy=true")]
    public void Helm_lint_passes_strictly(params string[] values)
    {
        var result = Tools.Helm(["lint", Tools.ChartDirectory, "--strict", .. values.Select(v => v.StartsWith("ci/", StringComparison.Ordinal) ? Path.Combine(Tools.ChartDirectory, v) : v)]).Succeeded();
        Assert.Contains("1 chart(s) linted, 0 chart(s) failed", result.Stdout);
        Assert.DoesNotContain("[WARNING]", result.Stdout);
        Assert.DoesNotContain("[ERROR]", result.Stdout);
    }

    [Fact]
    public void Default_values_render_silos_api_rbac_scaling_and_the_generated_api_keys()
    {
        const string n = "oiot-test-orleansiot";
        Assert.Equal(
            [
                $"Deployment/{n}-api", $"Deployment/{n}-silo",
                $"HorizontalPodAutoscaler/{n}-api", $"HorizontalPodAutoscaler/{n}-silo",
                $"PodDisruptionBudget/{n}-api", $"PodDisruptionBudget/{n}-silo",
                $"Role/{n}-silo", $"RoleBinding/{n}-silo",
                $"Secret/{n}-api-keys",
                $"Service/{n}-api",
                $"ServiceAccount/{n}-silo",
            ],
            Rendered.Default.KindsAndNames());
        // No Secret of connection strings: the pods read "<fullname>-connections", which the operator creates.
        Assert.All(Rendered.Default.PodTemplates(), t => Assert.Contains(EnvOf(t.Template, "Redis__ConnectionString"),
            e => e.ValueFrom.SecretKeyRef.Name == $"{n}-connections"));
    }

    [Fact]
    public void Production_values_add_the_ingress_and_use_the_operators_secrets()
    {
        Assert.Equal(
            [
                "Deployment/oiot-api", "Deployment/oiot-silo",
                "HorizontalPodAutoscaler/oiot-api", "HorizontalPodAutoscaler/oiot-silo",
                "Ingress/oiot-api",
                "PodDisruptionBudget/oiot-api", "PodDisruptionBudget/oiot-silo",
                "Role/oiot-silo", "RoleBinding/oiot-silo",
                "Service/oiot-api",
                "ServiceAccount/oiot-silo",
            ],
            Rendered.Production.KindsAndNames());
        var refs = Rendered.Production.PodTemplates().SelectMany(t => t.Template.Spec.Containers).SelectMany(c => c.Env)
            .Where(e => e.ValueFrom?.SecretKeyRef is not null).Select(e => e.ValueFrom.SecretKeyRef.Name).ToHashSet();
        Assert.Equal(["oiot-api-keys", "oiot-connections"], refs.Order(StringComparer.Ordinal));

        var ingress = Rendered.Production.Get<V1Ingress>("oiot-api");
        Assert.Equal("nginx", ingress.Spec.IngressClassName);
        var rule = Assert.Single(ingress.Spec.Rules);
        Assert.Equal("iot.example.com", rule.Host);
        var path = Assert.Single(rule.Http.Paths);
        Assert.Equal(("/", "Prefix", "oiot-api", "http"), (path.Path, path.PathType, path.Backend.Service.Name, path.Backend.Service.Port.Name));
        Assert.Equal(["iot.example.com"], Assert.Single(ingress.Spec.Tls).Hosts);
        Assert.Equal("cookie", ingress.Metadata.Annotations["nginx.ingress.kubernetes.io/affinity"]);
    }

    [Fact]
    public void The_dependencies_flag_adds_three_single_node_statefulsets_with_volumes()
    {
        const string n = "oiot-test-orleansiot";
        var rendered = Rendered.WithDependencies;
        Assert.Equal(
            [
                $"ConfigMap/{n}-rabbitmq",
                $"Deployment/{n}-api", $"Deployment/{n}-silo",
                $"HorizontalPodAutoscaler/{n}-api", $"HorizontalPodAutoscaler/{n}-silo",
                $"PodDisruptionBudget/{n}-api", $"PodDisruptionBudget/{n}-silo",
                $"Role/{n}-silo", $"RoleBinding/{n}-silo",
                $"Secret/{n}-api-keys", $"Secret/{n}-connections",
                $"Service/{n}-api", $"Service/{n}-postgres", $"Service/{n}-rabbitmq", $"Service/{n}-redis",
                $"ServiceAccount/{n}-silo",
                $"StatefulSet/{n}-postgres", $"StatefulSet/{n}-rabbitmq", $"StatefulSet/{n}-redis",
            ],
            rendered.KindsAndNames());
        foreach (var (server, port, mountPath) in new[] { ("redis", 6379, "/data"), ("postgres", 5432, "/var/lib/postgresql/data"), ("rabbitmq", 5672, "/var/lib/rabbitmq") })
        {
            var set = rendered.Get<V1StatefulSet>($"{n}-{server}");
            Assert.Equal(1, set.Spec.Replicas);
            Assert.Equal($"{n}-{server}", set.Spec.ServiceName);
            var claim = Assert.Single(set.Spec.VolumeClaimTemplates);
            Assert.Equal("data", claim.Metadata.Name);
            Assert.Equal(["ReadWriteOnce"], claim.Spec.AccessModes);
            Assert.True(claim.Spec.Resources.Requests["storage"].ToDecimal() > 0);
            var container = Assert.Single(set.Spec.Template.Spec.Containers);
            Assert.Contains(container.VolumeMounts, m => m.Name == "data" && m.MountPath == mountPath);
            Assert.Equal(port, Assert.Single(container.Ports).ContainerPort);
            Assert.NotNull(container.ReadinessProbe);
            Assert.NotNull(container.Resources.Limits);

            var service = rendered.Get<V1Service>($"{n}-{server}");
            Assert.Equal("None", service.Spec.ClusterIP);
            Assert.Equal(set.Spec.Template.Metadata.Labels, service.Spec.Selector);
        }
        // The passwords and connection strings live in a Secret that outlives an uninstall, as the volumes do.
        var secret = rendered.Get<V1Secret>($"{n}-connections");
        Assert.Equal("keep", secret.Metadata.Annotations["helm.sh/resource-policy"]);
        Assert.Equal(["postgres", "postgres-password", "rabbitmq", "rabbitmq-password", "redis", "redis-password"], secret.Data.Keys.Order(StringComparer.Ordinal));
        Assert.StartsWith($"{n}-redis:6379,password=", Text(secret, "redis"));
        Assert.StartsWith($"Host={n}-postgres;Port=5432;Database=orleansiot;Username=postgres;Password=", Text(secret, "postgres"));
        Assert.StartsWith("amqp://orleansiot:", Text(secret, "rabbitmq"));
        Assert.EndsWith($"@{n}-rabbitmq:5672/", Text(secret, "rabbitmq"));

        // The silos and Api nodes wait for the servers and size the streams for the bundled broker's volume.
        foreach (var (_, template) in rendered.PodTemplates().Where(t => t.Name.EndsWith("-silo", StringComparison.Ordinal) || t.Name.EndsWith("-api", StringComparison.Ordinal)))
        {
            Assert.Equal("wait-for-servers", Assert.Single(template.Spec.InitContainers).Name);
            Assert.Equal("1000000000", Assert.Single(EnvOf(template, "RabbitMq__MaxLengthBytes")).Value);
        }
    }

    internal static string Text(V1Secret secret, string key) => System.Text.Encoding.UTF8.GetString(secret.Data[key]);

    internal static IEnumerable<V1EnvVar> EnvOf(V1PodTemplateSpec template, string name) =>
        template.Spec.Containers.SelectMany(c => c.Env ?? []).Where(e => e.Name == name);
}
