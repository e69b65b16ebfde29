using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>
/// GET /api/v1/sensors/{id} in the durable cluster: the Api (an Orleans client, no grains) reads the sensor from its
/// grain by a grain call, wherever Orleans runs it. When the silo running it is killed, the grain is activated on
/// another silo from its state in Redis and answers again within seconds, with what was stored.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LiveQueryTests(ClusterServers servers, ITestOutputHelper output)
{
    [Fact]
    public async Task A_sensor_is_read_from_its_grain_and_again_from_its_stored_state_after_its_silo_is_killed()
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

        var detail = await ReadAsync(cluster, sensor, TimeSpan.FromSeconds(20));
        Assert.Equal(21.5, detail.GetProperty("latest").GetProperty("temp").GetDouble());

        // Stored (the partition committed past it, so the grain wrote its state), then the silo running the grain dies.
        await cluster.WaitProcessedAsync(TimeSpan.FromSeconds(30));
        var partition = Grains.Abstractions.Partitioner.PartitionOf(sensor, cluster.Partitions);
        var owner = (await cluster.ViewAsync()).OwnerName(partition)!;
        cluster.KillSilo(owner);
        var clock = Stopwatch.StartNew();
        var again = await ReadAsync(cluster, sensor, TimeSpan.FromSeconds(30));
        cluster.Log($"read again {Wait.Seconds(clock.Elapsed)} after SIGKILL of {owner}");
        Assert.Equal(21.5, again.GetProperty("latest").GetProperty("temp").GetDouble());
        Assert.Equal(40, again.GetProperty("latest").GetProperty("hum").GetDouble());
        Assert.Equal(detail.GetProperty("lastReadings").GetRawText(), again.GetProperty("lastReadings").GetRawText());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"the sensor answered again after {Wait.Seconds(clock.Elapsed)}");
    }

    /// <summary>The sensor's detail once the Api answers 200 for it (503 or a timeout meanwhile are retried).</summary>
    private static async Task<JsonElement> ReadAsync(DurableCluster cluster, string sensor, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        string last = "";
        while (true)
        {
            try
            {
                using var response = await cluster.Operator.GetAsync($"/api/v1/sensors/{sensor}");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return await response.Content.ReadFromJsonAsync<JsonElement>();
                }
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = e.Message;
            }
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"{sensor} not readable within {timeout.TotalSeconds:0.#} s; last answer: {last}");
            }
            await Task.Delay(100);
        }
    }
}
