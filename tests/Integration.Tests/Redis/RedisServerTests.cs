using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;
using StackExchange.Redis.KeyspaceIsolation;

namespace Integration.Tests.Redis;

/// <summary>The private Redis server of the tests: its configuration, durability across restarts and crashes, and outages.
/// Each test that stops or kills a server starts its own (a start takes a few milliseconds).</summary>
public sealed class RedisServerTests
{
    [Fact]
    public async Task A_value_written_survives_a_graceful_stop_and_restart()
    {
        await using var server = new RedisServer();
        await server.InitializeAsync();
        var port = server.Port;
        await using (var redis = await server.ConnectAsync())
        {
            var db = redis.GetDatabase();
            Assert.True(await db.StringSetAsync("greeting", "hello"));
            Assert.Equal(3, await db.ListRightPushAsync("list", ["a", "b", "c"]));
        }

        await server.StopAsync();
        Assert.False(server.IsRunning);
        await server.RestartAsync();

        Assert.Equal(port, server.Port);
        await using (var redis = await server.ConnectAsync())
        {
            var db = redis.GetDatabase();
            Assert.Equal("hello", await db.StringGetAsync("greeting"));
            Assert.Equal(["a", "b", "c"], (await db.ListRangeAsync("list")).Select(v => v.ToString()));
        }
        Assert.True(Directory.EnumerateFiles(server.DataDirectory, "*.aof", SearchOption.AllDirectories).Any(), "no AOF file in the data directory");
        Assert.False(File.Exists(Path.Combine(server.DataDirectory, "dump.rdb")), "an RDB snapshot was saved");
    }

    [Fact]
    public async Task With_appendfsync_always_every_acknowledged_write_survives_a_kill()
    {
        await using var server = new RedisServer { AppendFsync = RedisAppendFsync.Always };
        await server.InitializeAsync();
        const int writes = 200;
        await using (var redis = await server.ConnectAsync())
        {
            var db = redis.GetDatabase();
            Assert.Equal("always", await ConfigAsync(server, "appendfsync"));
            for (var i = 0; i < writes; i++)
            {
                Assert.True(await db.StringSetAsync($"k{i}", i));
                Assert.Equal(i + 1, await db.StringIncrementAsync("counter"));
            }
            // SIGKILL right after the last acknowledgement, with the client still connected.
            await server.KillAsync();
        }
        Assert.False(server.IsRunning);

        await server.RestartAsync();

        await using (var redis = await server.ConnectAsync())
        {
            var db = redis.GetDatabase();
            Assert.Equal(writes, (int)await db.StringGetAsync("counter"));
            var values = await db.StringGetAsync(Enumerable.Range(0, writes).Select(i => (RedisKey)$"k{i}").ToArray());
            Assert.Equal(Enumerable.Range(0, writes), values.Select(v => (int)v));
        }
    }

    [Fact]
    public async Task Connections_are_refused_while_stopped_and_a_client_reconnects_after_the_restart()
    {
        await using var server = new RedisServer();
        await server.InitializeAsync();
        // By default a command sent during the outage waits for a reconnection (5 s) before it fails, and reconnection
        // attempts back off exponentially: fail fast and retry every 100 ms to keep the test short.
        var options = ConfigurationOptions.Parse(server.ConnectionString);
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ReconnectRetryPolicy = new LinearRetry(100);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(options);
        var db = redis.GetDatabase();
        await db.StringSetAsync("before", "1");

        await server.StopAsync();

        var refused = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, server.Port);
        });
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await Assert.ThrowsAsync<RedisConnectionException>(() =>
            ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{server.Port},abortConnect=true,connectTimeout=1000,connectRetry=0"));
        await Assert.ThrowsAsync<RedisConnectionException>(() => db.StringGetAsync("before"));

        await server.RestartAsync();

        // The client connected before the outage (abortConnect=false) reconnects by itself.
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                Assert.Equal("1", await db.StringGetAsync("before"));
                break;
            }
            catch (RedisConnectionException) when (clock.Elapsed < TimeSpan.FromSeconds(15))
            {
                await Task.Delay(50);
            }
        }
    }

    [Fact]
    public async Task FlushAll_deletes_every_key()
    {
        await using var server = new RedisServer();
        await server.InitializeAsync();
        await using var redis = await server.ConnectAsync();
        var db = redis.GetDatabase();
        await db.StringSetAsync("a", "1");
        await redis.GetDatabase(3).StringSetAsync("b", "2");

        await server.FlushAllAsync();

        Assert.False(await db.KeyExistsAsync("a"));
        Assert.False(await redis.GetDatabase(3).KeyExistsAsync("b"));
    }

    internal static async Task<string?> ConfigAsync(RedisServer server, string name)
    {
        await using var admin = await server.ConnectAsync(allowAdmin: true);
        var entries = await admin.GetServer("127.0.0.1", server.Port).ConfigGetAsync(name);
        return entries.SingleOrDefault(e => e.Key == name).Value;
    }
}

/// <summary>The shared server of the Redis collection: its configuration, and key prefixes that keep tests apart.</summary>
[Collection(RedisCollection.Name)]
public sealed class SharedRedisServerTests(RedisServer server)
{
    [Fact]
    public async Task Runs_on_loopback_with_the_append_only_file_and_no_snapshots()
    {
        Assert.Equal("127.0.0.1", await RedisServerTests.ConfigAsync(server, "bind"));
        Assert.Equal("yes", await RedisServerTests.ConfigAsync(server, "appendonly"));
        Assert.Equal("everysec", await RedisServerTests.ConfigAsync(server, "appendfsync"));
        Assert.Equal("", await RedisServerTests.ConfigAsync(server, "save"));
        Assert.Equal("", await RedisServerTests.ConfigAsync(server, "requirepass"));
        Assert.StartsWith(Path.GetTempPath(), await RedisServerTests.ConfigAsync(server, "dir"));
    }

    [Fact]
    public async Task Key_prefixes_keep_tests_apart()
    {
        await using var redis = await server.ConnectAsync();
        var (first, second) = (RedisServer.NewKeyPrefix(), RedisServer.NewKeyPrefix());
        Assert.NotEqual(first, second);
        var a = redis.GetDatabase().WithKeyPrefix(first);
        var b = redis.GetDatabase().WithKeyPrefix(second);

        await a.StringSetAsync("state", "a");
        await b.StringSetAsync("state", "b");

        Assert.Equal("a", await a.StringGetAsync("state"));
        Assert.Equal("b", await b.StringGetAsync("state"));
    }
}
