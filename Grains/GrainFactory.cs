using System.Text.Json;
using Grains.Abstractions;

namespace Grains;

/// <summary>Creates grains from their id and checkpointed state, and serializes their state for the next checkpoint.</summary>
public sealed class GrainFactory(SensorGrainOptions sensorOptions)
{
    private readonly SensorGrainOptions _sensorOptions = sensorOptions ?? throw new ArgumentNullException(nameof(sensorOptions));

    /// <summary>Metric names, attribute values and metadata shared by all the sensor grains this factory activates.</summary>
    private readonly SensorNameTable _names = new();

    /// <summary>Activates the grain <paramref name="id"/> from its UTF-8 JSON state (null: a new grain).</summary>
    public IGrain Activate(GrainId id, byte[]? stateJson) => id.Type switch
    {
        GrainTypes.Sensor => new SensorGrain(id.Key, Deserialize(stateJson, GrainsJsonContext.Default.SensorStateDocument)?.ToState(_names), _sensorOptions, _names),
        GrainTypes.Rule => new RuleGrain(id.Key, Deserialize(stateJson, GrainsJsonContext.Default.RuleState)),
        _ => throw new ArgumentException($"Unknown grain type '{id.Type}'.", nameof(id)),
    };

    /// <summary>The grain's state as UTF-8 JSON.</summary>
    public byte[] SerializeState(IGrain grain) => grain switch
    {
        SensorGrain sensor => JsonSerializer.SerializeToUtf8Bytes(SensorStateDocument.From((SensorState)sensor.State), GrainsJsonContext.Default.SensorStateDocument),
        RuleGrain rule => JsonSerializer.SerializeToUtf8Bytes(rule.Current, GrainsJsonContext.Default.RuleState),
        null => throw new ArgumentNullException(nameof(grain)),
        _ => throw new ArgumentException($"Unknown grain class '{grain.GetType().Name}'.", nameof(grain)),
    };

    private static T? Deserialize<T>(byte[]? json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo)
        where T : class =>
        json is null ? null : JsonSerializer.Deserialize(json, typeInfo);
}
