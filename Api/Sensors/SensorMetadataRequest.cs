using System.Text.Json.Serialization;
using Api.Ingest;
using Grains.Abstractions;

namespace Api.Sensors;

/// <summary>
/// Body of PUT /api/v1/sensors/{id}/metadata: what the operator sets of the sensor's metadata, as a whole. A field that is
/// null or absent is not set by the operator (the device's value shows); <see cref="Tags"/> replaces the operator's tags.
/// An unknown property (a misspelt field) is a JSON error naming it.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record SensorMetadataRequest
{
    public string? Location { get; init; }
    public string? Model { get; init; }
    public string? Owner { get; init; }

    /// <summary>Free tags by name (string values); merged with the extra metadata fields the device sends, the operator's winning per name.</summary>
    public Dictionary<string, string?>? Tags { get; init; }
}

/// <summary>
/// Checks an operator's metadata against the limits a device's metadata has at ingest (<see cref="TelemetryLimits"/>:
/// value and name lengths, at most as many tags as extra metadata fields, <see cref="TextRules"/>), so that every string
/// an operator sets round-trips through every store as a device's does.
/// </summary>
public static class SensorMetadataValidator
{
    public static bool TryCreate(SensorMetadataRequest request, TelemetryLimits limits, out OperatorMetadata? metadata,
        out Dictionary<string, string[]> errors)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(limits);
        errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        Field(request.Location, "location", limits, errors);
        Field(request.Model, "model", limits, errors);
        Field(request.Owner, "owner", limits, errors);
        Dictionary<string, string>? tags = null;
        if (request.Tags is { } requested)
        {
            if (requested.Count > limits.MaxAttributes)
            {
                errors["tags"] = [$"tags may have at most {limits.MaxAttributes} entries; it has {requested.Count}"];
            }

            foreach (var (name, value) in requested.OrderBy(t => t.Key, StringComparer.Ordinal))
            {
                if (Tag(name, value, limits, errors))
                {
                    (tags ??= new Dictionary<string, string>(StringComparer.Ordinal))[name] = value!;
                }
            }
        }

        metadata = errors.Count == 0
            ? new OperatorMetadata { Location = request.Location, Model = request.Model, Owner = request.Owner, Tags = tags }
            : null;
        return metadata is not null;
    }

    private static void Field(string? value, string field, TelemetryLimits limits, Dictionary<string, string[]> errors)
    {
        if (value is null)
        {
            return;
        }

        if (value.Length == 0)
        {
            errors[field] = [$"{field} must not be empty; null (or leaving it out) leaves it to the device"];
        }
        else if (Problem(value, limits.MaxStringValueLength) is { } problem)
        {
            errors[field] = [$"{field} {problem}"];
        }
    }

    private static bool Tag(string name, string? value, TelemetryLimits limits, Dictionary<string, string[]> errors)
    {
        var field = $"tags.{name}";
        if (name.Length == 0)
        {
            errors["tags"] = ["a tag name must not be empty"];
            return false;
        }

        if (Problem(name, limits.MaxNameLength) is { } nameProblem)
        {
            errors["tags"] = [$"the tag name {nameProblem}"];
            return false;
        }

        if (value is null)
        {
            errors[field] = [$"{field} must be a string; leave the tag out to remove it"];
            return false;
        }

        if (Problem(value, limits.MaxStringValueLength) is { } problem)
        {
            errors[field] = [$"{field} {problem}"];
            return false;
        }

        return true;
    }

    private static string? Problem(string text, int maxLength) =>
        TextRules.Problem(text) is { } problem ? $"contains {problem}"
        : text.Length > maxLength ? $"is longer than {maxLength} characters"
        : null;
}

/// <summary>Source-generated System.Text.Json metadata for the sensor metadata body (camelCase; a repeated property or tag is an error).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(SensorMetadataRequest))]
[JsonSerializable(typeof(OperatorMetadata))]
public sealed partial class SensorsJsonContext : JsonSerializerContext;
