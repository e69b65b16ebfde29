using Api.Auth;

namespace Api.Tests;

/// <summary>API keys are found without a timing side channel: fixed-length digests, every configured key compared.</summary>
public sealed class ApiKeyMatchTests
{
    private static readonly List<ApiKeyEntry> Keys =
    [
        new() { Name = "first", Key = "first-key-0123456789", Role = Roles.Operator },
        new() { Name = "middle", Key = "a-much-longer-middle-key-0123456789abcdef", Role = Roles.Device },
        new() { Name = "last", Key = "last-key-0123456789", Role = Roles.Device },
    ];

    [Theory]
    [InlineData("first-key-0123456789", "first")]
    [InlineData("a-much-longer-middle-key-0123456789abcdef", "middle")]
    [InlineData("last-key-0123456789", "last")]
    public void Finds_the_entry_of_the_presented_key(string presented, string name) =>
        Assert.Equal(name, ApiKeyMatch.Find(Keys, presented)?.Name);

    [Theory]
    [InlineData("first-key-012345678")] // a prefix
    [InlineData("first-key-01234567890")] // one character more
    [InlineData("FIRST-KEY-0123456789")]
    [InlineData("x")]
    public void Finds_nothing_for_any_other_key(string presented) => Assert.Null(ApiKeyMatch.Find(Keys, presented));

    [Theory]
    [InlineData("first-key-0123456789")] // matches the first entry: the others are still compared
    [InlineData("last-key-0123456789")]
    [InlineData("no-such-key")] // shorter than every key: still compared with each, at the digest's length
    public void Compares_every_configured_key_once_at_the_same_length(string presented)
    {
        var lengths = new List<(int Configured, int Presented)>();
        ApiKeyMatch.Find(Keys, presented, (configured, given) =>
        {
            lengths.Add((configured.Length, given.Length));
            return configured.SequenceEqual(given);
        });

        Assert.Equal([(32, 32), (32, 32), (32, 32)], lengths);
    }
}
