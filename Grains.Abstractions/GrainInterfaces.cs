using Orleans.Concurrency;
using Orleans.Runtime;

namespace Grains.Abstractions;

/// <summary>
/// One grain per sensor (keyed by sensor id). Its partition's log reader delivers the sensor's readings in log order with
/// their offsets; the grain skips offsets it has applied, so a replayed log counts every reading once.
/// </summary>
[Alias("oiot.ISensorGrain")]
public interface ISensorGrain : IGrainWithStringKey
{
    /// <summary>
    /// Applies <see cref="SensorWork.Items"/> in order (each at its receipt time), then lets the sensor's clock run to
    /// <see cref="SensorWork.ReceivedUpToMs"/>: minutes due close, offline rules fire, rule grains hear of the signals
    /// (before this call returns). Outputs are published at once and written to the read models at the next flush.
    /// A <see cref="ValueTask{TResult}"/>: the partition reader makes this call for nearly every reading of a large fleet,
    /// and waits for a window of them on Orleans' pooled responses, without a task per call on either side.
    /// </summary>
    [Alias("apply")]
    ValueTask<SensorProgress> ApplyAsync(SensorWork work);

    /// <summary>
    /// Starts writing the outputs not yet written, then the state as of this call (after every call before it); returns
    /// the log position that state has applied. The writes run outside the grain's turn: readings go on being applied while
    /// the read models and the grain storage take them. <see cref="StoredAsync"/> waits for them.
    /// </summary>
    [Alias("flush")]
    Task<long> FlushAsync();

    /// <summary>
    /// Waits for the writes started so far (<see cref="FlushAsync"/>) and returns the log position the stored state has
    /// applied; throws when one failed (the activation then drops what it did not store and reloads). Interleaves with
    /// the grain's other calls, and may wait longer than a call's usual timeout: when a fleet closes its minutes at once
    /// the read models take their aggregates first.
    /// </summary>
    [Alias("stored"), AlwaysInterleave, ResponseTimeout("00:05:00")]
    Task<long> StoredAsync();

    /// <summary>
    /// Admits the metric and attribute names readings are about to bring (the Api asks before appending them to the log):
    /// names the sensor has, and new ones while it has room; answers the names refused.
    /// </summary>
    [Alias("admit")]
    Task<NameAdmission> AdmitNamesAsync(string[] metrics, string[] attributes);

    /// <summary>The sensor as it stands now; null when it never received a reading and no operator set its metadata.</summary>
    [Alias("view"), ReadOnly]
    Task<SensorView?> GetViewAsync();
}

/// <summary>What <see cref="ISensorGrain.AdmitNamesAsync"/> refused (nothing: every name admitted), and the sensor's limits.</summary>
[GenerateSerializer, Immutable, Alias("oiot.NameAdmission")]
public sealed record NameAdmission(
    [property: Id(0)] string[] RefusedMetrics,
    [property: Id(1)] string[] RefusedAttributes,
    [property: Id(2)] int MaxMetricNames,
    [property: Id(3)] int MaxAttributeNames,
    [property: Id(4)] bool Changed)
{
    public bool AllAdmitted => RefusedMetrics.Length == 0 && RefusedAttributes.Length == 0;
}

/// <summary>
/// Readings of one sensor from its partition's log, and the receipt time its clock may run to afterwards, with the rule
/// catalog and the outside conditions as of the partition's position (null: none known).
/// <see cref="AppliedAtLeast"/> is the log position the sensor last told its partition it had applied: an activation
/// that is behind it lost what it applied (it stopped without storing it) and refuses the work, so that its partition
/// replays from its stored position rather than the sensor skipping the readings in between.
/// </summary>
[GenerateSerializer, Immutable, Alias("oiot.SensorWork")]
public sealed record SensorWork(
    [property: Id(0)] SensorWorkItem[] Items,
    [property: Id(1)] long ReceivedUpToMs,
    [property: Id(2)] RuleCatalog Rules,
    [property: Id(3)] long AppliedAtLeast,
    [property: Id(4)] OutsideConditions? Outside = null);

/// <summary>
/// A reading at <see cref="Position"/> (<see cref="LogPosition"/>) of its partition's log, appended at <see cref="ReceivedAtMs"/>
/// (the Api's clock); or, with <see cref="Reading"/> null, an operator's change of the sensor's metadata at that position:
/// <see cref="OperatorMetadata"/> replaces what the operator had set (empty: nothing set any more).
/// </summary>
[GenerateSerializer, Immutable, Alias("oiot.SensorWorkItem")]
public readonly record struct SensorWorkItem(
    [property: Id(0)] long Position,
    [property: Id(1)] long ReceivedAtMs,
    [property: Id(2)] Reading? Reading)
{
    /// <summary>The operator's metadata from this position on, when the item is a metadata change (<see cref="Reading"/> null).</summary>
    [Id(3)] public OperatorMetadata? OperatorMetadata { get; init; }

    /// <summary>An operator's metadata change at <paramref name="position"/>, appended at <paramref name="receivedAtMs"/>.</summary>
    public static SensorWorkItem MetadataChange(long position, long receivedAtMs, OperatorMetadata metadata) =>
        new(position, receivedAtMs, null) { OperatorMetadata = metadata };
}

