namespace Runtime.Postgres;

/// <summary>
/// The schema, as numbered scripts applied in order by <see cref="PostgresStore.MigrateAsync"/>. A script, once
/// released, never changes: a change of schema is a new script with the next number.
/// </summary>
/// <remarks>
/// Times of the records (minutes, alerts, commands) are epoch-millisecond bigints, as in the records; delivery times are
/// timestamptz from the database clock (now()). Ids are COLLATE "C" so that ORDER BY is ordinal, as in the in-memory
/// store. Scripts 1, 3 and 4 made the tables of the runtime that preceded Orleans; script 6 drops them.
/// </remarks>
internal static class PostgresMigrations
{
    /// <summary>Key of the transaction-scoped advisory lock that serializes migrations ("OIotMigr").</summary>
    public const long AdvisoryLockKey = 0x4F49_6F74_4D69_6772;

    public const string CreateMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer     PRIMARY KEY,
            name       text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        """;

    public static readonly IReadOnlyList<(int Version, string Name, string Sql)> All =
    [
        (1, "runtime: cluster, membership, leases, checkpoints, grains", V1Runtime),
        (2, "read models: rules, sensors, minute aggregates, alerts, commands", V2ReadModels),
        (3, "idempotency keys of applied telemetry", V3AppliedKeys),
        (4, "load counters of the silos in their heartbeat", V4SiloCounters),
        (5, "command history per device", V5CommandHistory),
        (6, "grains on Orleans: the home-made runtime's tables go, sensors carry their applied log position", V6Orleans),
        (7, "outbox of the output streams", V7OutputOutbox),
        (8, "sensor metadata set by operators; sensors registered before their first reading", V8OperatorMetadata),
        (9, "outside conditions joined into minute aggregates", V9MinuteOutside),
        (10, "minute indexes for retention only: block-range (BRIN) instead of B-tree", V10MinuteBrin),
    ];

    /// <summary>
    /// The minute indexes serve retention (every row older than a cutoff), not lookups of one minute: as B-trees the
    /// planner looked keys up through them when its statistics were older than the rows (a table analyzed with five rows a
    /// minute, then 200,000 written for one), reading a whole minute per key of a fleet's close (5,000 keys: 17 s). A
    /// block-range index on a column that grows with insertion is small, finds the old rows as well, and cannot serve a
    /// lookup per key; the writer's lookups go by the primary keys.
    /// </summary>
    private const string V10MinuteBrin = """
        DROP INDEX minute_aggregates_minute;
        CREATE INDEX minute_aggregates_minute ON minute_aggregates USING brin (minute_ms);
        DROP INDEX minute_outside_age;
        CREATE INDEX minute_outside_age ON minute_outside USING brin (minute_ms);
        """;

    /// <summary>The outside conditions of the sensor's location joined into a closed minute: one row per outside metric.</summary>
    private const string V9MinuteOutside = """
        CREATE TABLE minute_outside (
            sensor_id text   COLLATE "C" NOT NULL,
            minute_ms bigint NOT NULL,
            metric    text   COLLATE "C" NOT NULL,
            value     float8 NOT NULL,
            PRIMARY KEY (sensor_id, minute_ms, metric)
        );
        CREATE INDEX minute_outside_age ON minute_outside (minute_ms);
        """;

    /// <summary>
    /// A sensor's row keeps what an operator set of its metadata (its location, model and metadata columns hold the
    /// effective values, the operator's winning), and a sensor an operator registered before its first reading has no
    /// last-seen time.
    /// </summary>
    private const string V8OperatorMetadata = """
        ALTER TABLE sensors ADD COLUMN operator_metadata jsonb;
        ALTER TABLE sensors ALTER COLUMN last_seen_ms DROP NOT NULL;
        """;

    /// <summary>
    /// The outputs the read-model writer queued for the output streams, in the transaction of their read models; the
    /// primary key drops a replay's repeat. The relay numbers rows (seq, per stream, from output_streams) before it appends
    /// them, appends in that order, then marks them appended and drops their bodies; rows stay for the dedupe window.
    /// </summary>
    private const string V7OutputOutbox = """
        CREATE TABLE output_outbox (
            stream     smallint    NOT NULL,
            output_id  text        COLLATE "C" NOT NULL,
            type       text        NOT NULL,
            body       bytea,
            n          bigint      GENERATED ALWAYS AS IDENTITY,
            seq        bigint,
            appended   boolean     NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (stream, output_id)
        );
        CREATE INDEX output_outbox_queued ON output_outbox (stream, n) WHERE seq IS NULL;
        CREATE INDEX output_outbox_numbered ON output_outbox (stream, seq) WHERE seq IS NOT NULL AND NOT appended;
        CREATE INDEX output_outbox_age ON output_outbox (created_at) WHERE appended;
        CREATE TABLE output_streams (
            stream   smallint PRIMARY KEY,
            next_seq bigint   NOT NULL
        );
        INSERT INTO output_streams (stream, next_seq) VALUES (0, 1), (1, 1), (2, 1);
        """;

    /// <summary>
    /// Orleans now holds membership (Redis clustering) and grain state (Redis storage), and each partition's reader stores
    /// its position as grain state: membership, leases, checkpoints, grains and applied keys are dropped. The cluster row
    /// stays (the partition count every node checks). A sensor's row records the log position it reflects, so an older
    /// summary (a replay, a paused silo) never replaces a newer one.
    /// </summary>
    private const string V6Orleans = """
        DROP TABLE membership, leases, checkpoints, grains, applied_keys;
        ALTER TABLE sensors ADD COLUMN applied_position bigint NOT NULL DEFAULT -1;
        """;

    private const string V4SiloCounters = """
        ALTER TABLE membership
            ADD COLUMN readings_applied bigint NOT NULL DEFAULT 0,
            ADD COLUMN alerts_opened    bigint NOT NULL DEFAULT 0;
        """;

    private const string V3AppliedKeys = """
        CREATE TABLE applied_keys (
            partition  integer NOT NULL,
            key        text    COLLATE "C" NOT NULL,
            applied_ms bigint  NOT NULL,
            PRIMARY KEY (partition, key)
        );
        CREATE INDEX applied_keys_age ON applied_keys (partition, applied_ms);
        """;

    private const string V1Runtime = """
        CREATE TABLE cluster (
            id         smallint    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
            partitions integer     NOT NULL CHECK (partitions > 0),
            created_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE membership (
            silo_id        text COLLATE "C" PRIMARY KEY,
            address        text        NOT NULL,
            started_at     timestamptz NOT NULL,
            last_heartbeat timestamptz NOT NULL,
            activations    jsonb       NOT NULL,
            seen_at        timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE leases (
            partition  integer     PRIMARY KEY,
            owner      text COLLATE "C",
            epoch      bigint      NOT NULL DEFAULT 0,
            expires_at timestamptz NOT NULL DEFAULT '-infinity'
        );

        CREATE TABLE checkpoints (
            partition      integer     PRIMARY KEY,
            epoch          bigint      NOT NULL,
            next_offset    bigint      NOT NULL,
            stream_time_ms bigint      NOT NULL,
            rules          jsonb       NOT NULL,
            committed_at   timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE grains (
            partition  integer          NOT NULL,
            grain_type text COLLATE "C" NOT NULL,
            grain_key  text COLLATE "C" NOT NULL,
            state      bytea            NOT NULL,
            wake_at_ms bigint,
            received   jsonb,
            PRIMARY KEY (partition, grain_type, grain_key)
        );

        CREATE INDEX grains_wakeups ON grains (partition, wake_at_ms) WHERE wake_at_ms IS NOT NULL;
        """;

    private const string V2ReadModels = """
        CREATE TABLE rules (
            rule_id    text COLLATE "C" PRIMARY KEY,
            version    bigint           NOT NULL,
            definition jsonb            NOT NULL,
            updated_at timestamptz      NOT NULL DEFAULT now()
        );

        CREATE SEQUENCE rule_versions AS bigint;

        CREATE TABLE sensors (
            sensor_id    text COLLATE "C" PRIMARY KEY,
            last_seen_ms bigint           NOT NULL,
            location     text,
            model        text,
            metadata     jsonb,
            latest       jsonb            NOT NULL,
            attributes   jsonb,
            late_count   bigint           NOT NULL
        );

        CREATE TABLE minute_aggregates (
            sensor_id text COLLATE "C" NOT NULL,
            minute_ms bigint           NOT NULL,
            metric    text COLLATE "C" NOT NULL,
            count     bigint           NOT NULL,
            min       double precision NOT NULL,
            max       double precision NOT NULL,
            sum       double precision NOT NULL,
            first     double precision NOT NULL,
            last      double precision NOT NULL,
            PRIMARY KEY (sensor_id, minute_ms, metric)
        );

        CREATE INDEX minute_aggregates_minute ON minute_aggregates (minute_ms);

        CREATE TABLE alerts (
            alert_id           text COLLATE "C" PRIMARY KEY,
            rule_id            text COLLATE "C" NOT NULL,
            rule_name          text             NOT NULL,
            rule_version       bigint           NOT NULL,
            sensor_id          text COLLATE "C" NOT NULL,
            severity           text             NOT NULL,
            state              text             NOT NULL,
            started_at_ms      bigint           NOT NULL,
            opened_at_ms       bigint           NOT NULL,
            resolved_at_ms     bigint,
            resolved_reason    text,
            acknowledged_at_ms bigint,
            acknowledged_by    text,
            value              double precision,
            threshold          double precision,
            message            text             NOT NULL
        );

        CREATE INDEX alerts_opened ON alerts (opened_at_ms DESC, alert_id);
        CREATE INDEX alerts_rule ON alerts (rule_id, opened_at_ms DESC, alert_id);
        CREATE INDEX alerts_sensor ON alerts (sensor_id, opened_at_ms DESC, alert_id);
        CREATE INDEX alerts_open ON alerts (opened_at_ms DESC, alert_id) WHERE state = 'Open';

        CREATE TABLE commands (
            seq           bigint GENERATED ALWAYS AS IDENTITY,
            command_id    text COLLATE "C" PRIMARY KEY,
            device_id     text COLLATE "C" NOT NULL,
            command       text             NOT NULL,
            parameters    jsonb,
            rule_id       text COLLATE "C" NOT NULL,
            alert_id      text COLLATE "C" NOT NULL,
            created_at_ms bigint           NOT NULL,
            delivered_at  timestamptz
        );

        CREATE INDEX commands_pending ON commands (device_id, seq) WHERE delivered_at IS NULL;
        """;

    /// <summary>The history of a device's commands, newest first (commands_pending covers only undelivered ones).</summary>
    private const string V5CommandHistory = """
        CREATE INDEX commands_device ON commands (device_id, seq DESC);
        """;
}
