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
        var target = settings.TotalRate > 0 ? $"{settings.TotalRate:N0}/s" : "max";
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"[bold]{settings.Sensors:N0} sensors → {Markup.Escape(settings.Url.ToString())}[/] ({settings.FormatName}, batch {settings.Batch}, rate {target})")
            .AddColumn("elapsed").AddColumn("sent").AddColumn("acknowledged").AddColumn("rejected").AddColumn("errors")
            .AddColumn("retries").AddColumn("in flight").AddColumn("readings/s").AddColumn("p50 ms").AddColumn("p99 ms").AddColumn("max ms");
        foreach (var column in table.Columns)
        {
            column.RightAligned();
        }
        table.AddRow(
            $"{engine.Elapsed.TotalSeconds:F1} s",
            $"{stats.Sent:N0}",
            $"[green]{stats.Acknowledged:N0}[/]",
            stats.Rejected > 0 ? $"[yellow]{stats.Rejected:N0}[/]" : "0",
            stats.Errors > 0 ? $"[red]{stats.Errors:N0}[/]" : "0",
            $"{stats.Retries503:N0}",
            $"{stats.InFlight:N0}",
            $"{rate:N0}",
            $"{latency.Percentile(50) / 1000.0:F2}",
            $"{latency.Percentile(99) / 1000.0:F2}",
            $"{latency.Max / 1000.0:F2}");
        return table;
    }
}
