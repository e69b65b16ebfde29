using System.Diagnostics;
using System.Globalization;

namespace Simulator;

/// <summary>--dry-run: how fast one thread writes the payloads of a run (no HTTP), to show the generator is not the bottleneck.</summary>
public static class GeneratorBenchmark
{
    public static string Run(SimulatorSettings settings, CancellationToken cancellationToken)
    {
        var model = new FleetModel(settings.Sensors, settings.Seed, settings.Anomalies, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var writer = new PayloadWriter(model, settings.Format, settings.Batch, settings.NdJson);
        using var buffer = new PooledBufferWriter(settings.Batch * 160 + 16);
        var limit = settings.Count ?? long.MaxValue;
        var duration = settings.Duration < TimeSpan.FromSeconds(10) ? settings.Duration : TimeSpan.FromSeconds(10);
        long readings = 0, bytes = 0, slot = 0;
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var started = Stopwatch.GetTimestamp();
        while (readings < limit && Stopwatch.GetElapsedTime(started) < duration && !cancellationToken.IsCancellationRequested)
        {
            var timeMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            buffer.Clear();
            readings += writer.Write(buffer, slot, settings.Batch, (int)Math.Min(limit - readings, settings.Batch), timeMs);
            slot += settings.Batch;
            bytes += buffer.WrittenCount;
        }
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        return string.Create(CultureInfo.InvariantCulture,
            $"{{\"readings\": {readings}, \"seconds\": {seconds:F3}, \"readingsPerSecond\": {readings / seconds:F0}, \"bytesPerReading\": {(double)bytes / Math.Max(1, readings):F1}, \"allocatedBytesPerReading\": {(double)allocated / Math.Max(1, readings):F2}}}");
    }
}
