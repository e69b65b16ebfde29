using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Runtime.Postgres;

/// <summary>
/// Source-generated JSON metadata for the jsonb columns: rule definitions (rules table, partition checkpoints),
/// received-message watermarks of grains, sensor metadata, latest values and attributes, command parameters and
/// silo activation counts. Non-finite doubles are written as names, as in grain states.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(RuleDefinition))]
[JsonSerializable(typeof(IReadOnlyList<RuleDefinition>))]
[JsonSerializable(typeof(IReadOnlyDictionary<int, MessageId>))]
[JsonSerializable(typeof(SensorMetadata))]
[JsonSerializable(typeof(Dictionary<string, double>))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(IReadOnlyDictionary<string, int>))]
internal sealed partial class PostgresJsonContext : JsonSerializerContext;
