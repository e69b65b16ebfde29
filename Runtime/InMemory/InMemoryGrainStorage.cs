using System.Collections.Concurrent;
using Grains;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;

namespace Runtime.InMemory;

/// <summary>
/// The embedded mode's grain storage: states in a dictionary of this process, in their binary form, with the ETag check
/// of the durable provider (a write carrying another ETag than the stored one is refused). Reads and writes are local
/// calls, not grain calls: Orleans' memory storage routes every state through a few storage grains, which serialize
/// the activations of a large fleet. States are Orleans' binary form as bytes (no base64: nothing here needs text), keyed
/// by state name and grain id (no key string per write). A <see cref="Store"/> can be shared by the silos of one process
/// (tests).
/// </summary>
public sealed class InMemoryGrainStorage(InMemoryGrainStorage.Store entries, Serializer serializer) : IGrainStorage
{
    /// <summary>The stored states by grain, shared by every <see cref="InMemoryGrainStorage"/> created with it.</summary>
    public sealed class Store
    {
        public ConcurrentDictionary<(string StateName, GrainId GrainId), (string ETag, byte[] Data)> Entries { get; } = new();
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (entries.Entries.TryGetValue(Key(stateName, grainId), out var entry))
        {
            grainState.State = serializer.Deserialize<T>(entry.Data);
            grainState.ETag = entry.ETag;
            grainState.RecordExists = true;
        }
        else
        {
            grainState.ETag = null;
            grainState.RecordExists = false;
        }

        return Task.CompletedTask;
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var key = Key(stateName, grainId);
        var data = serializer.SerializeToArray(grainState.State);
        var etag = Guid.NewGuid().ToString("N");
        var expected = grainState.ETag;
        var written = expected is null
            ? entries.Entries.TryAdd(key, (etag, data))
            : entries.Entries.TryGetValue(key, out var stored) && stored.ETag == expected && entries.Entries.TryUpdate(key, (etag, data), stored);
        if (!written)
        {
            throw new InconsistentStateException($"Version conflict writing {stateName} of {grainId}: the stored state is not the one this activation read (ETag {expected ?? "none"}).");
        }

        grainState.ETag = etag;
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        entries.Entries.TryRemove(Key(stateName, grainId), out _);
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }

    private static (string, GrainId) Key(string stateName, GrainId grainId) => (stateName, grainId);
}
