using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Tests.Shared;
using Xunit.Abstractions;

namespace Integration.Tests.Cluster;

/// <summary>
/// The servers restarted under load, with two silo processes and an Api. RabbitMQ down: ingest answers 503 with
/// Retry-After and a ProblemDetails body and acknowledges nothing, then resumes; PostgreSQL or Redis down: ingest goes
/// on (the log is up), processing pauses (read models, grain states and positions cannot be written; the partitions
/// replay from their stored positions until they can) and resumes. Either way every acknowledged reading is counted
/// exactly once and no alert is opened twice.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ServerRestartTests(ClusterServers servers, ITestOutputHelper output)
{
    [Fact]
    public async Task RabbitMQ_restarted_during_load_ingest_answers_503_and_withholds_MQTT_PUBACKs_while_it_is_down_and_nothing_acknowledged_is_lost()
    {
        // Posting stalls while the broker is down, and a sensor's clock runs on with receipt time meanwhile: a lateness
        // longer than the outage keeps the readings that follow it in their minutes.
        await using var cluster = await DurableCluster.CreateAsync(servers, output, allowedLateness: TimeSpan.FromMinutes(2));
        await Scenario.StartAsync(cluster, "silo-1", "silo-2");
        await Scenario.CreateRuleAsync(cluster);
        var input = new KnownInput(sensors: 100, seconds: 120, cluster.Partitions, cluster.AllowedLateness);
        var loader = new TelemetryLoader(cluster.Device, cluster.Log);
        Mosquitto.Running? publish = null;
        InputReading? mqttReading = null;
        // Slow enough (about 40 s) that the load is still running when the broker stops, even on a loaded machine.
        var load = loader.RunAsync(input, eventSecondsPerSecond: 3);

        await Wait.UntilAsync(() => loader.Progress >= 0.2, TimeSpan.FromSeconds(120), "a fifth of the load acknowledged");
        var mqttPort = await DurableCluster.MqttPortOfAsync(cluster.Api);
        var down = loader.Now;
        await servers.RabbitMq.StopAppAsync();
        cluster.Log("RabbitMQ stopped (stop_app)");
        try
        {
            // While the broker is down a post is answered 503, with Retry-After and a ProblemDetails body.
            var probe = 0;
            (HttpStatusCode Status, string? RetryAfter, string? ContentType, string Body) answer = (0, null, null, "");
            var clock = Stopwatch.StartNew();
            while (answer.Status != HttpStatusCode.ServiceUnavailable)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "a post answered 503 while RabbitMQ is down");
                answer = await loader.PostOnceAsync([Probe(input, probe++)]);
            }
            cluster.Log($"503 for a post: Retry-After {answer.RetryAfter}, {answer.ContentType}: {answer.Body}");
            Assert.Equal("2", answer.RetryAfter);
            Assert.Equal("application/problem+json", answer.ContentType);
            using (var problem = JsonDocument.Parse(answer.Body))
            {
                Assert.Equal(503, problem.RootElement.GetProperty("status").GetInt32());
                Assert.False(string.IsNullOrEmpty(problem.RootElement.GetProperty("title").GetString()));
                Assert.Contains("nothing of this request was stored", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }
            // An MQTT 3.1.1 device publishes at QoS 1 meanwhile: no PUBACK while the log cannot take the reading.
            var reading = new InputReading("mqtt-probe-0", input.T0 + (input.Seconds - 30) * 1000L, 25, 50);
            publish = Mosquitto.StartRunning("mosquitto_pub", ["-h", "127.0.0.1", "-p", mqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "-V", "mqttv311", "-q", "1", "-i", reading.SensorId, "-u", reading.SensorId, "-P", DurableCluster.DeviceKey,
                "-t", $"devices/{reading.SensorId}/telemetry", "-m", Json(reading), "-d"]);
            mqttReading = reading;
            await Wait.UntilAsync(() => publish.Output.Contains("sending PUBLISH", StringComparison.Ordinal), TimeSpan.FromSeconds(10), "the MQTT publish sent");
            await Wait.UntilAsync(() => loader.Count(503, down, loader.Now) >= 8 || load.IsCompleted, TimeSpan.FromSeconds(20), "the load's posts answered 503");
            Assert.True(loader.Count(503, down, loader.Now) >= 1, "the load was still running while the broker was down, and saw 503s");
            Assert.DoesNotContain("received PUBACK", publish.Output, StringComparison.Ordinal);
        }
        finally
        {
            await servers.RabbitMq.StartAppAsync();
        }
        // Once the log takes writes again the waiting publish is stored and acknowledged (once: the exact checks count it).
        await using (publish)
        {
            await Wait.UntilAsync(() => publish!.Output.Contains("received PUBACK (Mid: 1, RC:0)", StringComparison.Ordinal), TimeSpan.FromSeconds(30),
                "the MQTT PUBACK after the restart");
            loader.AcknowledgedElsewhere(mqttReading!);
        }
        var up = loader.Now;
        cluster.Log($"RabbitMQ started again (start_app) after {Wait.Seconds(up - down)}; {loader.Count(503, down, up)} posts answered 503, {loader.Count(202, down, up)} 202 meanwhile");

        // Ingest resumes: the load's posts are accepted again.
        await Wait.UntilAsync(() => loader.Count(202, up, loader.Now) >= 8 || load.IsCompleted, TimeSpan.FromSeconds(30), "posts accepted after the restart");
        await load;
        await Scenario.FinishAndCheckAsync(cluster, input, loader);
        Assert.Contains(cluster.Api.Lines(), l => l.Contains("answered 503", StringComparison.Ordinal));
        foreach (var silo in new[] { "silo-1", "silo-2" })
        {
            var failures = cluster.Silo(silo).Lines().Where(l => l.Contains("fail: ", StringComparison.Ordinal)).ToList();
            Assert.True(failures.Count == 0, $"{silo} logged errors across the broker restart:\n{string.Join('\n', failures.Take(10))}");
        }
    }

    [Fact]
    public async Task PostgreSQL_restarted_during_load_ingest_goes_on_processing_pauses_and_resumes_and_nothing_is_counted_twice() =>
        await RestartedDuringLoadAsync("PostgreSQL", servers.Postgres.StopAsync, servers.Postgres.RestartAsync);

    [Fact]
    public async Task Redis_restarted_during_load_ingest_goes_on_processing_pauses_and_resumes_and_nothing_is_counted_twice() =>
        await RestartedDuringLoadAsync("Redis", servers.Redis.StopAsync, servers.Redis.RestartAsync);

    /// <summary>
    /// A server the silos write to (not the log) stopped for 5 s under load: posts are still acknowledged (none answered
    /// 503 or left unanswered), the partitions cannot commit and say so, and afterwards they commit again and every
    /// acknowledged reading is counted once.
    /// </summary>
    private async Task RestartedDuringLoadAsync(string server, Func<Task> stop, Func<Task> restart)
    {
        await using var cluster = await DurableCluster.CreateAsync(servers, output);
        await Scenario.StartAsync(cluster, "silo-1", "silo-2");
        await Scenario.CreateRuleAsync(cluster);
        var input = new KnownInput(sensors: 100, seconds: 120, cluster.Partitions, cluster.AllowedLateness);
        var loader = new TelemetryLoader(cluster.Device, cluster.Log);
        var load = loader.RunAsync(input, eventSecondsPerSecond: 6);

        await Wait.UntilAsync(() => loader.Progress >= 1.0 / 3, TimeSpan.FromSeconds(120), "a third of the load acknowledged");
        var marks = new[] { "silo-1", "silo-2" }.ToDictionary(s => s, s => cluster.Silo(s).LineCount);
        var down = loader.Now;
        await stop();
        cluster.Log($"{server} stopped");
        try
        {
            // The log is up: posts are still acknowledged.
            var accepted = loader.Count(202, down, loader.Now);
            await Wait.UntilAsync(() => loader.Count(202, down, loader.Now) >= accepted + 10 || load.IsCompleted, TimeSpan.FromSeconds(20),
                $"posts acknowledged while {server} is down");
            // Processing pauses: the partitions fail to commit and replay from their stored positions, again and again.
            await Wait.UntilAsync(() => marks.Any(m => cluster.Silo(m.Key).HasLine(l => l.Contains("replaying from its stored position", StringComparison.Ordinal), m.Value)),
                TimeSpan.FromSeconds(20), $"a silo failing to commit while {server} is down");
            await Wait.UntilAsync(() => loader.Now - down >= TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10), "5 s of outage");
        }
        finally
        {
            await restart();
        }
        var up = loader.Now;
        cluster.Log($"{server} started again after {Wait.Seconds(up - down)}; {loader.Count(202, down, up)} posts acknowledged and {loader.Count(503, down, up)} answered 503 meanwhile");
        Assert.Equal(0, loader.Count(503, down, up));
        Assert.Equal(0, loader.Count(0, down, up));

        // Processing resumes: committed offsets move again.
        var resumed = await cluster.WaitForViewAsync(v => v.PartitionMap.All(p => p.Owner is not null), TimeSpan.FromSeconds(30), "every partition read again");
        await cluster.WaitForViewAsync(v => v.PartitionMap.Sum(p => p.CommittedOffset) > resumed.PartitionMap.Sum(p => p.CommittedOffset) || load.IsCompleted,
            TimeSpan.FromSeconds(30), "committed offsets moving again");
        await load;
        await Scenario.FinishAndCheckAsync(cluster, input, loader);
    }

    /// <summary>A probe reading of its own sensor, inside the last minute of the input (never late), never hot.</summary>
    private static string Json(InputReading reading)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            reading.WriteJson(writer);
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static InputReading Probe(KnownInput input, int n) => new("probe-0", input.T0 + (input.Seconds - 30) * 1000L + n, 25, 50);
}
