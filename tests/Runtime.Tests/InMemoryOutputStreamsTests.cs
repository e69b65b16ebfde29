using Grains.Abstractions;
using Runtime.InMemory;
using Runtime.Outputs;

namespace Runtime.Tests;

/// <summary>The embedded output streams: written through the store, each id once, bounded, read from an offset.</summary>
public sealed class InMemoryOutputStreamsTests
{
    private static MinuteAggregate Aggregate(string sensor, long minuteMs) => new()
    {
        SensorId = sensor,
        MinuteMs = minuteMs,
        Metrics = [new MetricAggregate { Metric = "t", Count = 1, Min = 1, Max = 1, Sum = 1, First = 1, Last = 1 }],
    };

    private static async Task<string[]> IdsAsync(IOutputStreams streams, OutputStream stream, long from = 0, int limit = 100) =>
        (await streams.ReadAsync(stream, from, limit, CancellationToken.None)).Records.Select(r => $"{r.Offset}:{r.Id}").ToArray();

    /// <summary>A cluster that keeps only some streams (Outputs:Streams) appends nothing to the others.</summary>
    [Fact]
    public async Task Streams_not_kept_get_nothing()
    {
        var options = new OutputOptions { Streams = " alerts , commands" };
        Assert.Empty(options.Validate());
        var streams = new InMemoryOutputStreams(100, options.KeptStreams());
        var command = new DeviceCommand { CommandId = "a1/open", DeviceId = "s1", Command = "c", RuleId = "r", AlertId = "a1", CreatedAtMs = 0 };

        streams.Append([Aggregate("s1", 0), command, Aggregate("s2", 0)]);

        Assert.Empty(await IdsAsync(streams, OutputStream.Aggregates));
        Assert.Equal(["0:a1/open"], await IdsAsync(streams, OutputStream.Commands));
    }

    [Fact]
    public void The_streams_kept_are_named_in_Outputs_Streams_and_other_names_are_refused()
    {
        Assert.Equal([OutputStream.Aggregates, OutputStream.Alerts, OutputStream.Commands], new OutputOptions().KeptStreams());
        Assert.Equal([OutputStream.Alerts, OutputStream.Commands], new OutputOptions { Streams = "commands,alerts" }.KeptStreams());
        Assert.Empty(new OutputOptions { Streams = "none" }.KeptStreams());
        Assert.Empty(new OutputOptions { Streams = "none" }.Validate());
        Assert.Equal("none", new OutputOptions { Streams = "none" }.DescribeStreams());
        // A value left blank (an empty environment variable) is refused: it must not stop every stream.
        Assert.Equal(["Outputs:Streams must name the output streams to keep (aggregates, alerts, commands), comma-separated, or be none"],
            new OutputOptions { Streams = " " }.Validate());
        Assert.Equal(["Outputs:Streams: 'metrics' is not an output stream (aggregates, alerts, commands, or none)"],
            new OutputOptions { Streams = "aggregates,metrics" }.Validate());
        Assert.Equal(["Outputs:Streams: none cannot be listed with streams"], new OutputOptions { Streams = "none,alerts" }.Validate());
    }

    [Fact]
    public async Task The_store_appends_aggregates_alert_events_and_commands_once_each_and_no_sensor_summaries()
    {
        var streams = new InMemoryOutputStreams(100);
        var store = new InMemoryStore(TimeProvider.System, streams);
        var alert = new Alert
        {
            Id = "a1", RuleId = "r", RuleName = "R", RuleVersion = 1, SensorId = "s1", Severity = Severity.Info, State = AlertState.Open,
            StartedAtMs = 0, OpenedAtMs = 0, Message = "m",
        };
        var command = new DeviceCommand { CommandId = "a1/open", DeviceId = "s1", Command = "c", RuleId = "r", AlertId = "a1", CreatedAtMs = 0 };
        var summary = new SensorSummary { SensorId = "s1", LastSeenMs = 0, Latest = [], LateCount = 0 };

        await store.WriteAsync([summary, Aggregate("s1", 0), new AlertEvent { Kind = AlertEventKind.Opened, Alert = alert }, command], CancellationToken.None);
        // A replay writes them again, with the resolution.
        await store.WriteAsync([Aggregate("s1", 0), new AlertEvent { Kind = AlertEventKind.Opened, Alert = alert }, command,
            new AlertEvent { Kind = AlertEventKind.Resolved, Alert = alert with { State = AlertState.Resolved, ResolvedAtMs = 5 } }], CancellationToken.None);

        Assert.Equal(["0:s1@0"], await IdsAsync(streams, OutputStream.Aggregates));
        Assert.Equal(["0:a1/Opened", "1:a1/Resolved"], await IdsAsync(streams, OutputStream.Alerts));
        Assert.Equal(["0:a1/open"], await IdsAsync(streams, OutputStream.Commands));
        var resolved = (await streams.ReadAsync(OutputStream.Alerts, 1, 1, CancellationToken.None)).Records.Single();
        Assert.Equal("alert.resolved", resolved.Type);
        Assert.Contains("\"resolvedAt\":\"1970-01-01T00:00:00.005Z\"", System.Text.Encoding.UTF8.GetString(resolved.Body), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_full_stream_drops_its_oldest_messages_and_offsets_keep_counting()
    {
        var streams = new InMemoryOutputStreams(3);
        streams.Append(Enumerable.Range(0, 5).Select(i => Aggregate("s", i * 60_000L)).ToArray());

        Assert.Equal(["2:s@120000", "3:s@180000", "4:s@240000"], await IdsAsync(streams, OutputStream.Aggregates));
        Assert.Equal(["3:s@180000"], await IdsAsync(streams, OutputStream.Aggregates, from: 3, limit: 1));
        var past = await streams.ReadAsync(OutputStream.Aggregates, 9, 10, CancellationToken.None);
        Assert.Equal((0, 5L), (past.Records.Count, past.End));
        // The id of a dropped message is forgotten: it would be appended again (the window is the capacity).
        streams.Append([Aggregate("s", 0), Aggregate("s", 240_000)]);
        Assert.Equal(["4:s@240000", "5:s@0"], await IdsAsync(streams, OutputStream.Aggregates, from: 4));
    }
}
