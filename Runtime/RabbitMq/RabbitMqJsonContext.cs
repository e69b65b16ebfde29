using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Runtime.RabbitMq;

/// <summary>
/// Source-generated JSON of what goes over RabbitMQ: inbox entries (one message each, polymorphic on "$type")
/// and live grain outputs (several to a message, as an array). Nulls are omitted; non-finite doubles are written as names.
/// A reading's metrics and attributes are [name, value] pairs (<see cref="MetricValueConverter"/>).
/// </summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    Converters = [typeof(MetricValueConverter), typeof(AttributeValueConverter)])]
[JsonSerializable(typeof(InboxEntry))]
[JsonSerializable(typeof(GrainOutput))]
[JsonSerializable(typeof(List<GrainOutput>))]
public sealed partial class RabbitMqJsonContext : JsonSerializerContext;
