using System.Text.Json.Serialization;

namespace Api.Rules;

/// <summary>Source-generated System.Text.Json metadata for the rule DTOs (camelCase, string enums).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(RuleRequest))]
[JsonSerializable(typeof(RuleResponse))]
[JsonSerializable(typeof(IReadOnlyList<RuleResponse>))]
[JsonSerializable(typeof(PageResponse<RuleResponse>))]
[JsonSerializable(typeof(RulePreviewRequest))]
public sealed partial class RulesJsonContext : JsonSerializerContext;
