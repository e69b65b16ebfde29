using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Grains;

/// <summary>The stored state of a rule grain: plain and mutable, changed only by <see cref="RuleLogic"/>.</summary>
[GenerateSerializer, Alias("oiot.RuleState")]
public sealed class RuleState
{
    [Id(0)] public string RuleId { get; set; } = "";

    /// <summary>The rule version the per-sensor state belongs to (0: none seen yet).</summary>
    [Id(1)] public long Version { get; set; }

    /// <summary>The rule as last defined (null: not defined yet, or deleted).</summary>
    [Id(2)] public RuleDefinition? Definition { get; set; }

    /// <summary>Per sensor id: condition and alert lifecycle.</summary>
    [Id(3)] public Dictionary<string, RuleSensorState> Sensors { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Signals for a rule version newer than the grain's, in arrival order; applied when that version arrives.</summary>
    [Id(4)] public List<ConditionSignal> Buffered { get; set; } = [];

    /// <summary>A copy that later changes to this state do not reach (definitions, alerts and signals are immutable and shared).</summary>
    public RuleState Copy() => new()
    {
        RuleId = RuleId,
        Version = Version,
        Definition = Definition,
        Sensors = Sensors.ToDictionary(s => s.Key, s => s.Value.Copy(), StringComparer.Ordinal),
        Buffered = [.. Buffered],
    };
}

[JsonConverter(typeof(JsonStringEnumConverter<AlertPhase>))]
[GenerateSerializer, Alias("oiot.AlertPhase")]
public enum AlertPhase { Idle, Pending, Active, Cooldown }

[GenerateSerializer, Alias("oiot.RuleSensorState")]
public sealed class RuleSensorState
{
    /// <summary>Whether the condition holds, as last signalled by the sensor.</summary>
    [Id(0)] public bool Holding { get; set; }

    /// <summary>Event time the condition started holding; null when not holding.</summary>
    [Id(1)] public long? HoldingSinceMs { get; set; }

    [Id(2)] public double? LastValue { get; set; }
    [Id(3)] public string? LastMessage { get; set; }
    [Id(4)] public AlertPhase Phase { get; set; }

    /// <summary>Pending only: when the condition has held for forMinutes and the alert opens.</summary>
    [Id(5)] public long? PendingUntilMs { get; set; }

    /// <summary>Active only: the open alert as last emitted.</summary>
    [Id(6)] public Alert? Alert { get; set; }

    /// <summary>Cooldown only: when the (rule, sensor) may open again.</summary>
    [Id(7)] public long? CooldownUntilMs { get; set; }

    /// <summary>Start of the last incident opened for this version; a new incident always starts later (unique alert ids).</summary>
    [Id(8)] public long? LastStartedAtMs { get; set; }

    /// <summary>When the last incident was resolved; a new incident never starts before it.</summary>
    [Id(9)] public long? LastResolvedAtMs { get; set; }

    /// <summary>The number of the last signal applied for the sensor (<see cref="ConditionSignal.Sequence"/>).</summary>
    [Id(10)] public long LastSequence { get; set; }

    /// <summary>A copy (every member is a value or immutable).</summary>
    public RuleSensorState Copy() => (RuleSensorState)MemberwiseClone();
}
