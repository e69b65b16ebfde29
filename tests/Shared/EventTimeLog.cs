using Grains.Abstractions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Runtime;

namespace Tests.Shared;

/// <summary>
/// The embedded Api's log as the test suites drive it: every telemetry entry is received at the greatest event time
/// posted so far (the receipt clock of a fleet whose devices agree with the server), so a sensor's clock is the event
/// time of its readings, and <see cref="TickAsync"/> moves receipt time on to a given event time, closing what every
/// sensor has due by then. A rule change, a metadata change and outside conditions are received at that time too. Tests take event-time windows in the past and close minutes without waiting for real time.
/// </summary>
public sealed class EventTimeLog(IInboxLog inner) : IInboxLog
{
    private long _nowMs = long.MinValue;

    public int Partitions => inner.Partitions;

    /// <summary>The receipt time reached: the greatest event time posted or ticked so far.</summary>
    public long NowMs => Volatile.Read(ref _nowMs);

    /// <summary>While set, every append fails as a log that cannot take writes does.</summary>
    public bool Unavailable { get; set; }

    private int _lostConfirms;

    /// <summary>
    /// How many of the next appends are stored and then fail as an append whose broker confirm never came (a timeout):
    /// the writer cannot know they were stored.
    /// </summary>
    public int LostConfirms
    {
        get => Volatile.Read(ref _lostConfirms);
        set => Volatile.Write(ref _lostConfirms, value);
    }

    public ValueTask AppendAsync(int partition, IReadOnlyList<InboxEntry> entries, CancellationToken cancellationToken)
    {
        if (Unavailable)
        {
            return ValueTask.FromException(new LogUnavailableException("The test switched the log off."));
        }
        var received = entries.Select(e => e switch
        {
            TelemetryEntry telemetry => telemetry with { ReceivedAtMs = AdvanceTo(telemetry.Readings.Max(r => r.TimestampMs)) },
            RuleChangeEntry change => change with { AtMs = Math.Max(NowMs, 0) },
            SensorMetadataEntry metadata => metadata with { AtMs = Math.Max(NowMs, 0) },
            OutsideConditionsEntry outside => outside with { AtMs = Math.Max(NowMs, 0) },
            _ => e,
        }).ToArray();
        var append = inner.AppendAsync(partition, received, cancellationToken);
        return Volatile.Read(ref _lostConfirms) > 0 && Interlocked.Decrement(ref _lostConfirms) >= 0 ? ConfirmLostAsync(append) : append;
    }

    private static async ValueTask ConfirmLostAsync(ValueTask append)
    {
        await append;
        throw new TimeoutException("The test lost the confirm of an append the log stored.");
    }

    /// <summary>Appends a tick at <paramref name="timeMs"/> to every partition: receipt time reaches it.</summary>
    public Task TickAsync(long timeMs)
    {
        AdvanceTo(timeMs);
        return Task.WhenAll(Enumerable.Range(0, inner.Partitions)
            .Select(p => inner.AppendAsync(p, [new TickEntry(timeMs)], CancellationToken.None).AsTask()));
    }

    public IInboxReader OpenReader(int partition, long fromOffset) => inner.OpenReader(partition, fromOffset);

    /// <summary>While set, asking for a partition's end waits until it is cleared, as a broker too busy to answer does.</summary>
    public bool EndOffsetStalled { get; set; }

    private int _endOffsetRequests;

    /// <summary>How many times a partition's end was asked for (a broker round trip in durable mode).</summary>
    public int EndOffsetRequests => Volatile.Read(ref _endOffsetRequests);

    public async ValueTask<long> EndOffsetAsync(int partition, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _endOffsetRequests);
        while (EndOffsetStalled)
        {
            await Task.Delay(50, cancellationToken);
        }

        return await inner.EndOffsetAsync(partition, cancellationToken);
    }

    public void Committed(int partition, long beforeOffset) => inner.Committed(partition, beforeOffset);

    private long AdvanceTo(long timeMs)
    {
        long current;
        while ((current = Volatile.Read(ref _nowMs)) < timeMs)
        {
            if (Interlocked.CompareExchange(ref _nowMs, timeMs, current) == current)
            {
                return timeMs;
            }
        }

        return current;
    }
}

public static class EventTimeLogHosting
{
    /// <summary>Puts an <see cref="EventTimeLog"/> in front of the embedded Api's in-memory log.</summary>
    public static IWebHostBuilder UseEventTimeLog(this IWebHostBuilder builder) => builder.ConfigureTestServices(services =>
    {
        var registration = services.Last(d => d.ServiceType == typeof(IInboxLog));
        services.Remove(registration);
        services.AddSingleton(sp => new EventTimeLog((IInboxLog)registration.ImplementationFactory!(sp)));
        services.AddSingleton<IInboxLog>(sp => sp.GetRequiredService<EventTimeLog>());
    });
}
