using System.Collections.Concurrent;
using Orleans.Metadata;

namespace Grains;

/// <summary>
/// References to string-keyed grains, with each interface's grain type resolved once. Orleans 10.4.2's
/// <c>GrainFactory.GetGrain&lt;T&gt;(string)</c> resolves the interface by reflection (its attributes) and type-name parsing on
/// every call: at 100,000 sensors that was a large share of the partition reader's allocations (two references per
/// reading: its work and its flush). The reference made here is the same one: same grain id, same interface.
/// </summary>
public sealed class GrainReferences(IGrainFactory grains, GrainInterfaceTypeResolver interfaces, GrainInterfaceTypeToGrainTypeResolver grainTypes)
{
    private readonly ConcurrentDictionary<Type, (GrainType Grain, GrainInterfaceType Interface)> _types = new();

    public T Get<T>(string key) where T : IGrainWithStringKey
    {
        // A static factory with its argument: a lambda capturing this would be a new delegate on every call.
        var (grain, @interface) = _types.GetOrAdd(typeof(T), static (type, resolvers) =>
        {
            var resolved = resolvers.interfaces.GetGrainInterfaceType(type);
            return (resolvers.grainTypes.GetGrainType(resolved), resolved);
        }, (interfaces, grainTypes));
        return (T)grains.GetGrain(GrainId.Create(grain, key), @interface);
    }
}
