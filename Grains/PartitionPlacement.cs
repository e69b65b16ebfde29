using Orleans.Placement;
using Orleans.Runtime;

namespace Grains;

/// <summary>
/// Places a grain on the silo that runs its log partition: the partition grain of partition p, and the sensor grains
/// whose ids hash to p, go to the same silo of the cluster's silos in address order (p modulo their count), so that a
/// partition's reader calls its sensors within its own process. The director lives with the silo hosting.
/// </summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking, Alias("oiot.PartitionPlacement")]
public sealed class PartitionPlacement : PlacementStrategy
{
    public static PartitionPlacement Instance { get; } = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class PartitionPlacementAttribute : PlacementAttribute
{
    public PartitionPlacementAttribute() : base(PartitionPlacement.Instance)
    {
    }
}
