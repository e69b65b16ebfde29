using System.Text.RegularExpressions;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace Chart.Tests;

/// <summary>API keys, connection strings and passwords reach the pods only through Secrets, never as a plain value.</summary>
public sealed partial class SecretTests
{
    /// <summary>Names of settings that hold a secret: keys, passwords, connection strings and broker URIs (with credentials).</summary>
    [GeneratedRegex("(Key|Password|Pass|Secret|Token|ConnectionString|Uri)$", RegexOptions.IgnoreCase)]
    private static partial Regex SecretName();

    [Theory]
    [MemberData(nameof(Rendered.Names), MemberType = typeof(Rendered))]
    public void Every_secret_setting_of_every_container_comes_from_a_secret_key_ref(string values)
    {
        var checkedSecrets = 0;
        foreach (var (workload, template) in Rendered.Named(values).PodTemplates())
        {
            foreach (var container in template.Spec.Containers.Concat(template.Spec.InitContainers ?? []))
            {
                foreach (var env in container.Env ?? [])
                {
                    if (SecretName().IsMatch(env.Name))
                    {
                        Assert.True(env.Value is null && env.ValueFrom?.SecretKeyRef is not null,
                            $"{workload}/{container.Name}: {env.Name} must come from a secretKeyRef");
                        checkedSecrets++;
                    }
                    Assert.DoesNotMatch("(?i)password=|amqps?://[^/]*@", env.Value ?? "");
                }
                Assert.All(container.Args ?? [], a => Assert.DoesNotMatch("(?i)password=", a));
                Assert.Null(container.EnvFrom?.FirstOrDefault(e => e.ConfigMapRef is not null));
            }
        }
        // Redis, PostgreSQL, RabbitMQ on both; 2 or 3 API keys; the bundled servers' 3 passwords.
        Assert.Equal(values switch { "production" => 6 + 3, "dependencies" => 6 + 2 + 3, _ => 6 + 2 }, checkedSecrets);
        Assert.DoesNotContain(Rendered.Named(values).All<V1ConfigMap>(), c => c.Data.Values.Any(v => v.Contains("password", StringComparison.OrdinalIgnoreCase)));
    }

    [Fact]
    public void Generated_passwords_and_api_keys_appear_nowhere_but_in_their_secrets()
    {
        var rendered = Rendered.WithDependencies;
        var connections = rendered.Get<V1Secret>("oiot-test-orleansiot-connections");
        var keys = rendered.Get<V1Secret>("oiot-test-orleansiot-api-keys");
        var generated = new[] { "redis-password", "postgres-password", "rabbitmq-password" }.Select(k => ObjectTests.Text(connections, k))
            .Concat(new[] { "operator", "device" }.Select(k => ObjectTests.Text(keys, k)))
            .ToList();
        Assert.All(generated.Take(3), p => Assert.Matches("^[A-Za-z0-9]{32}$", p));
        // The Api accepts keys of at least 16 characters.
        Assert.All(generated.Skip(3), k => Assert.Matches("^[A-Za-z0-9]{40}$", k));
        Assert.Equal(generated.Count, generated.Distinct().Count());
        Assert.All(generated, g => Assert.DoesNotContain(g, rendered.Text, StringComparison.Ordinal));

        // Redis is started with the password from its environment, not on the command line.
        var redis = Assert.Single(rendered.Get<V1StatefulSet>("oiot-test-orleansiot-redis").Spec.Template.Spec.Containers);
        Assert.Equal("$(REDIS_PASSWORD)", redis.Args[redis.Args.IndexOf("--requirepass") + 1]);
    }

    [Fact]
    public void With_existing_secrets_the_chart_creates_none()
    {
        Assert.Empty(Rendered.Production.All<V1Secret>());
    }

    [Fact]
    public void The_default_values_file_holds_no_secret()
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(Tools.ChartDirectory, "values.yaml")))
        {
            yaml.Load(reader);
        }
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var connections = (YamlMappingNode)root["connections"];
        Assert.Equal("", ((YamlScalarNode)connections["existingSecret"]).Value);
        // Connection strings are no values at all: only the name of a Secret and its keys.
        Assert.Equal(["existingSecret", "postgresKey", "rabbitmqKey", "redisKey"],
            connections.Children.Keys.Select(k => ((YamlScalarNode)k).Value!).Order(StringComparer.Ordinal));
        // API keys are named by their Secret key (secretKey), never given.
        foreach (YamlMappingNode key in (YamlSequenceNode)root["auth"]["keys"])
        {
            Assert.DoesNotContain(key.Children.Keys, k => ((YamlScalarNode)k).Value is "key" or "Key");
        }
        // Nor anywhere else: no scalar that looks like a credential.
        Assert.All(Scalars(root), s => Assert.DoesNotMatch("(?i)password=|://[^/\\s]*:[^/\\s]*@", s));
    }

    private static IEnumerable<string> Scalars(YamlNode node) => node switch
    {
        YamlScalarNode scalar => new[] { scalar.Value ?? "" },
        YamlMappingNode mapping => mapping.Children.Values.SelectMany(Scalars),
        YamlSequenceNode sequence => sequence.Children.SelectMany(Scalars),
        _ => Enumerable.Empty<string>(),
    };
}
