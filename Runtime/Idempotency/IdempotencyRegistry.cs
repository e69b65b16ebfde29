using System.Runtime.InteropServices;
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

    /// <summary>A new key, but the caller already has as many keys remembered as it may: refused, nothing remembered.</summary>
    TooMany,
}

/// <summary>
/// The Idempotency-Keys of telemetry requests, scoped to the caller (the API key's name: two callers never share a key)
/// and remembered with a fingerprint of the body for <see cref="SiloOptions.IdempotencyWindow"/>, as long as the
/// partitions remember the key. In memory (embedded mode) or in Redis with the keys expiring there (durable mode).
/// </summary>
public interface IIdempotencyRegistry
{
    /// <param name="maxKeysPerCaller">How many keys a caller may have remembered at once (within the window).</param>
    Task<IdempotencyClaim> ClaimAsync(IdempotencyKey key, int maxKeysPerCaller, CancellationToken cancellationToken);
}

/// <summary>
/// A caller's key and its body's fingerprint, hashed. <see cref="Scoped"/> (caller and key) is what the registry
/// remembers, counted per <see cref="Caller"/>; <see cref="InLog"/> (caller, key and body) is what the partitions
/// de-duplicate on, so that a body the registry could not check (its store down) is never taken for a resend of another
/// and dropped.
/// </summary>
public readonly record struct IdempotencyKey(string Caller, string Scoped, string Fingerprint)
{
    public string InLog => Scoped + ":" + Fingerprint;

    public static IdempotencyKey For(string caller, string key, ReadOnlySpan<byte> body)
    {
        var scoped = SHA256.HashData(Encoding.UTF8.GetBytes(caller + "\u0001" + key));
        return new IdempotencyKey(Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(caller))), Convert.ToBase64String(scoped),
            Convert.ToBase64String(SHA256.HashData(body)));
    }
}

public sealed class InMemoryIdempotencyRegistry(IOptions<SiloOptions> options, TimeProvider time) : IIdempotencyRegistry
{
    /// <summary>A caller at its limit prunes the expired keys at most this often (a full pass over the keys).</summary>
    private const long FullPruneIntervalMs = 1_000;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string Caller, string Fingerprint, long AtMs)> _keys = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _keysPerCaller = new(StringComparer.Ordinal);
    private long _prunedAtMs;

    public Task<IdempotencyClaim> ClaimAsync(IdempotencyKey key, int maxKeysPerCaller, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var window = (long)options.Value.IdempotencyWindow.TotalMilliseconds;
        lock (_gate)
        {
            if (now - _prunedAtMs > window / 10)
            {
                Prune(now, window);
            }

            if (_keys.TryGetValue(key.Scoped, out var existing) && now - existing.AtMs <= window)
            {
                return Task.FromResult(existing.Fingerprint == key.Fingerprint ? IdempotencyClaim.Repeat : IdempotencyClaim.Conflict);
            }

            if (existing.Caller is null && _keysPerCaller.GetValueOrDefault(key.Caller) >= maxKeysPerCaller && now - _prunedAtMs >= FullPruneIntervalMs)
            {
                Prune(now, window); // the caller's count may hold keys expired since the last pass
            }

            if (existing.Caller is null && _keysPerCaller.GetValueOrDefault(key.Caller) >= maxKeysPerCaller)
            {
                return Task.FromResult(IdempotencyClaim.TooMany);
            }

            if (existing.Caller is null)
            {
                _keysPerCaller[key.Caller] = _keysPerCaller.GetValueOrDefault(key.Caller) + 1;
            }

            _keys[key.Scoped] = (key.Caller, key.Fingerprint, now);
            return Task.FromResult(IdempotencyClaim.New);
        }
    }

    private void Prune(long now, long window)
    {
        foreach (var (scoped, entry) in _keys)
        {
            if (now - entry.AtMs > window)
            {
                _keys.Remove(scoped);
                if (--CollectionsMarshal.GetValueRefOrNullRef(_keysPerCaller, entry.Caller) == 0)
                {
                    _keysPerCaller.Remove(entry.Caller);
                }
            }
        }

        _prunedAtMs = now;
    }
}

/// <summary>
/// The registry in Redis: one key per claim, set only when absent, expiring after the window; and per caller a sorted set
/// of its keys by claim time, whose members older than the window are dropped before it is counted.
/// </summary>
public sealed class RedisIdempotencyRegistry(IOptions<RedisOptions> redis, IOptions<SiloOptions> options,
    IOptions<Orleans.Configuration.ClusterOptions> cluster, TimeProvider time) : IIdempotencyRegistry, IAsyncDisposable
{
    // KEYS: the claim, the caller's set. ARGV: fingerprint, window (ms), now (ms), the caller's limit.
    private const string ClaimScript = """
        local stored = redis.call('GET', KEYS[1])
        if stored then
          if stored == ARGV[1] then return 1 else return 2 end
        end
        local now = tonumber(ARGV[3])
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
        if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
          return 3
        end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        redis.call('ZADD', KEYS[2], now, KEYS[1])
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
        return 0
        """;

    private readonly Lazy<Task<ConnectionMultiplexer>> _connection = new(() =>
    {
        var configuration = ConfigurationOptions.Parse(redis.Value.ConnectionString);
        configuration.AbortOnConnectFail = false;
        return ConnectionMultiplexer.ConnectAsync(configuration);
    });

    public async Task<IdempotencyClaim> ClaimAsync(IdempotencyKey key, int maxKeysPerCaller, CancellationToken cancellationToken)
    {
        var connection = await _connection.Value;
        var service = cluster.Value.ServiceId;
        var result = (int)await connection.GetDatabase().ScriptEvaluateAsync(ClaimScript,
            [(RedisKey)$"{service}/idempotency/{key.Scoped}", (RedisKey)$"{service}/idempotency-callers/{key.Caller}"],
            [key.Fingerprint, (long)options.Value.IdempotencyWindow.TotalMilliseconds, time.GetUtcNow().ToUnixTimeMilliseconds(), maxKeysPerCaller]);
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
