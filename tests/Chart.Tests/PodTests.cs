using k8s.Models;

namespace Chart.Tests;

/// <summary>The silo and Api pods: ports, probes, the pod's own fields, the configuration scripts/cluster.sh gives each process.</summary>
public sealed class PodTests
{
    [Theory]
    [MemberData(nameof(Rendered.Names), MemberType = typeof(Rendered))]
    public void A_silo_gets_its_pod_fields_from_the_downward_api_and_listens_on_the_pod(string values)
    {
        var rendered = Rendered.Named(values);
        var (clusterId, serviceId) = values == "production" ? ("oiot-prod", "oiot") : ("oiot", "oiot");
        var silo = Silo(rendered);
        var container = Assert.Single(silo.Spec.Template.Spec.Containers);

        Assert.Equal([("http", 8080), ("silo", 11111), ("gateway", 30000)], container.Ports.Select(p => (p.Name, p.ContainerPort)));
        Assert.All(container.Ports, p => Assert.Equal("TCP", p.Protocol));

        var env = container.Env.ToDictionary(e => e.Name);
        Assert.Equal("metadata.name", env["POD_NAME"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("metadata.namespace", env["POD_NAMESPACE"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("status.podIP", env["POD_IP"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal(clusterId, env["ORLEANS_CLUSTER_ID"].Value);
        Assert.Equal(serviceId, env["ORLEANS_SERVICE_ID"].Value);
        // The same ids for the application's own configuration (Redis clustering, the Api nodes' client).
        Assert.Equal(clusterId, env["Orleans__ClusterId"].Value);
        Assert.Equal(serviceId, env["Orleans__ServiceId"].Value);
        // Kubernetes expands $(VAR) only from variables defined before it.
        var names = container.Env.Select(e => e.Name).ToList();
        Assert.True(names.IndexOf("POD_IP") < names.IndexOf("Silo__AdvertisedAddress"));
        Assert.True(names.IndexOf("POD_NAME") < names.IndexOf("Orleans__SiloName"));
        Assert.Equal("$(POD_IP)", env["Silo__AdvertisedAddress"].Value);
        Assert.Equal("$(POD_NAME)", env["Orleans__SiloName"].Value);
        Assert.Equal("http://0.0.0.0:8080", env["Urls"].Value);
        Assert.Equal("11111", env["Silo__Port"].Value);
        Assert.Equal("30000", env["Silo__GatewayPort"].Value);
        Assert.Equal("Durable", env["Cluster__Mode"].Value);
        Assert.Equal(values == "production" ? "16" : "8", env["Silo__Partitions"].Value);

        // Orleans' Kubernetes hosting selects the cluster's pods by these labels.
        var labels = silo.Spec.Template.Metadata.Labels;
        Assert.Equal(serviceId, labels["orleans/serviceId"]);
        Assert.Equal(clusterId, labels["orleans/clusterId"]);
        // ...which stay out of the Deployment's selector (immutable), so the ids can change on an upgrade.
        Assert.DoesNotContain("orleans/serviceId", silo.Spec.Selector.MatchLabels.Keys);
        Assert.All(silo.Spec.Selector.MatchLabels, l => Assert.Equal(l.Value, labels[l.Key]));

        // The silo's ServiceAccount is the one the Role is bound to, and its token is mounted.
        Assert.Equal(Prefix(values) + "-silo", silo.Spec.Template.Spec.ServiceAccountName);
        Assert.True(silo.Spec.Template.Spec.AutomountServiceAccountToken);
    }

    [Theory]
    [MemberData(nameof(Rendered.Names), MemberType = typeof(Rendered))]
    public void Silo_probes_ask_health_live_and_a_stopping_silo_outlives_its_graceful_stop(string values)
    {
        var silo = Silo(Rendered.Named(values));
        var container = Assert.Single(silo.Spec.Template.Spec.Containers);
        foreach (var probe in new[] { container.StartupProbe, container.LivenessProbe, container.ReadinessProbe })
        {
            Assert.Equal("/health/live", probe.HttpGet.Path);
            Assert.Equal("http", probe.HttpGet.Port.Value);
        }
        // A silo's graceful stop takes up to its ShutdownTimeout, 30 s (Silo/Program.cs).
        Assert.True(silo.Spec.Template.Spec.TerminationGracePeriodSeconds > 30);
        // A rolling upgrade starts a silo before it stops one.
        Assert.Equal("RollingUpdate", silo.Spec.Strategy.Type);
        Assert.Equal("1", silo.Spec.Strategy.RollingUpdate.MaxSurge.Value);
        Assert.Equal("0", silo.Spec.Strategy.RollingUpdate.MaxUnavailable.Value);
        AssertResources(container);
        AssertNonRoot(silo.Spec.Template.Spec, container);
    }

    [Theory]
    [MemberData(nameof(Rendered.Names), MemberType = typeof(Rendered))]
    public void An_api_node_serves_http_with_liveness_and_readiness_and_its_service_selects_it(string values)
    {
        var rendered = Rendered.Named(values);
        var prefix = Prefix(values);
        var api = rendered.Get<V1Deployment>(prefix + "-api");
        var container = Assert.Single(api.Spec.Template.Spec.Containers);

        Assert.Equal([("http", 8080), ("mqtt", 1883)], container.Ports.Select(p => (p.Name, p.ContainerPort)));
        Assert.Equal("/health/live", container.StartupProbe.HttpGet.Path);
        Assert.Equal("/health/live", container.LivenessProbe.HttpGet.Path);
        Assert.Equal("/health/ready", container.ReadinessProbe.HttpGet.Path);
        Assert.All(new[] { container.StartupProbe, container.LivenessProbe, container.ReadinessProbe }, p => Assert.Equal("http", p.HttpGet.Port.Value));
        Assert.Equal(["sleep", "5"], container.Lifecycle.PreStop.Exec.Command);
        Assert.True(api.Spec.Template.Spec.TerminationGracePeriodSeconds > 5 + 30);

        var env = container.Env.ToDictionary(e => e.Name);
        Assert.Equal("http://0.0.0.0:8080", env["Urls"].Value);
        Assert.Equal("Durable", env["Cluster__Mode"].Value);
        Assert.Equal("false", env["Demo__Enabled"].Value);
        // MQTT on every interface of the pod, on the port the container and the Service name "mqtt".
        Assert.Equal(("true", "0.0.0.0", "1883"), (env["Mqtt__Enabled"].Value, env["Mqtt__Address"].Value, env["Mqtt__Port"].Value));
        // The Api nodes are Orleans clients of the same cluster, with the same partition count.
        var silo = Assert.Single(Silo(rendered).Spec.Template.Spec.Containers).Env.ToDictionary(e => e.Name);
        foreach (var shared in new[] { "Orleans__ClusterId", "Orleans__ServiceId", "Silo__Partitions" })
        {
            Assert.Equal(silo[shared].Value, env[shared].Value);
        }
        foreach (var secret in new[] { "Redis__ConnectionString", "Postgres__ConnectionString", "RabbitMq__Uri" })
        {
            Assert.Equal((silo[secret].ValueFrom.SecretKeyRef.Name, silo[secret].ValueFrom.SecretKeyRef.Key),
                (env[secret].ValueFrom.SecretKeyRef.Name, env[secret].ValueFrom.SecretKeyRef.Key));
        }
        // An Api node never calls the Kubernetes API.
        Assert.False(api.Spec.Template.Spec.AutomountServiceAccountToken);
        AssertResources(container);
        AssertNonRoot(api.Spec.Template.Spec, container);

        var service = rendered.Get<V1Service>(prefix + "-api");
        Assert.Equal([("http", 80, "http"), ("mqtt", 1883, "mqtt")], service.Spec.Ports.Select(p => (p.Name, p.Port, p.TargetPort.Value)));
        Assert.Equal("ClientIP", service.Spec.SessionAffinity);
        Assert.All(service.Spec.Selector, l => Assert.Equal(l.Value, api.Spec.Template.Metadata.Labels[l.Key]));
        Assert.Equal(api.Spec.Selector.MatchLabels, service.Spec.Selector);
    }

    [Fact]
    public void The_api_keys_are_configured_by_index_with_the_key_from_the_secret()
    {
        var env = Assert.Single(Rendered.Production.Get<V1Deployment>("oiot-api").Spec.Template.Spec.Containers).Env.ToDictionary(e => e.Name);
        var expected = new[] { ("ops", "operator"), ("fleet", "device"), ("greenhouse", "device") };
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Item1, env[$"Auth__Keys__{i}__Name"].Value);
            Assert.Equal(expected[i].Item2, env[$"Auth__Keys__{i}__Role"].Value);
            Assert.Null(env[$"Auth__Keys__{i}__Key"].Value);
            Assert.Equal(("oiot-api-keys", expected[i].Item1), (env[$"Auth__Keys__{i}__Key"].ValueFrom.SecretKeyRef.Name, env[$"Auth__Keys__{i}__Key"].ValueFrom.SecretKeyRef.Key));
        }
        Assert.Equal("gh-1", env["Auth__Keys__2__Devices__0"].Value);
        Assert.Equal("gh-2", env["Auth__Keys__2__Devices__1"].Value);
        Assert.DoesNotContain("Auth__Keys__3__Name", env.Keys);
    }

    [Fact]
    public void Images_are_the_dockerfiles_images_at_the_charts_app_version_or_the_given_tag()
    {
        Assert.Equal("orleansiot/silo:0.1.0", Assert.Single(Silo(Rendered.Default).Spec.Template.Spec.Containers).Image);
        Assert.Equal("orleansiot/api:0.1.0", Assert.Single(Rendered.Default.Get<V1Deployment>("oiot-test-orleansiot-api").Spec.Template.Spec.Containers).Image);
        Assert.Equal("registry.example/orleansiot/silo:0.1.0", Assert.Single(Silo(Rendered.Production).Spec.Template.Spec.Containers).Image);
        Assert.Equal("registry-credentials", Assert.Single(Silo(Rendered.Production).Spec.Template.Spec.ImagePullSecrets).Name);
    }

    internal static V1Deployment Silo(Rendered rendered) =>
        rendered.All<V1Deployment>().Single(d => d.Metadata.Name.EndsWith("-silo", StringComparison.Ordinal));

    /// <summary>The objects' name prefix: the production values set fullnameOverride.</summary>
    internal static string Prefix(string values) => values == "production" ? "oiot" : "oiot-test-orleansiot";

    private static void AssertResources(V1Container container)
    {
        foreach (var resources in new[] { container.Resources.Requests, container.Resources.Limits })
        {
            Assert.True(resources["cpu"].ToDecimal() > 0);
            Assert.True(resources["memory"].ToDecimal() > 0);
        }
        Assert.True(container.Resources.Limits["memory"].ToDecimal() >= container.Resources.Requests["memory"].ToDecimal());
        Assert.True(container.Resources.Limits["cpu"].ToDecimal() >= container.Resources.Requests["cpu"].ToDecimal());
    }

    /// <summary>The images' user "app" (uid 1654), by number so that runAsNonRoot can check it; nothing written outside /tmp.</summary>
    private static void AssertNonRoot(V1PodSpec pod, V1Container container)
    {
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.Equal(1654, pod.SecurityContext.RunAsUser);
        Assert.False(container.SecurityContext.AllowPrivilegeEscalation);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.Equal(["ALL"], container.SecurityContext.Capabilities.Drop);
        Assert.Contains(container.VolumeMounts, m => m.MountPath == "/tmp");
    }
}
