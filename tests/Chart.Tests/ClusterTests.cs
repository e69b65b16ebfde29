using k8s.Models;

namespace Chart.Tests;

/// <summary>What the chart gives the cluster around the pods: RBAC for Orleans' Kubernetes hosting, disruption budgets, autoscalers.</summary>
public sealed class ClusterTests
{
    [Theory]
    [MemberData(nameof(Rendered.Names), MemberType = typeof(Rendered))]
    public void The_silos_may_get_list_watch_and_patch_pods_in_their_namespace_and_nothing_else(string values)
    {
        var rendered = Rendered.Named(values);
        var name = PodTests.Prefix(values) + "-silo";

        var role = rendered.Get<V1Role>(name);
        var rule = Assert.Single(role.Rules);
        Assert.Equal([""], rule.ApiGroups);
        Assert.Equal(["pods"], rule.Resources);
        // Exactly what Orleans' Kubernetes hosting calls; "delete" only with DeleteDefunctSiloPods, which the silo leaves off.
        Assert.Equal(["get", "list", "patch", "watch"], rule.Verbs.Order(StringComparer.Ordinal));
        Assert.Null(rule.ResourceNames);
        Assert.Empty(rendered.All<V1ClusterRole>());

        var binding = rendered.Get<V1RoleBinding>(name);
        Assert.Equal(("rbac.authorization.k8s.io", "Role", name), (binding.RoleRef.ApiGroup, binding.RoleRef.Kind, binding.RoleRef.Name));
        var subject = Assert.Single(binding.Subjects);
        Assert.Equal(("ServiceAccount", name, Rendered.Namespace), (subject.Kind, subject.Name, subject.NamespaceProperty));
        Assert.Equal(name, rendered.Get<V1ServiceAccount>(name).Metadata.Name);
        Assert.Equal(name, PodTests.Silo(rendered).Spec.Template.Spec.ServiceAccountName);
    }

    [Theory]
    [MemberData(nameof(Rendered.Names), MemberType = typeof(Rendered))]
    public void Silos_and_api_nodes_each_have_a_disruption_budget_and_a_cpu_autoscaler(string values)
    {
        var rendered = Rendered.Named(values);
        foreach (var component in new[] { "silo", "api" })
        {
            var name = $"{PodTests.Prefix(values)}-{component}";
            var deployment = rendered.Get<V1Deployment>(name);

            var budget = rendered.Get<V1PodDisruptionBudget>(name);
            Assert.Equal("1", budget.Spec.MaxUnavailable.Value);
            Assert.Null(budget.Spec.MinAvailable);
            Assert.Equal(deployment.Spec.Selector.MatchLabels, budget.Spec.Selector.MatchLabels);

            var autoscaler = rendered.Get<V2HorizontalPodAutoscaler>(name);
            Assert.Equal(("apps/v1", "Deployment", name), (autoscaler.Spec.ScaleTargetRef.ApiVersion, autoscaler.Spec.ScaleTargetRef.Kind, autoscaler.Spec.ScaleTargetRef.Name));
            var metric = Assert.Single(autoscaler.Spec.Metrics);
            Assert.Equal(("Resource", "cpu", "Utilization"), (metric.Type, metric.Resource.Name, metric.Resource.Target.Type));
            Assert.InRange(metric.Resource.Target.AverageUtilization ?? 0, 1, 100);
            Assert.InRange(autoscaler.Spec.MinReplicas ?? 0, 2, autoscaler.Spec.MaxReplicas);
            // The autoscaler owns the count: a Deployment that named one would be reset by every upgrade.
            Assert.Null(deployment.Spec.Replicas);
            // Requests are what CPU utilization is measured against.
            Assert.True(deployment.Spec.Template.Spec.Containers[0].Resources.Requests["cpu"].ToDecimal() > 0);
        }
        var production = values == "production";
        Assert.Equal(production ? (4, 16) : (2, 8), MinMax(rendered.Get<V2HorizontalPodAutoscaler>(PodTests.Prefix(values) + "-silo")));
        Assert.Equal(production ? (3, 12) : (2, 10), MinMax(rendered.Get<V2HorizontalPodAutoscaler>(PodTests.Prefix(values) + "-api")));
        // Silos scale down one at a time, slowly: each removal moves partitions.
        var down = rendered.Get<V2HorizontalPodAutoscaler>(PodTests.Prefix(values) + "-silo").Spec.Behavior.ScaleDown;
        Assert.Equal(("Pods", 1), (Assert.Single(down.Policies).Type, Assert.Single(down.Policies).Value));
    }

    [Fact]
    public void Without_autoscalers_the_deployments_name_their_replicas_and_budgets_can_be_turned_off()
    {
        var rendered = Rendered.Render("--set", "silo.autoscaling.enabled=false,api.autoscaling.enabled=false,silo.replicas=3,api.replicas=4",
            "--set", "silo.podDisruptionBudget.enabled=false");
        Assert.Empty(rendered.All<V2HorizontalPodAutoscaler>());
        Assert.Equal(3, rendered.Get<V1Deployment>("oiot-test-orleansiot-silo").Spec.Replicas);
        Assert.Equal(4, rendered.Get<V1Deployment>("oiot-test-orleansiot-api").Spec.Replicas);
        Assert.Equal("oiot-test-orleansiot-api", Assert.Single(rendered.All<V1PodDisruptionBudget>()).Metadata.Name);
    }

    private static (int, int) MinMax(V2HorizontalPodAutoscaler autoscaler) => (autoscaler.Spec.MinReplicas ?? 0, autoscaler.Spec.MaxReplicas);
}
