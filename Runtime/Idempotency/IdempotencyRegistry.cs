using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Runtime.Hosting;
using StackExchange.Redis;

namespace Runtime.Idempotency;

/// <summary>What a telemetry request's Idempotency-Key turned out to be.</summary>
public enum IdempotencyClaim
{
    /// <summary>The caller has not used the key within the window: the request is processed.</summary>
    New,

    /// <summary>The caller used the key for the same body: a resend, processed again (its partitions count it once).</summary>
    Repeat,

    /// <summary>The caller used the key for another body: refused, so that nothing is acknowledged and then dropped.</summary>
    Conflict,
}

/// <summary>
/// The Idempotency-Keys of telemetry requests, scoped to the caller (the API key's name: two callers never share a key)
/// and remembered with a fingerprint of the body for <see cref="SiloOptions.IdempotencyWindow"/>, as long as the
/// partitions remember the key. In memory (embedded mode) or in Redis with the keys expiring there (durable mode).
/// </summary>
public interface IIdempotencyRegistry
{
    Task<IdempotencyClaim> ClaimAsync(IdempotencyKey key, CancellationToken cancellationToken);
}

/// <summary>
/// A caller's key and its body's fingerprint, hashed. <see cref="Scoped"/> (caller and key) is what the registry
/// remembers; <see cref="InLog"/> (caller, key and body) is what the partitions de-duplicate on, so that a body the
/// registry could not check (its store down) is never taken for a resend of another and dropped.
/// </summary>
public readonly record struct IdempotencyKey(string Scoped, string Fingerprint)
{
    public string InLog => Scoped + ":" + Fingerprint;

    public static IdempotencyKey For(string caller, string key, ReadOnlySpan<byte> body)
    {
        var scoped = SHA256.HashData(Encoding.UTF8.GetBytes(caller + "\u0001" + key));
        return new IdempotencyKey(Convert.ToBase64String(scoped), Convert.ToBase64String(SHA256.HashData(body)));
    }
}

public sealed class InMemoryIdempotencyRegistry(IOptions<SiloOptions> options, TimeProvider time) : IIdempotencyRegistry
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string Fingerprint, long AtMs)> _keys = new(StringComparer.Ordinal);
    private long _prunedAtMs;

    public Task<IdempotencyClaim> ClaimAsync(IdempotencyKey key, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var window = (long)options.Value.IdempotencyWindow.TotalMilliseconds;
        lock (_gate)
        {
            if (now - _prunedAtMs > window / 10)
            {
                foreach (var (scoped, entry) in _keys)
                {
                    if (now - entry.AtMs > window)
                    {
                        _keys.Remove(scoped);
                    }
                }

                _prunedAtMs = now;
            }

            if (_keys.TryGetValue(key.Scoped, out var existing) && now - existing.AtMs <= window)
            {
                return Task.FromResult(existing.Fingerprint == key.Fingerprint ? IdempotencyClaim.Repeat : IdempotencyClaim.Conflict);
            }

            _keys[key.Scoped] = (key.Fingerprint, now);
            return Task.FromResult(IdempotencyClaim.New);
        }
    }
}

/// <summary>The registry in Redis: one key per claim, set only when absent, expiring after the window.</summary>
public sealed class RedisIdempotencyRegistry(IOptions<RedisOptions> redis, IOptions<SiloOptions> options, IOptions<Orleans.Configuration.ClusterOptions> cluster)
    : IIdempotencyRegistry, IAsyncDisposable
{
    private const string ClaimScript = """
        local stored = redis.call('GET', KEYS[1])
        if not stored then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
          return 0
        elseif stored == ARGV[1] then
          return 1
        else
          return 2
        end
        """;

    private readonly Lazy<Task<ConnectionMultiplexer>> _connection = new(() =>
    {
        var configuration = ConfigurationOptions.Parse(redis.Value.ConnectionString);
        configuration.AbortOnConnectFail = false;
        return ConnectionMultiplexer.ConnectAsync(configuration);
    });

    public async Task<IdempotencyClaim> ClaimAsync(IdempotencyKey key, CancellationToken cancellationToken)
    {
        var connection = await _connection.Value;
        var result = (int)await connection.GetDatabase().ScriptEvaluateAsync(ClaimScript,
            [(RedisKey)$"{cluster.Value.ServiceId}/idempotency/{key.Scoped}"],
            [key.Fingerprint, (long)options.Value.IdempotencyWindow.TotalMilliseconds]);
        return (IdempotencyClaim)result;
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection.IsValueCreated)
        {
            await (await _connection.Value).DisposeAsync();
        }
    }
}
