using System.Text.Json.Serialization;
using Grains.Abstractions;

namespace Runtime.Postgres;

/// <summary>
/// Source-generated JSON metadata for the jsonb columns: rule definitions, sensor metadata, latest values and attributes,
/// and command parameters. Non-finite doubles are written as names.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(RuleDefinition))]
[JsonSerializable(typeof(IReadOnlyList<RuleDefinition>))]
[JsonSerializable(typeof(SensorMetadata))]
[JsonSerializable(typeof(OperatorMetadata))]
[JsonSerializable(typeof(Dictionary<string, double>))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class PostgresJsonContext : JsonSerializerContext;