/// <summary>
/// Where a sensor stands after a call, for its partition's schedule: the greatest log position it applied, when (in receipt time)
/// its clock must run again (a minute to close, an offline deadline, a rule's timer), and what an offline rule created
/// later needs to plan for it without activating it.
/// </summary>
[GenerateSerializer, Immutable, Alias("oiot.SensorProgress")]
public readonly record struct SensorProgress(
    [property: Id(0)] long AppliedPosition,
    [property: Id(1)] long? WakeAtMs,
    [property: Id(2)] long ClockMs,
    [property: Id(3)] long ClockReceivedAtMs,
    [property: Id(4)] long? LastSeenMs,
    [property: Id(5)] string? Location,
    [property: Id(6)] string? Model);

/// <summary>
/// One grain per alert rule (keyed by rule id): the alert lifecycle of every sensor the rule targets. Calls return once
/// their effects are durable (outputs written, then state).
/// </summary>
[Alias("oiot.IRuleGrain")]
public interface IRuleGrain : IGrainWithStringKey
{
    /// <summary>Applies one sensor's signals in order, then its clock (when set); returns when the rule next needs that sensor's time.</summary>
    [Alias("receive")]
    Task<long?> ReceiveAsync(SensorSignals signals);

    /// <summary>The rule was created, changed or deleted (at <see cref="RuleDefinitionChange.AtMs"/>).</summary>
    [Alias("define")]
    Task DefineAsync(RuleDefinitionChange change);

    [Alias("ack")]
    Task<AcknowledgeResult> AcknowledgeAsync(AcknowledgeAlert ack);
}

/// <summary>Signals of one sensor for one rule, in the order the sensor produced them, and the sensor's clock after them (null: not needed).</summary>
[GenerateSerializer, Immutable, Alias("oiot.SensorSignals")]
public sealed record SensorSignals(
    [property: Id(0)] string SensorId,
    [property: Id(1)] ConditionSignal[] Signals,
    [property: Id(2)] long? TimeMs);

/// <summary>A rule definition as of a point of the log: null when the rule was deleted.</summary>
[GenerateSerializer, Immutable, Alias("oiot.RuleDefinitionChange")]
public sealed record RuleDefinitionChange(
    [property: Id(0)] string RuleId,
    [property: Id(1)] RuleDefinition? Rule,
    [property: Id(2)] long AtMs);

/// <summary>An operator acknowledges an open alert.</summary>
[GenerateSerializer, Immutable, Alias("oiot.AcknowledgeAlert")]
public sealed record AcknowledgeAlert(
    [property: Id(0)] string AlertId,
    [property: Id(1)] string By,
    [property: Id(2)] long AtMs);

[GenerateSerializer, Alias("oiot.AcknowledgeOutcome")]
public enum AcknowledgeOutcome { Acknowledged, AlreadyAcknowledged, NotOpen }

/// <summary>What an acknowledgement did, with the alert as it stands after it (null when the rule holds no open alert with that id).</summary>
[GenerateSerializer, Immutable, Alias("oiot.AcknowledgeResult")]
public sealed record AcknowledgeResult(
    [property: Id(0)] AcknowledgeOutcome Outcome,
    [property: Id(1)] Alert? Alert);

/// <summary>
/// One grain per partition of the log (keyed by partition number): reads the partition in order and delivers it to the
/// sensor and rule grains, and commits its read position only past effects that are durable. Orleans places it on one
/// silo and activates it elsewhere when that silo dies; every silo keeps every partition grain active.
/// </summary>
[Alias("oiot.IPartitionGrain")]
public interface IPartitionGrain : IGrainWithIntegerKey
{
    /// <summary>Activates the partition (its reader starts on activation) and returns.</summary>
    [Alias("ensure")]
    Task EnsureRunningAsync();

    /// <summary>
    /// The reader's status. With <paramref name="withEnd"/> it also asks the log for its end (a broker round trip of
    /// several requests, answered without the end after a wait when the log cannot tell); without, it answers with no
    /// request to the log and <see cref="PartitionStatus.EndOffset"/> null: for callers that need the reader and its
    /// counters only (the load history, the readiness check).
    /// </summary>
    [Alias("status")]
    Task<PartitionStatus> GetStatusAsync(bool withEnd);

    /// <summary>
    /// When the activation runs on <paramref name="silo"/>: stops the reader with a last checkpoint and keeps the
    /// activation, idle, until its silo deactivates it. The first step of that silo's shutdown, so that the next reader, on
    /// another silo, starts from everything this one applied. An activation on another silo (the partition moved since)
    /// goes on reading.
    /// </summary>
    [Alias("stop-reading")]
    Task StopReadingAsync(SiloAddress silo);
}

/// <summary>
/// A partition as its reader sees it: where it runs and how far it got. <see cref="ActivatedAt"/>,
/// <see cref="LastCommitAt"/> and <see cref="SampledAt"/> come from the clock of the reader's silo;
/// <see cref="SampledAt"/> is when the reader read its counters for this answer.
/// </summary>
[GenerateSerializer, Immutable, Alias("oiot.PartitionStatus")]
public sealed record PartitionStatus(
    [property: Id(0)] int Partition,
    [property: Id(1)] string Silo,
    [property: Id(2)] DateTimeOffset ActivatedAt,
    [property: Id(3)] long CommittedOffset,
    [property: Id(4)] long AppliedOffset,
    [property: Id(5)] long? EndOffset,
    [property: Id(6)] long ReadingsApplied,
    [property: Id(7)] int Sensors,
    [property: Id(8)] DateTimeOffset? LastCommitAt,
    [property: Id(9)] DateTimeOffset SampledAt);
