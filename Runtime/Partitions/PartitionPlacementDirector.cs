using Grains;
using Grains.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Runtime.Partitions;

/// <summary>
/// Places <see cref="PartitionPlacement"/> grains: partition p (the partition grain keyed p, the sensor grains whose ids
/// hash to p) on the silo at index p modulo the number of compatible silos, in address order. Every silo computes the
/// same choice, so a partition's reader and its sensors meet in one process while the membership is stable.
/// </summary>
public sealed class PartitionPlacementDirector(IOptions<SiloOptions> options) : IPlacementDirector
{
    /// <summary>The grain type of <see cref="PartitionGrain"/>, keyed by the partition number.</summary>
    public const string PartitionGrainType = "partition";

    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target).Order().ToArray();
        var id = target.GrainIdentity;
        var partitions = options.Value.Partitions;
        var partition = id.Type.ToString() == PartitionGrainType
            ? (int)(id.GetIntegerKey() % partitions)
            : Partitioner.PartitionOf(id.Key.ToString()!, partitions);
        return Task.FromResult(silos[partition % silos.Length]);
    }
}
