namespace Grains.Abstractions;

/// <summary>Identity of a virtual actor: its type name and its key. One activation per id cluster-wide.</summary>
public readonly record struct GrainId(string Type, string Key)
{
    public static GrainId Sensor(string sensorId) => new(GrainTypes.Sensor, sensorId);

    public static GrainId Rule(string ruleId) => new(GrainTypes.Rule, ruleId);

    public override string ToString() => $"{Type}/{Key}";
}

public static class GrainTypes
{
    public const string Sensor = "sensor";
    public const string Rule = "rule";
}
