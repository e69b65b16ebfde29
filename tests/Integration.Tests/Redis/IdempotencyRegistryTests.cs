using System.Text;
using Integration.Tests.Postgres;
using Microsoft.Extensions.Options;
using Runtime;
using Runtime.Hosting;
using Runtime.Idempotency;

namespace Integration.Tests.Redis;

/// <summary>
/// The Idempotency-Key registry of either mode, in memory (embedded) or in Redis (durable): a key is its caller's, a
/// resend of the same body is a repeat, another body a conflict, and a caller may have only so many keys remembered at
/// once; keys older than the window are forgotten and free their caller's room.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class IdempotencyRegistryTests(RedisServer redis)
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(15);

    public static TheoryData<string> Kinds => ["memory", "redis"];

    private (IIdempotencyRegistry Registry, ManualTimeProvider Clock) Create(string kind)
    {
        var clock = new ManualTimeProvider(DateTimeOffset.Parse("2026-06-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var silo = Options.Create(new SiloOptions { IdempotencyWindow = Window });
        IIdempotencyRegistry registry = kind == "memory"
            ? new InMemoryIdempotencyRegistry(silo, clock)
            : new RedisIdempotencyRegistry(Options.Create(new RedisOptions { ConnectionString = redis.ConnectionString }), silo,
                Options.Create(new Orleans.Configuration.ClusterOptions { ServiceId = "idem-" + Guid.NewGuid().ToString("N")[..8] }), clock);
        return (registry, clock);
    }

    private static IdempotencyKey Key(string caller, string key, string body) => IdempotencyKey.For(caller, key, Encoding.UTF8.GetBytes(body));

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_caller_has_at_most_its_limit_of_keys_remembered_and_expired_keys_free_room(string kind)
    {
        var (registry, clock) = Create(kind);
        const int max = 3;
        Task<IdempotencyClaim> Claim(string caller, string key, string body) => registry.ClaimAsync(Key(caller, key, body), max, CancellationToken.None);

        Assert.Equal(IdempotencyClaim.New, await Claim("device", "k1", "a"));
        clock.Now += TimeSpan.FromMinutes(5);
        Assert.Equal(IdempotencyClaim.New, await Claim("device", "k2", "b"));
        Assert.Equal(IdempotencyClaim.New, await Claim("device", "k3", "c"));
        // A fourth key is refused, and remembered nowhere: after room is made it is new.
        Assert.Equal(IdempotencyClaim.TooMany, await Claim("device", "k4", "d"));
        // Keys the caller has: a resend and a conflict are answered as before, whatever the limit.
        Assert.Equal(IdempotencyClaim.Repeat, await Claim("device", "k1", "a"));
        Assert.Equal(IdempotencyClaim.Conflict, await Claim("device", "k2", "other body"));
        // Another caller has room of its own, even for the same key.
        Assert.Equal(IdempotencyClaim.New, await Claim("operator", "k4", "d"));

        // k1 expires 15 minutes after its claim: one key of room.
        clock.Now += TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(2);
        Assert.Equal(IdempotencyClaim.New, await Claim("device", "k4", "d"));
        Assert.Equal(IdempotencyClaim.TooMany, await Claim("device", "k5", "e"));

        if (registry is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }
    }
}
