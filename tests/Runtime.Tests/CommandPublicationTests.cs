using Grains.Abstractions;
using Runtime.InMemory;
using Tests.Shared;

namespace Runtime.Tests;

/// <summary>
/// A rule grain publishes a device command live only once the read models hold it: an Api node that hands the command
/// to its device (MQTT) marks it delivered by its id, which needs the stored command. Alert events go live at once.
/// </summary>
public sealed class CommandPublicationTests
{
    private const long T0 = 1_780_000_000_000;

    [Fact]
    public async Task A_command_goes_live_after_it_is_written_and_the_alert_before()
    {
        var store = new InMemoryStore(TimeProvider.System);
        var writer = new HeldWriter(store);
        await using var silos = await TestSilos.StartAsync(1, writer: writer);
        var rule = new RuleDefinition
        {
            Id = "fan-rule",
            Name = "Too hot",
            Enabled = true,
            Severity = Severity.Major,
            Target = new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "t", Source = ConditionSource.Raw, Operator = ComparisonOperator.Greater, Value = 30 },
            ControlAction = new ControlAction { Command = "fan" },
            Version = 1,
        };
        var grain = silos.Grains.GetGrain<IRuleGrain>("fan-rule");
        await grain.DefineAsync(new RuleDefinitionChange("fan-rule", rule, T0));

        writer.Hold();
        var signal = new ConditionSignal
        {
            Sequence = 1,
            RuleId = "fan-rule",
            RuleVersion = 1,
            SensorId = "room-1",
            Holding = true,
            EventTimeMs = T0 + 1_000,
            Value = 35,
            Message = "35 > 30",
        };
        var receiving = grain.ReceiveAsync(new SensorSignals("room-1", [signal], T0 + 1_000));

        await Waiting.Until(() => silos.PublishedOf<AlertEvent>().Any(a => a.Kind == AlertEventKind.Opened), TimeSpan.FromSeconds(10), "the alert live");
        Assert.False(receiving.IsCompleted);
        Assert.Empty(silos.PublishedOf<DeviceCommand>());
        Assert.Empty(await store.ListPendingCommandsAsync("room-1", 10, CancellationToken.None));

        writer.Release();
        await receiving;
        var command = Assert.Single(await store.ListPendingCommandsAsync("room-1", 10, CancellationToken.None));
        await Waiting.Until(() => silos.PublishedOf<DeviceCommand>().Count == 1, TimeSpan.FromSeconds(10), "the command live");
        Assert.Equal(command.CommandId, silos.PublishedOf<DeviceCommand>()[0].CommandId);
    }
}
