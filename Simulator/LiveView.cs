using Spectre.Console;

namespace Simulator;

/// <summary>A table of the run's counters refreshed about four times a second until the run ends.</summary>
public static class LiveView
{
    public static async Task ShowAsync(SimulatorEngine engine, SimulatorSettings settings, Task run)
    {
        var stats = engine.Stats;
        long previousAcknowledged = 0;
        var previousElapsed = TimeSpan.Zero;
        double rate = 0;
        await AnsiConsole.Live(Render(engine, settings, rate)).AutoClear(false).StartAsync(async context =>
        {
            while (!run.IsCompleted)
            {
                await Task.WhenAny(run, Task.Delay(250));
                var elapsed = engine.Elapsed;
                var acknowledged = stats.Acknowledged;
                var seconds = (elapsed - previousElapsed).TotalSeconds;
                if (seconds >= 0.2)
                {
                    rate = (acknowledged - previousAcknowledged) / seconds;
                    previousAcknowledged = acknowledged;
                    previousElapsed = elapsed;
                }
                context.UpdateTarget(Render(engine, settings, rate));
            }
        });
    }

    private static Table Render(SimulatorEngine engine, SimulatorSettings settings, double rate)
    {
        var stats = engine.Stats;
        var latency = stats.Latency;
        var target = settings.TotalRate > 0 ? $"{settings.TotalRate:N0} readings/s" : "as fast as possible";
        var limit = settings.Count is { } count ? $"{count:N0} readings or {settings.Duration.TotalSeconds:0.###} s" : $"{settings.Duration.TotalSeconds:0.###} s";
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{settings.Sensors:N0} sensors → {Markup.Escape(settings.Url.ToString())}[/]")
            .Caption($"{settings.FormatName}{(settings.NdJson ? " NDJSON" : "")}, batch {settings.Batch}, {target}, {settings.Concurrency} in flight at most, {limit}")
            .AddColumn("")
            .AddColumn(new TableColumn("").RightAligned())
            .HideHeaders();
        table.AddRow("elapsed", $"{engine.Elapsed.TotalSeconds:F1} s");
        table.AddRow("sent", $"{stats.Sent:N0}");
        table.AddRow("acknowledged", $"[green]{stats.Acknowledged:N0}[/]");
        table.AddRow("rejected", stats.Rejected > 0 ? $"[yellow]{stats.Rejected:N0}[/]" : "0");
        table.AddRow("errors", stats.Errors > 0 ? $"[red]{stats.Errors:N0}[/]" : "0");
        table.AddRow("retries (503)", $"{stats.Retries503:N0}");
        table.AddRow("retries (429)", $"{stats.Retries429:N0}");
        table.AddRow("requests in flight", $"{stats.InFlight:N0}");
        table.AddRow("readings/s (acknowledged)", $"{rate:N0}");
        table.AddRow("latency p50 / p99 / max", $"{latency.Percentile(50) / 1000.0:F1} / {latency.Percentile(99) / 1000.0:F1} / {latency.Max / 1000.0:F1} ms");
        return table;
    }
}
