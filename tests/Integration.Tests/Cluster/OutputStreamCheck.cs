using System.Text.Json;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Integration.Tests.Cluster;

/// <summary>
/// Reads a cluster's output streams as any consumer would, with a plain RabbitMQ client from the first offset, and checks
/// them against the read models in PostgreSQL: every minute aggregate once (with the stored counts and sums), every alert's
/// "opened" once and, when it is resolved, its "resolved" once; nothing else.
/// </summary>
public static class OutputStreamCheck
{
    public static async Task AssertEveryAggregateAndAlertOnceAsync(DurableCluster cluster, string rabbitUri, TimeSpan timeout)
    {
        var expectedAggregates = new Dictionary<string, Dictionary<string, (long Count, double Sum)>>(StringComparer.Ordinal);
        var expectedAlerts = new HashSet<string>(StringComparer.Ordinal);
        await using (var connection = new NpgsqlConnection(cluster.ConnectionString))
        {
            await connection.OpenAsync();
            await using (var command = new NpgsqlCommand("SELECT sensor_id, minute_ms, metric, count, sum FROM minute_aggregates", connection))
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    var id = $"{reader.GetString(0)}@{reader.GetInt64(1)}";
                    if (!expectedAggregates.TryGetValue(id, out var metrics))
                    {
                        expectedAggregates[id] = metrics = new(StringComparer.Ordinal);
                    }
                    metrics[reader.GetString(2)] = (reader.GetInt64(3), reader.GetDouble(4));
                }
            }
            await using (var command = new NpgsqlCommand("SELECT alert_id, state FROM alerts", connection))
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    expectedAlerts.Add($"{reader.GetString(0)}/Opened");
                    if (reader.GetString(1) == "Resolved")
                    {
                        expectedAlerts.Add($"{reader.GetString(0)}/Resolved");
                    }
                }
            }
        }

        var factory = new ConnectionFactory { Uri = new Uri(rabbitUri) };
        await using var rabbit = await factory.CreateConnectionAsync();
        var aggregates = await ConsumeAsync(rabbit, $"{cluster.StreamPrefix}.out.aggregates", expectedAggregates.Keys.ToHashSet(StringComparer.Ordinal), timeout);
        var alerts = await ConsumeAsync(rabbit, $"{cluster.StreamPrefix}.out.alerts", expectedAlerts, timeout);

        var problems = new List<string>();
        problems.AddRange(aggregates.GroupBy(m => m.Id).Where(g => g.Count() > 1).Select(g => $"aggregate {g.Key} appended {g.Count()} times"));
        problems.AddRange(aggregates.Where(m => !expectedAggregates.ContainsKey(m.Id)).Select(m => $"aggregate {m.Id} is not in PostgreSQL"));
        problems.AddRange(expectedAggregates.Keys.Except(aggregates.Select(m => m.Id)).Select(id => $"aggregate {id} missing from the stream"));
        foreach (var message in aggregates.DistinctBy(m => m.Id).Where(m => expectedAggregates.ContainsKey(m.Id)))
        {
            using var body = JsonDocument.Parse(message.Body);
            var metrics = body.RootElement.GetProperty("metrics").EnumerateObject()
                .ToDictionary(p => p.Name, p => (p.Value.GetProperty("count").GetInt64(), p.Value.GetProperty("sum").GetDouble()));
            var stored = expectedAggregates[message.Id];
            if (metrics.Count != stored.Count || stored.Any(s => !metrics.TryGetValue(s.Key, out var m) || m != s.Value))
            {
                problems.Add($"aggregate {message.Id}: stream {Describe(metrics)}, PostgreSQL {Describe(stored)}");
            }
        }
        problems.AddRange(alerts.GroupBy(m => m.Id).Where(g => g.Count() > 1).Select(g => $"alert event {g.Key} appended {g.Count()} times"));
        problems.AddRange(alerts.Where(m => !expectedAlerts.Contains(m.Id)).Select(m => $"alert event {m.Id} does not match PostgreSQL"));
        problems.AddRange(expectedAlerts.Except(alerts.Select(m => m.Id)).Select(id => $"alert event {id} missing from the stream"));
        Assert.True(problems.Count == 0, $"{problems.Count} problems in the output streams:\n{string.Join('\n', problems.Take(30))}");
        Assert.NotEmpty(expectedAggregates);
        Assert.NotEmpty(expectedAlerts);
        cluster.Log($"output streams: {aggregates.Count} aggregates and {alerts.Count} alert events, each once");
    }

    private static string Describe(IEnumerable<KeyValuePair<string, (long Count, double Sum)>> metrics) =>
        string.Join(", ", metrics.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => $"{m.Key} {m.Value.Count}/{m.Value.Sum}"));

    /// <summary>Consumes the stream from its first offset until every expected id has arrived (or the timeout).</summary>
    private static async Task<List<(string Id, byte[] Body)>> ConsumeAsync(IConnection connection, string stream, HashSet<string> expected, TimeSpan timeout)
    {
        await using var channel = await connection.CreateChannelAsync();
        await channel.BasicQosAsync(0, 1000, false);
        var messages = new List<(string Id, byte[] Body)>();
        var missing = new HashSet<string>(expected, StringComparer.Ordinal);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new Lock();
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivery) =>
        {
            lock (gate)
            {
                var id = delivery.BasicProperties.MessageId ?? "";
                messages.Add((id, delivery.Body.ToArray()));
                missing.Remove(id);
                if (missing.Count == 0)
                {
                    done.TrySetResult();
                }
            }
            await channel.BasicAckAsync(delivery.DeliveryTag, multiple: false);
        };
        if (missing.Count == 0)
        {
            done.TrySetResult();
        }
        var tag = await channel.BasicConsumeAsync(stream, autoAck: false, consumerTag: "", noLocal: false, exclusive: false,
            new Dictionary<string, object?> { ["x-stream-offset"] = "first" }, consumer);
        try
        {
            await done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            // Reported by the caller: the missing ids.
        }
        await channel.BasicCancelAsync(tag);
        lock (gate)
        {
            return messages.ToList();
        }
    }
}
