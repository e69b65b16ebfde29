using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Api.Ingest;
using Runtime;
using Runtime.RabbitMq;
using Simulator;

namespace Bench;

/// <summary>
/// The physical reference for ingest: how fast one thread can merely read the simulator's request bodies with
/// System.Text.Json (every token, numbers decoded), next to the Api's telemetry parser turning the same bytes into
/// readings. Bodies of 100 readings in each format; the median of several timed runs after a warm-up. Beside them, the
/// log's codec: the same readings as telemetry entries of 100, encoded and decoded as the log keeps them (binary) and as
/// JSON (how earlier versions kept them, and how the other entries still are).
/// </summary>
public static class ParseBenchmark
{
    private const int Batch = 100;
    private const int Bodies = 64;

    public static int Run(string[] args)
    {
        var options = new Options(args);
        var seconds = options.Double("seconds", 2);
        var runs = options.Int("runs", 5);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var results = new StringBuilder("{\"benchmark\":\"parse\",\"threads\":1,\"batch\":100,\"formats\":{");
        var first = true;
        foreach (var format in Enum.GetValues<PayloadFormat>())
        {
            var bodies = Payloads(format, now);
            var bytes = bodies.Sum(b => (long)b.Length) / (double)(Bodies * Batch);
            var walk = Measure(bodies, seconds, runs, static body => WalkTokens(body));
            var parser = new TelemetryParser(new TelemetryLimits());
            var parse = Measure(bodies, seconds, runs, body => parser.Parse(body, TelemetryBodyKind.Json, now).Accepted.Count);
            results.Append(CultureInfo.InvariantCulture,
                $"{(first ? "" : ",")}\"{format.ToString().ToLowerInvariant()}\":{{\"bytesPerReading\":{bytes:F1},"
                + $"\"stjTokenWalk\":{{\"readingsPerSecond\":{walk.Rate:F0},\"mbPerSecond\":{walk.Rate * bytes / 1e6:F1}}},"
                + $"\"telemetryParser\":{{\"readingsPerSecond\":{parse.Rate:F0},\"allocatedBytesPerReading\":{parse.Allocated:F1},"
                + $"\"fractionOfTokenWalk\":{parse.Rate / walk.Rate:F3}}}}}");
            first = false;
        }
        results.Append('}');
        AppendLogCodec(results, seconds, runs, now);
        results.Append('}');
        Console.WriteLine(results);
        return 0;
    }

    private static void AppendLogCodec(StringBuilder results, double seconds, int runs, long now)
    {
        var parser = new TelemetryParser(new TelemetryLimits());
        var entries = Payloads(PayloadFormat.Slide, now)
            .Select(body => (InboxEntry)new TelemetryEntry(parser.Parse(body, TelemetryBodyKind.Json, now).Accepted.ToArray(), null, now))
            .ToArray();
        var binary = entries.Select(InboxEntryCodec.Encode).ToArray();
        var json = entries.Select(e => JsonSerializer.SerializeToUtf8Bytes(e, RabbitMqJsonContext.Default.InboxEntry)).ToArray();
        // One "body" per entry: its position stands in for it, so Measure's loop stays the same.
        var keys = Enumerable.Range(0, entries.Length).Select(i => new[] { (byte)i }).ToArray();
        var binaryRate = Measure(keys, seconds, runs,
            key => ((TelemetryEntry)InboxEntryCodec.Decode(InboxEntryCodec.Encode(entries[key[0]]))).Readings.Length);
        var jsonRate = Measure(keys, seconds, runs,
            key => ((TelemetryEntry)JsonSerializer.Deserialize(JsonSerializer.SerializeToUtf8Bytes(entries[key[0]], RabbitMqJsonContext.Default.InboxEntry),
                RabbitMqJsonContext.Default.InboxEntry)!).Readings.Length);
        var readings = entries.Sum(e => ((TelemetryEntry)e).Readings.Length);
        results.Append(CultureInfo.InvariantCulture,
            $",\"logCodec\":{{\"readingsPerEntry\":{Batch},"
            + $"\"binary\":{{\"bytesPerReading\":{binary.Sum(b => (long)b.Length) / (double)readings:F1},\"readingsPerSecond\":{binaryRate.Rate:F0},\"allocatedBytesPerReading\":{binaryRate.Allocated:F1}}},"
            + $"\"json\":{{\"bytesPerReading\":{json.Sum(b => (long)b.Length) / (double)readings:F1},\"readingsPerSecond\":{jsonRate.Rate:F0},\"allocatedBytesPerReading\":{jsonRate.Allocated:F1}}}}}");
    }

    private static byte[][] Payloads(PayloadFormat format, long now)
    {
        var model = new FleetModel(10_000, 1, AnomalyOptions.None, now);
        var writer = new PayloadWriter(model, format, Batch, ndJson: false);
        var bodies = new byte[Bodies][];
        using var buffer = new PooledBufferWriter(Batch * 200);
        for (var i = 0; i < Bodies; i++)
        {
            buffer.Clear();
            var written = writer.Write(buffer, (long)i * Batch, Batch, Batch, now);
            if (written != Batch)
            {
                throw new InvalidOperationException($"The {format} writer wrote {written} readings instead of {Batch}.");
            }
            bodies[i] = buffer.WrittenSpan.ToArray();
        }
        return bodies;
    }

    /// <summary>Reads every token of a body; returns the number of readings (objects at depth 1).</summary>
    private static int WalkTokens(byte[] body)
    {
        var reader = new Utf8JsonReader(body);
        var readings = 0;
        double sum = 0;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject when reader.CurrentDepth == 1:
                    readings++;
                    break;
                case JsonTokenType.Number:
                    sum += reader.GetDouble();
                    break;
            }
        }
        return double.IsNaN(sum) ? -1 : readings;
    }

    private static (double Rate, double Allocated) Measure(byte[][] bodies, double seconds, int runs, Func<byte[], int> parse)
    {
        // Warm-up: lets tiered compilation reach its optimized code.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed.TotalSeconds < Math.Min(1, seconds))
        {
            foreach (var body in bodies)
            {
                parse(body);
            }
        }
        var rates = new List<double>();
        var allocations = new List<double>();
        for (var run = 0; run < runs; run++)
        {
            long readings = 0;
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed.TotalSeconds < seconds)
            {
                foreach (var body in bodies)
                {
                    readings += parse(body);
                }
            }
            watch.Stop();
            rates.Add(readings / watch.Elapsed.TotalSeconds);
            allocations.Add((GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)readings);
        }
        return (Median(rates), Median(allocations));
    }

    public static double Median(List<double> values)
    {
        values.Sort();
        return values.Count % 2 == 1 ? values[values.Count / 2] : (values[values.Count / 2 - 1] + values[values.Count / 2]) / 2;
    }
}
