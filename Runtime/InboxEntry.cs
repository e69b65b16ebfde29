using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Runtime;

/// <summary>One record of a partition's inbox log. The offset is assigned by the log.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "$type")]
[JsonDerivedType(typeof(TelemetryEntry), "telemetry")]
[JsonDerivedType(typeof(MessageEntry), "message")]
[JsonDerivedType(typeof(TickEntry), "tick")]
[JsonDerivedType(typeof(RuleChangeEntry), "rule")]
public abstract record InboxEntry;

/// <summary>
/// Readings of sensors whose keys hash to the partition, in the order they were posted. <see cref="IdempotencyKey"/>
/// is the client's key for the request: a partition applies an entry with a key it has already applied (within
/// <see cref="SiloOptions.IdempotencyWindow"/> of stream time) only once, so a request resent after a 503 or a
/// timeout is not counted twice even when the first attempt did reach the log.
/// </summary>
public sealed record TelemetryEntry(Reading[] Readings, string? IdempotencyKey = null) : InboxEntry;

/// <summary>A message to one grain. <see cref="Id"/> is set for grain-to-grain messages, which the receiver de-duplicates.</summary>
public sealed record MessageEntry(GrainId Target, GrainMessage Message, MessageId? Id) : InboxEntry;

/// <summary>Advances stream time of an idle partition, so windows close and offline rules fire without new data.</summary>
public sealed record TickEntry(long TimeMs) : InboxEntry;

/// <summary>A rule was created, changed (Rule set) or deleted (Rule null); fanned out to every partition.</summary>
public sealed record RuleChangeEntry(string RuleId, RuleDefinition? Rule) : InboxEntry;

/// <summary>
/// Deterministic id of a grain-to-grain message: the partition and offset of the log record whose processing
/// produced it, and its sequence among the messages produced by that record. A replay produces the same ids.
/// </summary>
public readonly record struct MessageId(int Partition, long Offset, int Sequence) : IComparable<MessageId>
{
    public int CompareTo(MessageId other)
    {
        var c = Offset.CompareTo(other.Offset);
        return c != 0 ? c : Sequence.CompareTo(other.Sequence);
    }
}

public readonly record struct LogRecord(long Offset, InboxEntry Entry);
