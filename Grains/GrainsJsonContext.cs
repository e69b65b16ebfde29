using System.Text.Json.Serialization;

namespace Grains;

/// <summary>Source-generated JSON metadata for grain states (checkpoints). Non-finite doubles are written as names.</summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(SensorStateDocument))]
[JsonSerializable(typeof(RuleState))]
public sealed partial class GrainsJsonContext : JsonSerializerContext;
