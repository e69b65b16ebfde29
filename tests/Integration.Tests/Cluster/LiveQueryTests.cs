using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Runtime;
using Xunit.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>
/// GET /api/v1/sensors/{id} in the durable cluster: the Api (which runs no grains) reads the sensor live from the silo
/// that owns it, and from the last checkpoint when that silo cannot be reached, saying which.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LiveQueryTests(ClusterServers servers, ITestOutputHelper output)
{
    [Fact]
    public async Task A_sensor_is_read_live_from_its_owner_and_from_the_checkpoint_when_the_owner_is_gone()
    {
        await using var cluster = await DurableCluster.CreateAsync(servers, output);
        await Scenario.StartAsync(cluster, "silo-1", "silo-2");
        const string sensor = "live-query-1";
        var t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using (var post = await cluster.Device.PostAsync("/api/v1/telemetry", new StringContent(
            $$$"""{"id":"{{{sensor}}}","timestamp":{{{t}}},"metrics":{"temp":21.5,"hum":40}}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);
        }

        JsonElement detail = default;
        await Wait.UntilAsync(() =>
        {
            using var response = cluster.Operator.GetAsync($"/api/v1/sensors/{sensor}").GetAwaiter().GetResult();
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return false;
            }
            detail = response.Content.ReadFromJsonAsync<JsonElement>().GetAwaiter().GetResult();
            return true;
        }, TimeSpan.FromSeconds(20), "the sensor readable");
        Assert.Equal("live", detail.GetProperty("source").GetString());
        Assert.Equal(21.5, detail.GetProperty("latest").GetProperty("temp").GetDouble());

        // The owner has checkpointed the reading; then it dies. Until its lease expires the leases still name it, its
        // endpoint refuses connections, and the Api answers from the checkpoint.
        await cluster.WaitProcessedAsync(TimeSpan.FromSeconds(30));
        var owner = (await cluster.ViewAsync()).Partition(Partitioner.PartitionOf(sensor, cluster.Partitions)).Owner!;
        cluster.KillSilo(owner);
        using var fallback = await cluster.Operator.GetAsync($"/api/v1/sensors/{sensor}");
        Assert.Equal(HttpStatusCode.OK, fallback.StatusCode);
        var stored = await fallback.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("checkpoint", stored.GetProperty("source").GetString());
        Assert.Equal(21.5, stored.GetProperty("latest").GetProperty("temp").GetDouble());
        Assert.Contains(cluster.Api.Lines(), l => l.Contains($"Silo {owner} at", StringComparison.Ordinal) && l.Contains("did not answer a live query", StringComparison.Ordinal));

        // After the takeover the new owner answers live again.
        await cluster.WaitForViewAsync(v => v.Partition(Partitioner.PartitionOf(sensor, cluster.Partitions)).Owner is { } o && o != owner,
            TimeSpan.FromSeconds(20), "the sensor's partition taken over");
        using var again = await cluster.Operator.GetAsync($"/api/v1/sensors/{sensor}");
        Assert.Equal("live", (await again.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("source").GetString());
    }
}
