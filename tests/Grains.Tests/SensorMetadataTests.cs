using Grains.Abstractions;
using static Grains.Tests.TestData;

namespace Grains.Tests;

/// <summary>
/// Metadata an operator sets (issue 13 item 2): it merges with what the device sends, the operator winning per field and per
/// tag; a device's later change never overrides an operator's field; an empty change clears; a sensor can be registered
/// before its first reading; rules by location or model follow the change from its log position on.
/// </summary>
public sealed class SensorMetadataTests
{
    private readonly SensorGrainOptions _options = new() { AllowedLatenessMs = 10_000, LastReadingsCount = 10 };
    private readonly TestEffects _effects = new();
    private SensorLogic _logic;
    private RuleCatalog _rules = RuleCatalog.Empty;
    private long _position;

    public SensorMetadataTests() => _logic = new SensorLogic("s1", null, _options);

    private static readonly SensorMetadata Garden = new()
    {
        Location = "garden", Model = "HW-MD202", Owner = "ana", Version = "1.0", Extra = new() { ["site"] = "north", ["floor"] = "0" },
    };

    /// <summary>A reading at the next log position, received at its event time, with the device's metadata.</summary>
    private bool Deliver(long timeMs, double v, SensorMetadata? metadata = null) =>
        _logic.Apply(new SensorWorkItem(++_position, timeMs, Reading("s1", timeMs, ("v", v)) with { Metadata = metadata }), _rules, _effects);

    /// <summary>An operator's metadata change at the next log position.</summary>
    private bool Set(OperatorMetadata metadata) =>
        _logic.Apply(SensorWorkItem.MetadataChange(++_position, 0, metadata), _rules, _effects);

