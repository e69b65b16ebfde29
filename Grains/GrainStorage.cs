using System.Buffers;
using System.Buffers.Text;
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
/// storage provider keeps intact (the Redis provider stores the payload as a string). The base64 text is written as
/// UTF-8 bytes straight from the serialized bytes (one buffer each way, no intermediate strings): a fleet writes
/// every sensor's state at each checkpoint.
/// </summary>
public sealed class BinaryGrainStorageSerializer(Serializer serializer) : IGrainStorageSerializer
{
    public BinaryData Serialize<T>(T? input)
    {
        var bytes = serializer.SerializeToArray(input);
        var text = new byte[Base64.GetMaxEncodedToUtf8Length(bytes.Length)];
        Base64.EncodeToUtf8(bytes, text, out _, out var written);
        return new BinaryData(text.AsMemory(0, written));
    }

    public T? Deserialize<T>(BinaryData input)
    {
        var bytes = input.ToArray();
        var status = Base64.DecodeFromUtf8InPlace(bytes, out var written);
        if (status != OperationStatus.Done)
        {
            throw new FormatException($"A stored grain state is not base64 text ({status} after {written} bytes).");
        }

        return serializer.Deserialize<T>(bytes.AsMemory(0, written));
    }
}
