using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Grains.Abstractions;
using Runtime;

namespace Integration.Tests.Postgres;

/// <summary>
/// Feeds the same operations to the reference store (in memory) and to the store under test, asserting that every
/// call returns the same, and compares every query of the read side. Values are compared as canonical JSON (object
/// properties sorted), so dictionaries compare by content and records holding arrays compare by value.
/// </summary>
public sealed class StoreParity<TExpected, TActual>(TExpected expected, TActual actual)
    where TExpected : ILeaseStore, ICheckpointStore, IReadStore, IRuleStore
    where TActual : ILeaseStore, ICheckpointStore, IReadStore, IRuleStore
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        IncludeFields = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    public TExpected Expected { get; } = expected;

    public TActual Actual { get; } = actual;

    /// <summary>Runs the call on both stores and asserts equal results; returns the result of the reference.</summary>
    public async Task<T> BothAsync<T>(string what, Func<IStore, Task<T>> call)
    {
        var e = await call(new Store<TExpected>(Expected));
        var a = await call(new Store<TActual>(Actual));
        AssertSame(what, e, a);
        return e;
    }

    public Task BothAsync(string what, Func<IStore, Task> call) => BothAsync(what, async s =>
    {
        await call(s);
        return true;
    });

    /// <summary>Compares every read of the two stores for the given keys.</summary>
    public async Task AssertSameReadsAsync(int partitions, IReadOnlyList<string> sensorIds, IReadOnlyList<string> alertIds,
        IReadOnlyList<string> ruleIds, long t0)
    {
        foreach (var search in new[] { null, "", "  ", "gar", "GAR", "hw-", "S-", "s-", "x-none", "KITCHEN", "jardín", "JARDÍN", "_", "%" })
        {
            foreach (var (offset, limit) in new[] { (0, 1000), (0, 3), (3, 3), (1000, 5), (2, 0), (-1, 2) })
            {
                await BothAsync($"ListSensors({search}, {offset}, {limit})", s => s.ListSensorsAsync(search, offset, limit, None));
            }
        }
        foreach (var id in sensorIds.Append("missing"))
        {
            await BothAsync($"GetSensor({id})", s => s.GetSensorAsync(id, None));
            foreach (var (from, to) in new[] { (long.MinValue, long.MaxValue), (t0 + 60_000, t0 + 180_000), (t0 + 120_000, t0 + 120_000), (t0 + 1, t0 + 60_001) })
            {
                foreach (var metric in new[] { null, "temperature", "humidity", "no-such-metric" })
                {
                    await BothAsync($"GetAggregates({id}, {from}, {to}, {metric})", s => s.GetAggregatesAsync(id, from, to, metric, None));
                }
            }
        }
        foreach (var state in new AlertState?[] { null, AlertState.Open, AlertState.Resolved })
        {
            foreach (var ruleId in new[] { null, ruleIds[0], ruleIds[^1] })
            {
                foreach (var sensorId in new[] { null, sensorIds[0], sensorIds[^1] })
                {
                    foreach (var (from, to) in new (long?, long?)[] { (null, null), (t0 + 60_000, null), (null, t0 + 120_000), (t0 + 30_000, t0 + 150_000) })
                    {
                        foreach (var limit in new[] { 1000, 3, 0 })
                        {
                            var query = new AlertQuery(state, ruleId, sensorId, from, to, limit);
                            await BothAsync($"QueryAlerts({query})", s => s.QueryAlertsAsync(query, None));
                        }
                    }
                }
            }
        }
        foreach (var id in alertIds.Append("missing"))
        {
            await BothAsync($"GetAlert({id})", s => s.GetAlertAsync(id, None));
        }
        for (var p = 0; p < partitions; p++)
        {
            var partition = p;
            await BothAsync($"LoadPartition({p})", s => s.LoadPartitionAsync(partition, None));
            var ids = sensorIds.Select(GrainId.Sensor).Concat(ruleIds.Select(GrainId.Rule)).Append(GrainId.Sensor("missing")).ToArray();
            await BothAsync($"LoadGrains({p})", async s => (await s.LoadGrainsAsync(partition, ids, None)).OrderBy(g => g.Key.ToString(), StringComparer.Ordinal).ToList());
            foreach (var type in new[] { GrainTypes.Sensor, GrainTypes.Rule, "none" })
            {
                await BothAsync($"LoadGrainIds({p}, {type})", async s => (await s.LoadGrainIdsAsync(partition, type, None)).Select(g => g.ToString()).Order(StringComparer.Ordinal).ToList());
            }
            await BothAsync($"LoadWakeups({p})", async s => (await s.LoadWakeupsAsync(partition, None)).Select(w => $"{w.Id}@{w.WakeAtMs}").Order(StringComparer.Ordinal).ToList());
        }
        await BothAsync("CommittedOffsets", async s => (await s.CommittedOffsetsAsync(None)).OrderBy(p => p.Key).ToList());
        // Expiry times differ by design (the database clock against the process clock); owners and epochs must not.
        await BothAsync("Leases", async s => (await s.LeasesAsync(None)).Select(l => (l.Partition, l.Owner, l.Epoch)).ToList());
        await BothAsync("Rules", s => s.ListAsync(None));
    }

    public static void AssertSame(string what, object? expected, object? actual)
    {
        var e = Canonical(expected);
        var a = Canonical(actual);
        if (e != a)
        {
            Assert.Fail($"{what} differs.\nexpected: {e}\nactual:   {a}");
        }
    }

    public static string Canonical(object? value) => Sort(JsonSerializer.SerializeToNode(value, JsonOptions))?.ToJsonString() ?? "null";

    private static JsonNode? Sort(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sort(p.Value?.DeepClone())))),
        JsonArray a => new JsonArray(a.Select(i => Sort(i?.DeepClone())).ToArray()),
        _ => node?.DeepClone(),
    };

    /// <summary>Both stores behind one type, for calls written once.</summary>
    public interface IStore : ILeaseStore, ICheckpointStore, IReadStore, IRuleStore;

    private sealed class Store<T>(T inner) : IStore where T : ILeaseStore, ICheckpointStore, IReadStore, IRuleStore
    {
        public Task EnsureClusterAsync(int partitions, CancellationToken ct) => inner.EnsureClusterAsync(partitions, ct);
        public Task HeartbeatAsync(SiloInfo silo, CancellationToken ct) => inner.HeartbeatAsync(silo, ct);
        public Task LeaveAsync(string siloId, CancellationToken ct) => inner.LeaveAsync(siloId, ct);
        public Task<IReadOnlyList<SiloInfo>> SilosAsync(CancellationToken ct) => inner.SilosAsync(ct);
        public Task<IReadOnlyList<Lease>> LeasesAsync(CancellationToken ct) => inner.LeasesAsync(ct);
        public Task<Lease?> TryAcquireAsync(int partition, string siloId, TimeSpan duration, CancellationToken ct) => inner.TryAcquireAsync(partition, siloId, duration, ct);
        public Task<bool> RenewAsync(int partition, string siloId, long epoch, TimeSpan duration, CancellationToken ct) => inner.RenewAsync(partition, siloId, epoch, duration, ct);
        public Task ReleaseAsync(int partition, string siloId, long epoch, CancellationToken ct) => inner.ReleaseAsync(partition, siloId, epoch, ct);
        public Task<PartitionCheckpoint?> LoadPartitionAsync(int partition, CancellationToken ct) => inner.LoadPartitionAsync(partition, ct);
        public Task<IReadOnlyDictionary<GrainId, GrainRecord>> LoadGrainsAsync(int partition, IReadOnlyCollection<GrainId> ids, CancellationToken ct) => inner.LoadGrainsAsync(partition, ids, ct);
        public Task<IReadOnlyList<GrainId>> LoadGrainIdsAsync(int partition, string grainType, CancellationToken ct) => inner.LoadGrainIdsAsync(partition, grainType, ct);
        public Task<IReadOnlyList<(GrainId Id, long WakeAtMs)>> LoadWakeupsAsync(int partition, CancellationToken ct) => inner.LoadWakeupsAsync(partition, ct);
        public Task<bool> CommitAsync(Checkpoint checkpoint, CancellationToken ct) => inner.CommitAsync(checkpoint, ct);
        public Task<IReadOnlyDictionary<int, long>> CommittedOffsetsAsync(CancellationToken ct) => inner.CommittedOffsetsAsync(ct);
        public Task<Page<SensorSummary>> ListSensorsAsync(string? search, int offset, int limit, CancellationToken ct) => inner.ListSensorsAsync(search, offset, limit, ct);
        public Task<SensorSummary?> GetSensorAsync(string sensorId, CancellationToken ct) => inner.GetSensorAsync(sensorId, ct);
        public Task<IReadOnlyList<MinuteAggregate>> GetAggregatesAsync(string sensorId, long fromMs, long toMs, string? metric, CancellationToken ct) =>
            inner.GetAggregatesAsync(sensorId, fromMs, toMs, metric, ct);
        public Task<IReadOnlyList<Alert>> QueryAlertsAsync(AlertQuery query, CancellationToken ct) => inner.QueryAlertsAsync(query, ct);
        public Task<Alert?> GetAlertAsync(string alertId, CancellationToken ct) => inner.GetAlertAsync(alertId, ct);
        public Task<IReadOnlyList<DeviceCommand>> TakePendingCommandsAsync(string deviceId, CancellationToken ct) => inner.TakePendingCommandsAsync(deviceId, ct);
        public Task<IReadOnlyList<CommandRecord>> ListCommandsAsync(string deviceId, int limit, CancellationToken ct) => inner.ListCommandsAsync(deviceId, limit, ct);
        public Task<IReadOnlyList<RuleDefinition>> ListAsync(CancellationToken ct) => inner.ListAsync(ct);
        public Task<RuleDefinition?> GetAsync(string ruleId, CancellationToken ct) => inner.GetAsync(ruleId, ct);
        public Task<long> NextVersionAsync(CancellationToken ct) => inner.NextVersionAsync(ct);
        public Task<bool> TryCreateAsync(RuleDefinition rule, CancellationToken ct) => inner.TryCreateAsync(rule, ct);
        public Task<bool> TryUpdateAsync(RuleDefinition rule, CancellationToken ct) => inner.TryUpdateAsync(rule, ct);
        public Task<bool> TryDeleteAsync(string ruleId, CancellationToken ct) => inner.TryDeleteAsync(ruleId, ct);
    }
}
