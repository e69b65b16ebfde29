using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;
using Runtime.InMemory;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// A rule grain takes signals while its state is being written (it is reentrant). The state it stores must not record
/// the effects of a signal whose alert event was not written yet: if that event's write then fails, the sensor sends the
/// signal again, and a stored state that already counted it would skip it, leaving the alert open in the read models
/// for good (seen with PostgreSQL restarted under load and a storage that serializes after an await).
/// </summary>
public sealed class RuleStateWriteTests
{
    private static readonly RuleDefinition Hot = KnownInput.HotRule;

    private static SensorSignals Signal(string sensorId, long sequence, bool holding, long timeMs) => new(sensorId,
    [
        new ConditionSignal
        {
            Sequence = sequence, RuleId = Hot.Id, RuleVersion = Hot.Version, SensorId = sensorId, Holding = holding,
            EventTimeMs = timeMs, Value = holding ? 35 : 20, Message = holding ? "35 > 30" : "20 > 30",
        },
    ], timeMs);

    [Fact]
    public async Task A_signal_taken_while_the_state_is_written_is_not_stored_before_its_alert_event()
    {
        var store = new InMemoryStore(TimeProvider.System);
        var writer = new FailingWriter(store);
        var states = new InMemoryGrainStorage.Store();
        var gate = new Gate();
        await using var silos = await TestSilos.StartAsync(1, writer: writer, storage: silo =>
            silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Name, (sp, _) =>
                new GatedStorage(new InMemoryGrainStorage(states, sp.GetRequiredService<Serializer>()), gate)));
        var rule = silos.Grains.GetGrain<IRuleGrain>(Hot.Id);
        await rule.DefineAsync(new RuleDefinitionChange(Hot.Id, Hot, KnownInput.T0));
        await rule.ReceiveAsync(Signal("a", 1, holding: true, KnownInput.T0 + 1_000));
        var opened = Assert.Single(await store.QueryAlertsAsync(new AlertQuery(null, Hot.Id, "a", null, null, 10), CancellationToken.None));
        Assert.Equal(AlertState.Open, opened.State);

        // A signal that changes nothing to write starts a state write, held before the storage serializes the state.
        gate.Close();
        var first = rule.ReceiveAsync(Signal("b", 1, holding: false, KnownInput.T0 + 2_000));
        await Waiting.Until(() => gate.Waiting > 0, TimeSpan.FromSeconds(10), "the rule's state write held");

        // Meanwhile "a" stops holding; its resolution cannot be written.
        writer.Down = true;
        var resolved = rule.ReceiveAsync(Signal("a", 2, holding: false, KnownInput.T0 + 3_000));
        await Waiting.Until(() => silos.PublishedOf<AlertEvent>().Any(e => e.Kind == AlertEventKind.Resolved), TimeSpan.FromSeconds(10),
            "the resolution applied (published live)");
        gate.Open();
        await first;
        await Assert.ThrowsAnyAsync<Exception>(() => resolved);
        writer.Down = false;

        // The sensor sends it again (its own state did not record it): the alert is resolved.
        await Waiting.Until(async () =>
        {
            try
            {
                await rule.ReceiveAsync(Signal("a", 2, holding: false, KnownInput.T0 + 3_000));
                return true;
            }
            catch (InvalidOperationException e) when (e.Message.Contains("is reloading", StringComparison.Ordinal))
            {
                return false; // the dropped activation, until Orleans has deactivated it
            }
        }, TimeSpan.FromSeconds(10), "the rule grain takes the signal again");
        var alert = Assert.Single(await store.QueryAlertsAsync(new AlertQuery(null, Hot.Id, "a", null, null, 10), CancellationToken.None));
        Assert.Equal(AlertState.Resolved, alert.State);
    }

    private sealed class FailingWriter(IReadModelWriter inner) : IReadModelWriter
    {
        public volatile bool Down;

        public Task WriteAsync(IReadOnlyList<GrainOutput> outputs, CancellationToken cancellationToken) => Down
            ? Task.FromException(new InvalidOperationException("the read models cannot be written (test outage)"))
            : inner.WriteAsync(outputs, cancellationToken);
    }

    /// <summary>Holds "rule" state writes while closed, before the storage serializes the state (as a provider may after an await).</summary>
    private sealed class Gate
    {
        private TaskCompletionSource _open = CompletedSource();
        private int _waiting;

        public int Waiting => Volatile.Read(ref _waiting);

        public void Close() => _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Open() => _open.TrySetResult();

        public async Task PassAsync()
        {
            var open = _open;
            if (!open.Task.IsCompleted)
            {
                Interlocked.Increment(ref _waiting);
            }

            await open.Task;
        }

        private static TaskCompletionSource CompletedSource()
        {
            var source = new TaskCompletionSource();
            source.SetResult();
            return source;
        }
    }

    private sealed class GatedStorage(IGrainStorage inner, Gate gate) : IGrainStorage
    {
        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ReadStateAsync(stateName, grainId, grainState);

        public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (stateName == "rule")
            {
                await gate.PassAsync();
            }

            await inner.WriteStateAsync(stateName, grainId, grainState);
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ClearStateAsync(stateName, grainId, grainState);
    }
}
