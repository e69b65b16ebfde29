using Grains;
using Grains.Abstractions;

namespace Grains.Tests;

public sealed class PresenceTests
{
    private static DeviceConnection On(string node, long sinceMs, long leaseUntilMs) => new(node, sinceMs, "5", leaseUntilMs, sinceMs);

    [Fact]
    public void A_later_connection_replaces_an_earlier_one_and_a_renewal_extends_the_lease()
    {
        var first = On("api-1", 1_000, 10_000);
        Assert.Equal(first, Presence.Connected(null, null, first));

        var elsewhere = On("api-2", 2_000, 11_000);
        Assert.Equal(elsewhere, Presence.Connected(first, null, elsewhere));
        // A late report of the earlier connection does not replace the later one.
        Assert.Equal(elsewhere, Presence.Connected(elsewhere, null, first with { LeaseUntilMs = 20_000 }));

        var renewed = elsewhere with { LeaseUntilMs = 30_000, ReportedAtMs = 15_000 };
        Assert.Equal(renewed, Presence.Connected(elsewhere, null, renewed));
        Assert.Equal(renewed, Presence.Connected(renewed, null, elsewhere));
    }

    [Fact]
    public void A_renewal_that_crossed_the_disconnection_does_not_bring_the_connection_back()
    {
        var connection = On("api-1", 1_000, 10_000);
        Assert.Null(Presence.Connected(null, ("api-1", 1_000), connection with { LeaseUntilMs = 20_000 }));
        // A new connection of the device (a later start) counts.
        var again = On("api-1", 5_000, 20_000);
        Assert.Equal(again, Presence.Connected(null, ("api-1", 1_000), again));
    }

    [Fact]
    public void Only_the_connection_that_ended_is_removed()
    {
        var current = On("api-2", 2_000, 11_000);
        Assert.Null(Presence.Disconnected(current, "api-2", 2_000));
        // The device reconnected elsewhere, or later on the same node, before the old connection's end was reported.
        Assert.Equal(current, Presence.Disconnected(current, "api-1", 2_000));
        Assert.Equal(current, Presence.Disconnected(current, "api-2", 1_000));
        Assert.Null(Presence.Disconnected(null, "api-2", 2_000));
    }

    [Fact]
    public void A_connection_counts_until_its_lease_runs_out()
    {
        var connection = On("api-1", 1_000, 10_000);
        Assert.Equal(connection, Presence.Current(connection, 9_999));
        Assert.Null(Presence.Current(connection, 10_000));
        Assert.Null(Presence.Current(null, 0));
    }

    [Fact]
    public void Node_reports_keep_the_latest_of_each_node_within_its_lease()
    {
        var reports = new Dictionary<string, MqttNodeReport>(StringComparer.Ordinal);
        Presence.Report(reports, new MqttNodeReport("api-2", 5, 1_000, 46_000));
        Presence.Report(reports, new MqttNodeReport("api-1", 3, 1_000, 46_000));
        Presence.Report(reports, new MqttNodeReport("api-1", 4, 16_000, 61_000));
        Presence.Report(reports, new MqttNodeReport("api-1", 9, 2_000, 47_000)); // older: ignored

        Assert.Equal([new MqttNodeReport("api-1", 4, 16_000, 61_000), new MqttNodeReport("api-2", 5, 1_000, 46_000)], Presence.Live(reports, 45_999));
        // api-2 stopped reporting (it died): it no longer counts once its lease ran out, and a later report drops it.
        Assert.Equal([new MqttNodeReport("api-1", 4, 16_000, 61_000)], Presence.Live(reports, 46_000));
        Presence.Report(reports, new MqttNodeReport("api-1", 4, 50_000, 95_000));
        Assert.Equal(["api-1"], reports.Keys);
    }
}
