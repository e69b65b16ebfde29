using Api.Live;

namespace Api.Tests;

public sealed class LiveSubscriptionsTests
{
    [Fact]
    public void A_group_is_followed_while_any_connection_follows_it()
    {
        var followers = new LiveSubscriptions();
        Assert.False(followers.IsFollowed("sensor:A"));

        followers.Add("sensor:A");
        followers.Add("sensor:A");
        followers.Add("device:A");
        followers.Remove("sensor:A");
        Assert.True(followers.IsFollowed("sensor:A"));

        followers.Remove("sensor:A");
        Assert.False(followers.IsFollowed("sensor:A"));
        Assert.True(followers.IsFollowed("device:A"));

        // Leaving a group one never followed changes nothing (a client may unsubscribe twice).
        followers.Remove("sensor:A");
        followers.Add("sensor:A");
        Assert.True(followers.IsFollowed("sensor:A"));
    }
}
