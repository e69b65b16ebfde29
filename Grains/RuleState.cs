using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Grains;

/// <summary>The persisted state of a <see cref="RuleGrain"/>. Plain and mutable, serialized with <see cref="GrainsJsonContext"/>.</summary>
public sealed class RuleState
{
    public string RuleId { get; set; } = "";

    /// <summary>The rule version the per-sensor state belongs to (0: none seen yet).</summary>
    public long Version { get; set; }

    /// <summary>Per sensor id: condition and alert lifecycle.</summary>
    public Dictionary<string, RuleSensorState> Sensors { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Signals for a rule version newer than the catalog's, in arrival order; applied when that version arrives.</summary>
    public List<ConditionSignal> Buffered { get; set; } = [];

    /// <summary>The stream time this grain last asked to be woken at; null when nothing is pending.</summary>
    public long? WakeAtMs { get; set; }
}

[JsonConverter(typeof(JsonStringEnumConverter<AlertPhase>))]
public enum AlertPhase { Idle, Pending, Active, Cooldown }

public sealed class RuleSensorState
{
    /// <summary>Whether the condition holds, as last signalled by the sensor.</summary>
    public bool Holding { get; set; }

    /// <summary>Event time the condition started holding; null when not holding.</summary>
    public long? HoldingSinceMs { get; set; }

    public double? LastValue { get; set; }
    public string? LastMessage { get; set; }
    public AlertPhase Phase { get; set; }

    /// <summary>Pending only: when the condition has held for forMinutes and the alert opens.</summary>
    public long? PendingUntilMs { get; set; }

    /// <summary>Active only: the open alert as last emitted.</summary>
    public Alert? Alert { get; set; }

    /// <summary>Cooldown only: when the (rule, sensor) may open again.</summary>
    public long? CooldownUntilMs { get; set; }

    /// <summary>Start of the last incident opened for this version; a new incident always starts later (unique alert ids).</summary>
    public long? LastStartedAtMs { get; set; }

    /// <summary>When the last incident was resolved; a new incident never starts before it.</summary>
    public long? LastResolvedAtMs { get; set; }
}
