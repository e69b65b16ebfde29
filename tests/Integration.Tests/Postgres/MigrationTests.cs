using System.Net;
using System.Net.Sockets;
using Grains.Abstractions;
using Microsoft.Extensions.Options;
using Runtime.Postgres;

namespace Integration.Tests.Postgres;

[Collection(PostgresCollection.Name)]
public sealed class MigrationTests(PostgresServer server)
{
    private const string Tables = """
        SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'
        """;

    private const string AllTables = "alerts,cluster,commands,minute_aggregates,minute_outside,output_outbox,output_streams,rules,schema_migrations,sensors";

    [Fact]
    public async Task Migrating_twice_applies_each_script_once()
    {
        var connectionString = await server.CreateDatabaseAsync();
        await using var store = PostgresTestSupport.Store(connectionString);

        await store.MigrateAsync(CancellationToken.None);
        var tables = await PostgresTestSupport.ScalarAsync<string>(connectionString, Tables);
        await store.MigrateAsync(CancellationToken.None);

        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], await PostgresTestSupport.ColumnAsync<int>(connectionString, "SELECT version FROM schema_migrations ORDER BY version"));
        Assert.Equal(AllTables, tables);
        Assert.Equal(tables, await PostgresTestSupport.ScalarAsync<string>(connectionString, Tables));
    }

    [Fact]
    public async Task The_tables_of_the_runtime_before_Orleans_are_gone_and_sensors_carry_their_applied_position()
    {
        var connectionString = await server.CreateDatabaseAsync();
        await using var store = PostgresTestSupport.Store(connectionString);

        await store.MigrateAsync(CancellationToken.None);

        foreach (var dropped in new[] { "membership", "leases", "checkpoints", "grains", "applied_keys" })
        {
            Assert.True(await PostgresTestSupport.ScalarAsync<bool>(connectionString, $"SELECT to_regclass('public.{dropped}') IS NULL"), $"public.{dropped} exists");
        }
        // Their indexes went with them.
        Assert.True(await PostgresTestSupport.ScalarAsync<bool>(connectionString, "SELECT to_regclass('public.grains_wakeups') IS NULL"), "public.grains_wakeups exists");
        Assert.True(await PostgresTestSupport.ScalarAsync<bool>(connectionString, "SELECT to_regclass('public.applied_keys_age') IS NULL"), "public.applied_keys_age exists");
        Assert.Equal("bigint,NO,'-1'::integer", await PostgresTestSupport.ScalarAsync<string>(connectionString, """
            SELECT data_type || ',' || is_nullable || ',' || column_default FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = 'sensors' AND column_name = 'applied_position'
            """));

        // A row stored before the column existed (position -1) is replaced by the first summary a silo writes.
        Assert.Equal(1, await PostgresTestSupport.ScalarAsync<int>(connectionString, """
            WITH i AS (INSERT INTO sensors (sensor_id, last_seen_ms, latest, late_count) VALUES ('old', 1, '{}', 0) RETURNING 1) SELECT count(*)::int FROM i
            """));
        await store.WriteAsync([new SensorSummary { SensorId = "old", LastSeenMs = 2, Latest = new() { ["t"] = 1 }, LateCount = 0, AppliedPosition = 0 }], CancellationToken.None);
        Assert.Equal((2L, 1.0), (await store.GetSensorAsync("old", CancellationToken.None)) is { } read ? (read.LastSeenMs, read.Latest["t"]) : default);
    }

    /// <summary>
    /// Script 8: a sensor's row keeps what an operator set of its metadata, and a sensor registered before its first reading
    /// has no last-seen time; a row written before the script reads back with neither.
    /// </summary>
    [Fact]
    public async Task Sensors_carry_operator_metadata_and_may_have_no_last_seen_time()
    {
        var connectionString = await server.CreateDatabaseAsync();
        await using var store = PostgresTestSupport.Store(connectionString);

        await store.MigrateAsync(CancellationToken.None);

        Assert.Equal("last_seen_ms bigint YES,operator_metadata jsonb YES", await PostgresTestSupport.ScalarAsync<string>(connectionString, """
            SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ',' ORDER BY column_name) FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = 'sensors' AND column_name IN ('last_seen_ms', 'operator_metadata')
            """));
        Assert.Equal(1, await PostgresTestSupport.ScalarAsync<int>(connectionString, """
            WITH i AS (INSERT INTO sensors (sensor_id, last_seen_ms, latest, late_count) VALUES ('before', 1, '{}', 0) RETURNING 1) SELECT count(*)::int FROM i
            """));
        var before = await store.GetSensorAsync("before", CancellationToken.None);
        Assert.Equal((1L, (OperatorMetadata?)null), (before!.LastSeenMs, before.OperatorMetadata));

        await store.WriteAsync([new SensorSummary
        {
            SensorId = "registered", LastSeenMs = null, Latest = [], LateCount = 0, AppliedPosition = 0,
            Metadata = new SensorMetadata { Location = "roof" }, OperatorMetadata = new OperatorMetadata { Location = "roof" },
        }], CancellationToken.None);
        var registered = await store.GetSensorAsync("registered", CancellationToken.None);
        Assert.Equal(((long?)null, "roof", "roof"), (registered!.LastSeenMs, registered.Metadata!.Location, registered.OperatorMetadata!.Location));
    }

    [Fact]
    public async Task The_minute_indexes_are_block_range_indexes_for_retention()
    {
        var (store, connectionString) = await server.MigratedStoreAsync();
        await using var _ = store;

        Assert.Equal(["minute_aggregates_minute brin", "minute_outside_age brin"], await PostgresTestSupport.ColumnAsync<string>(connectionString,
            "SELECT c.relname || ' ' || a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relname IN ('minute_aggregates_minute', 'minute_outside_age') ORDER BY 1"));
    }

    [Fact]
    public async Task Concurrent_migrations_from_several_processes_are_serialized()
    {
        var connectionString = await server.CreateDatabaseAsync();
        var stores = Enumerable.Range(0, 4).Select(_ => PostgresTestSupport.Store(connectionString)).ToArray();
        try
        {
            await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync(CancellationToken.None))));
        }
        finally
        {
            foreach (var store in stores)
            {
                await store.DisposeAsync();
            }
        }

        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], await PostgresTestSupport.ColumnAsync<int>(connectionString, "SELECT version FROM schema_migrations ORDER BY version"));
        Assert.Equal(AllTables, await PostgresTestSupport.ScalarAsync<string>(connectionString, Tables));
    }

    [Fact]
    public async Task An_unreachable_server_gives_an_error_naming_it_without_the_password()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        await using var store = PostgresTestSupport.Store(
            $"Host=127.0.0.1;Port={port};Database=iot_missing;Username=iot;Password=S3cret-pa55;Timeout=3");

        var error = await Assert.ThrowsAsync<PostgresUnavailableException>(() => store.MigrateAsync(CancellationToken.None));

        Assert.StartsWith($"Cannot connect to the PostgreSQL server 127.0.0.1:{port}, database 'iot_missing', user 'iot': ", error.Message);
        Assert.DoesNotContain("S3cret-pa55", error.ToString());
    }

    [Fact]
    public void Options_are_validated()
    {
        var validator = new PostgresOptionsValidator();

        Assert.True(validator.Validate(null, new PostgresOptions { ConnectionString = "Host=db;Database=iot" }).Succeeded);
        Assert.Equal(["Postgres:ConnectionString is required."],
            validator.Validate(null, new PostgresOptions()).Failures);
        Assert.Equal(["Postgres:ConnectionString must name a Host."],
            validator.Validate(null, new PostgresOptions { ConnectionString = "Database=iot" }).Failures);
        Assert.Equal(["Postgres:AggregateRetention must be positive."],
            validator.Validate(null, new PostgresOptions { ConnectionString = "Host=db", AggregateRetention = TimeSpan.Zero }).Failures);
        var invalid = validator.Validate(null, new PostgresOptions { ConnectionString = "Host=db;Password=hunter2;Bogus=1" });
        Assert.StartsWith("Postgres:ConnectionString is not a valid connection string: ", Assert.Single(invalid.Failures!));
        Assert.DoesNotContain("hunter2", invalid.FailureMessage);
        Assert.Throws<OptionsValidationException>(() => PostgresTestSupport.Store(""));
    }
}
