using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Runtime;

/// <summary>One record of a partition's inbox log. The offset is assigned by the log.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "$type")]
[JsonDerivedType(typeof(TelemetryEntry), "telemetry")]
[JsonDerivedType(typeof(TickEntry), "tick")]
[JsonDerivedType(typeof(RuleChangeEntry), "rule")]
[JsonDerivedType(typeof(SensorMetadataEntry), "metadata")]
[JsonDerivedType(typeof(OutsideConditionsEntry), "outside")]
public abstract record InboxEntry;

/// <summary>
/// Readings of sensors whose ids hash to the partition, in the order they were posted, received by an Api node at
/// <see cref="ReceivedAtMs"/> (its clock; it bounds the sensors' clocks). <see cref="IdempotencyKey"/> is the caller's key
/// for the request, scoped to the caller: a partition applies an entry with a key it has already applied (within
/// <see cref="SiloOptions.IdempotencyWindow"/> of receipt time) only once, so a request resent after a 503 or a timeout is
/// not counted twice even when the first attempt did reach the log.
/// </summary>
public sealed record TelemetryEntry(Reading[] Readings, string? IdempotencyKey, long ReceivedAtMs) : InboxEntry;

/// <summary>
/// The telemetry entries of several requests in one record, in the order an Api node appended them: the requests that
/// arrived while the partition's previous append waited for the log's confirm (the RabbitMQ log's group commit). A
/// partition applies them as if each were its own record at this offset; the readings' positions number on across them.
/// Only the binary codec writes it (<see cref="InboxEntryCodec.TelemetryGroupFormat"/>).
/// </summary>
public sealed record TelemetryGroupEntry(TelemetryEntry[] Entries) : InboxEntry;

/// <summary>The partition's reader found it idle with a sensor due: receipt time has reached <see cref="TimeMs"/> for every sensor of the partition.</summary>
public sealed record TickEntry(long TimeMs) : InboxEntry;

/// <summary>A rule was created, changed (Rule set) or deleted (Rule null) at <see cref="AtMs"/>; appended to every partition.</summary>
public sealed record RuleChangeEntry(string RuleId, RuleDefinition? Rule, long AtMs) : InboxEntry;

/// <summary>
/// An operator set the metadata of <see cref="SensorId"/> at <see cref="AtMs"/>: <see cref="Metadata"/> replaces what the
/// operator had set (empty: nothing). Appended to the sensor's partition, so the sensor applies it in order with its readings.
/// </summary>
public sealed record SensorMetadataEntry(string SensorId, OperatorMetadata Metadata, long AtMs) : InboxEntry;

/// <summary>
/// Observations of the conditions outside <see cref="Location"/> (posted at <see cref="AtMs"/>); appended to every
/// partition, so each joins them into the minute aggregates of its sensors at that location from this point of its log on.
/// </summary>
public sealed record OutsideConditionsEntry(string Location, OutsideObservation[] Observations, long AtMs) : InboxEntry;

public readonly record struct LogRecord(long Offset, InboxEntry Entry);
