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
    where TExpected : IReadModelWriter, IReadStore, IRuleStore
    where TActual : IReadModelWriter, IReadStore, IRuleStore
{
    private static readonly CancellationToken None = CancellationToken.None;

    public TExpected Expected { get; } = expected;

    public TActual Actual { get; } = actual;

    /// <summary>Runs the call on both stores and asserts equal results; returns the result of the reference.</summary>
    public async Task<T> BothAsync<T>(string what, Func<IStore, Task<T>> call)
    {
        var e = await call(new Store<TExpected>(Expected));
        var a = await call(new Store<TActual>(Actual));
        Canonical.AssertSame(what, e, a);
        return e;
    }

    public Task BothAsync(string what, Func<IStore, Task> call) => BothAsync(what, async s =>
    {
        await call(s);
        return true;
    });

    /// <summary>Compares every read of the two stores for the given keys.</summary>
    public async Task AssertSameReadsAsync(IReadOnlyList<string> sensorIds, IReadOnlyList<string> alertIds, IReadOnlyList<string> ruleIds, long t0)
    {
        foreach (var search in new[] { null, "", "  ", "gar", "GAR", "hw-", "S-", "s-", "x-none", "KITCHEN", "jardín", "JARDÍN", "_", "%" })
        {
            foreach (var (offset, limit) in new[] { (0, 1000), (0, 3), (3, 3), (1000, 5), (2, 0), (-1, 2) })
            {
                await BothAsync($"ListSensors({search}, {offset}, {limit})", async s =>
                {
                    var page = await s.ListSensorsAsync(search, offset, limit, None);
                    return page with { Items = page.Items.Select(i => Canonical.Shown(i)!).ToList() };
                });
            }
        }
        foreach (var id in sensorIds.Append("missing"))
        {
            await BothAsync($"GetSensor({id})", async s => Canonical.Shown(await s.GetSensorAsync(id, None)));
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
        await BothAsync("Rules", s => s.ListAsync(None));
    }

    /// <summary>Both stores behind one type, for calls written once.</summary>
    public interface IStore : IReadModelWriter, IReadStore, IRuleStore;

    private sealed class Store<T>(T inner) : IStore where T : IReadModelWriter, IReadStore, IRuleStore
    {
        public Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken ct) => inner.WriteAsync(outputs, ct);
        public Task<Page<SensorSummary>> ListSensorsAsync(string? search, int offset, int limit, CancellationToken ct) => inner.ListSensorsAsync(search, offset, limit, ct);
        public Task<SensorSummary?> GetSensorAsync(string sensorId, CancellationToken ct) => inner.GetSensorAsync(sensorId, ct);
        public Task<IReadOnlyList<MinuteAggregate>> GetAggregatesAsync(string sensorId, long fromMs, long toMs, string? metric, CancellationToken ct) =>
            inner.GetAggregatesAsync(sensorId, fromMs, toMs, metric, ct);
        public Task<IReadOnlyList<Alert>> QueryAlertsAsync(AlertQuery query, CancellationToken ct) => inner.QueryAlertsAsync(query, ct);
        public Task<Alert?> GetAlertAsync(string alertId, CancellationToken ct) => inner.GetAlertAsync(alertId, ct);
        public Task<IReadOnlyList<DeviceCommand>> TakePendingCommandsAsync(string deviceId, CancellationToken ct) => inner.TakePendingCommandsAsync(deviceId, ct);
        public Task<IReadOnlyList<CommandRecord>> ListCommandsAsync(string deviceId, int limit, CancellationToken ct) => inner.ListCommandsAsync(deviceId, limit, ct);
        public Task<IReadOnlyList<DeviceCommand>> ListPendingCommandsAsync(string deviceId, int limit, CancellationToken ct) => inner.ListPendingCommandsAsync(deviceId, limit, ct);
        public Task<bool> MarkCommandDeliveredAsync(string deviceId, string commandId, CancellationToken ct) => inner.MarkCommandDeliveredAsync(deviceId, commandId, ct);
        public Task<IReadOnlyList<RuleDefinition>> ListAsync(CancellationToken ct) => inner.ListAsync(ct);
        public Task<RuleDefinition?> GetAsync(string ruleId, CancellationToken ct) => inner.GetAsync(ruleId, ct);
        public Task<long> NextVersionAsync(CancellationToken ct) => inner.NextVersionAsync(ct);
        public Task<RuleCreation> CreateAsync(RuleDefinition rule, int maxRules, CancellationToken ct) => inner.CreateAsync(rule, maxRules, ct);
        public Task<bool> TryUpdateAsync(RuleDefinition rule, CancellationToken ct) => inner.TryUpdateAsync(rule, ct);
        public Task<bool> TryDeleteAsync(string ruleId, CancellationToken ct) => inner.TryDeleteAsync(ruleId, ct);
    }
}

/// <summary>Values as canonical JSON (object properties sorted, non-finite doubles by name), for comparing reads of two stores.</summary>
public static class Canonical
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        IncludeFields = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    public static string Of(object? value) => Sort(JsonSerializer.SerializeToNode(value, JsonOptions))?.ToJsonString() ?? "null";

    public static void AssertSame(string what, object? expected, object? actual)
    {
        var e = Of(expected);
        var a = Of(actual);
        if (e != a)
        {
            Assert.Fail($"{what} differs.\nexpected: {e}\nactual:   {a}");
        }
    }

    /// <summary>
    /// A sensor summary as the read side shows it, without <see cref="SensorSummary.AppliedPosition"/>: the position is the
    /// writer's guard, and the PostgreSQL store does not read it back (its reads carry -1) while the in-memory store returns
    /// the summary as written.
    /// </summary>
    public static SensorSummary? Shown(SensorSummary? summary) => summary is null ? null : summary with { AppliedPosition = -1 };

    private static JsonNode? Sort(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sort(p.Value?.DeepClone())))),
        JsonArray a => new JsonArray(a.Select(i => Sort(i?.DeepClone())).ToArray()),
        _ => node?.DeepClone(),
    };
}