    private static string Text(SensorMetadata? m) => m is null
        ? "none"
        : $"location={m.Location ?? "-"} model={m.Model ?? "-"} owner={m.Owner ?? "-"} version={m.Version ?? "-"} "
            + $"extra=[{string.Join(",", (m.Extra ?? []).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}:{p.Value}"))}]";

    private static string Text(OperatorMetadata? m) => m is null
        ? "none"
        : $"location={m.Location ?? "-"} model={m.Model ?? "-"} owner={m.Owner ?? "-"} "
            + $"tags=[{string.Join(",", (m.Tags ?? []).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}:{p.Value}"))}]";

    [Fact]
    public void The_operator_wins_per_field_and_per_tag_and_the_view_and_summary_show_both_sides()
    {
        Deliver(M0, 1, Garden);
        Assert.True(Set(new OperatorMetadata { Location = "roof", Tags = new() { ["site"] = "south", ["team"] = "ops" } }));

        const string Effective = "location=roof model=HW-MD202 owner=ana version=1.0 extra=[floor:0,site:south,team:ops]";
        var view = _logic.View();
        Assert.Equal(Effective, Text(view.Metadata));
        Assert.Equal("location=garden model=HW-MD202 owner=ana version=1.0 extra=[floor:0,site:north]", Text(view.DeviceMetadata));
        Assert.Equal("location=roof model=- owner=- tags=[site:south,team:ops]", Text(view.OperatorMetadata));
        Assert.Equal(Effective, Text(_logic.Metadata));

        var summary = _logic.Snapshot();
        Assert.Equal(Effective, Text(summary.Metadata));
        Assert.Equal("location=roof model=- owner=- tags=[site:south,team:ops]", Text(summary.OperatorMetadata));
        Assert.Equal(M0, summary.LastSeenMs);
        Assert.Equal(_position, summary.AppliedPosition);
    }

    [Fact]
    public void A_device_change_never_overrides_an_operator_field_but_changes_the_others()
    {
        Deliver(M0, 1, Garden);
        Set(new OperatorMetadata { Location = "roof", Owner = "ops", Tags = new() { ["site"] = "south" } });

        Deliver(M0 + 1_000, 2, new SensorMetadata { Location = "cellar", Model = "HW-MD300", Owner = "bob", Extra = new() { ["site"] = "west", ["rack"] = "7" } });

        Assert.Equal("location=roof model=HW-MD300 owner=ops version=1.0 extra=[floor:0,rack:7,site:south]", Text(_logic.Metadata));
        Assert.Equal("location=cellar model=HW-MD300 owner=bob version=1.0 extra=[floor:0,rack:7,site:west]", Text(_logic.View().DeviceMetadata));
    }

    [Fact]
    public void A_change_replaces_what_the_operator_set_and_an_empty_one_clears_it_so_the_device_values_show_again()
    {
        Deliver(M0, 1, Garden);
        Set(new OperatorMetadata { Location = "roof", Model = "X1", Tags = new() { ["site"] = "south" } });

        // The next change sets only the model: the location and the tag are the operator's no more.
        Set(new OperatorMetadata { Model = "X2" });
        Assert.Equal("location=garden model=X2 owner=ana version=1.0 extra=[floor:0,site:north]", Text(_logic.Metadata));
        Assert.Equal("location=- model=X2 owner=- tags=[]", Text(_logic.View().OperatorMetadata));

        Set(new OperatorMetadata());
        Assert.Null(_logic.OperatorMetadata);
        Assert.Null(_logic.View().OperatorMetadata);
        Assert.Null(_logic.Snapshot().OperatorMetadata);
        Assert.Equal(Text(Garden), Text(_logic.Metadata));
    }

    [Fact]
    public void A_sensor_registered_before_its_first_reading_has_a_view_and_a_summary_without_last_seen()
    {
        Assert.False(_logic.Known);
        Assert.True(Set(new OperatorMetadata { Location = "roof", Model = "X1" }));

        Assert.True(_logic.Known);
        Assert.False(_logic.Exists);
        var summary = _logic.Snapshot();
        Assert.Null(summary.LastSeenMs);
        Assert.Empty(summary.Latest);
        Assert.Equal("location=roof model=X1 owner=- version=- extra=[]", Text(summary.Metadata));
        var view = _logic.View();
        Assert.Null(view.LastSeenMs);
        Assert.Null(view.DeviceMetadata);
        Assert.Null(_logic.WakeAtReceivedMs());
        Assert.Empty(_effects.Sent);
        Assert.Empty(_effects.Emitted);

        // Its first reading brings the device's metadata; the operator's fields stay.
        Deliver(M0, 5, Garden);
        Assert.Equal("location=roof model=X1 owner=ana version=1.0 extra=[floor:0,site:north]", Text(_logic.Metadata));
        Assert.Equal(M0, _logic.Snapshot().LastSeenMs);
    }

    [Fact]
    public void A_change_applies_once_per_log_position_and_survives_the_stored_state()
    {
        Set(new OperatorMetadata { Location = "roof", Tags = new() { ["team"] = "ops" } });
        var bytes = Bytes(_logic.State);

        // The log delivers the change again after a restart (at least once): already applied.
        var restored = new SensorLogic("s1", Serializer.Deserialize<SensorState>(bytes), _options);
        Assert.False(restored.Apply(SensorWorkItem.MetadataChange(_position, 0, new OperatorMetadata { Location = "elsewhere" }), _rules, _effects));
        Assert.Equal("location=roof model=- owner=- tags=[team:ops]", Text(restored.OperatorMetadata));
        Assert.Equal("location=roof model=- owner=- version=- extra=[team:ops]", Text(restored.Metadata));
        Assert.Equal(bytes, Bytes(restored.State));
    }

    /// <summary>
    /// A relocation at a log position: readings before it are judged by the old location's rule only, readings after it by
    /// the new location's rule only; the old location's rule, which held, is told it stopped holding at the change (its
    /// alert resolves), and the new location's rule starts from "not holding" (no alert for what came before).
    /// </summary>
    [Fact]
    public void Rules_by_location_follow_a_relocation_from_its_position_on()
    {
        var garden = Threshold("hot-garden", "v", ComparisonOperator.Greater, 10, target: new RuleTarget { Kind = TargetKind.Location, Location = "garden" });
        var roof = Threshold("hot-roof", "v", ComparisonOperator.Greater, 10, target: new RuleTarget { Kind = TargetKind.Location, Location = "roof" });
        _rules = RuleCatalog.From([garden, roof]);

        Deliver(M0, 20, Garden);
        Deliver(M0 + 1_000, 30);
        Assert.Equal([Signal("hot-garden", 1, "s1", true, M0, 20, "20 > 10", sequence: 1)], _effects.Sent);
        _effects.Clear();

        Set(new OperatorMetadata { Location = "roof" });
        Assert.Equal([Signal("hot-garden", 1, "s1", false, M0 + 1_000, null, "the sensor left the rule's target", sequence: 2)], _effects.Sent);
        Assert.Null(_logic.RuleTimeMs("hot-garden"));
        Assert.Equal(M0 + 1_000, _logic.RuleTimeMs("hot-roof"));
        _effects.Clear();

        // The device still says garden: the operator's location stands.
        Deliver(M0 + 2_000, 25, Garden);
        Assert.Equal([Signal("hot-roof", 1, "s1", true, M0 + 2_000, 25, "25 > 10", sequence: 3)], _effects.Sent);
        _effects.Clear();

        // Cleared: the device's location (garden) targets again, from here on.
        Set(new OperatorMetadata());
        Assert.Equal([Signal("hot-roof", 1, "s1", false, M0 + 2_000, null, "the sensor left the rule's target", sequence: 4)], _effects.Sent);
        _effects.Clear();
        Deliver(M0 + 3_000, 26);
        Assert.Equal([Signal("hot-garden", 1, "s1", true, M0 + 3_000, 26, "26 > 10", sequence: 5)], _effects.Sent);
    }

    [Fact]
    public void Rules_by_model_follow_a_change_and_a_rule_not_holding_is_dropped_without_a_signal()
    {
        var x1 = Threshold("cold-x1", "v", ComparisonOperator.Less, 0, target: new RuleTarget { Kind = TargetKind.Model, Model = "X1" });
        var x2 = Threshold("cold-x2", "v", ComparisonOperator.Less, 0, target: new RuleTarget { Kind = TargetKind.Model, Model = "X2" });
        _rules = RuleCatalog.From([x1, x2]);

        Deliver(M0, 5, new SensorMetadata { Model = "X1" });
        Assert.Equal(M0, _logic.RuleTimeMs("cold-x1"));
        Set(new OperatorMetadata { Model = "X2" });
        Assert.Empty(_effects.Sent);
        Assert.Null(_logic.RuleTimeMs("cold-x1"));

        Deliver(M0 + 1_000, -3, new SensorMetadata { Model = "X1" });
        Assert.Equal([Signal("cold-x2", 1, "s1", true, M0 + 1_000, -3, "-3 < 0", sequence: 1)], _effects.Sent);
    }

    /// <summary>A device that moves itself is followed in the same way: the rule of the location it left resolves.</summary>
    [Fact]
    public void A_device_relocation_tells_the_rule_of_the_old_location_that_it_stopped_holding()
    {
        var garden = Threshold("hot-garden", "v", ComparisonOperator.Greater, 10, target: new RuleTarget { Kind = TargetKind.Location, Location = "garden" });
        _rules = RuleCatalog.From([garden]);

        Deliver(M0, 20, Garden);
        Deliver(M0 + 1_000, 20, new SensorMetadata { Location = "cellar" });

        Assert.Equal(
            [
                Signal("hot-garden", 1, "s1", true, M0, 20, "20 > 10", sequence: 1),
                Signal("hot-garden", 1, "s1", false, M0 + 1_000, null, "the sensor left the rule's target", sequence: 2),
            ],
            _effects.Sent);
    }

    [Fact]
    public void The_effective_metadata_is_the_device_instance_itself_without_operator_metadata()
    {
        Assert.Same(Garden, SensorMetadataMerge.Effective(Garden, null));
        Assert.Same(Garden, SensorMetadataMerge.Effective(Garden, new OperatorMetadata()));
        Assert.Null(SensorMetadataMerge.Effective(null, null));
        Assert.Equal("location=- model=- owner=o version=- extra=[]", Text(SensorMetadataMerge.Effective(null, new OperatorMetadata { Owner = "o" })));
    }
}
