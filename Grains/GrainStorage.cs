using System.Buffers;
using Orleans.Serialization;
using Orleans.Storage;

namespace Grains;

/// <summary>The grain storage of the sensor, rule and partition grains.</summary>
public static class GrainStorage
{
    /// <summary>The name of the storage provider (memory in embedded mode, Redis in durable mode).</summary>
    public const string Name = "oiot";
}

/// <summary>
/// Stores grain states in Orleans' binary form, base64-encoded: compact and fast (no JSON), and text, which every
/// storage provider keeps intact (the Redis provider stores the payload as a string).
/// </summary>
public sealed class BinaryGrainStorageSerializer(Serializer serializer) : IGrainStorageSerializer
{
    public BinaryData Serialize<T>(T? input)
    {
        var writer = new ArrayBufferWriter<byte>(256);
        serializer.Serialize(input, writer);
        return BinaryData.FromString(Convert.ToBase64String(writer.WrittenSpan));
    }

    public T? Deserialize<T>(BinaryData input) => serializer.Deserialize<T>(Convert.FromBase64String(input.ToString()));
}
