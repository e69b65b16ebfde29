using System.Collections.Concurrent;
using Grains.Abstractions;

namespace Api.Ingest;

/// <summary>
/// Bounds the distinct metric and attribute names of each sensor (Grains:MaxMetricNames, Grains:MaxAttributeNames) with a
/// clear answer at ingest: before readings go to the log, the names a sensor does not have yet are admitted by its grain
/// (<see cref="ISensorGrain.AdmitNamesAsync"/>: the grain holds the names and counts admitted ones at once, whichever Api
/// node asks), and a reading that would pass the limit is rejected with its index, nothing of it stored. The names each
/// sensor is known to have are remembered here, so that a fleet sending its usual metrics asks no grain; the memory is
/// bounded (<see cref="MaxSensors"/>: past it, the cache starts again empty and sensors are asked once more).
/// </summary>
public sealed class SensorNameAdmission(IGrainFactory grains)
{
    /// <summary>Sensors whose names are remembered at most.</summary>
    public const int MaxSensors = 200_000;

    /// <summary>Grain calls in flight at once for one request.</summary>
    private const int CallsInFlight = 256;

    private ConcurrentDictionary<string, Known> _known = new(StringComparer.Ordinal);

    /// <summary>
    /// Keeps the readings whose names their sensor admits (with their indexes in the body); adds the others to
    /// <paramref name="rejected"/>.
    /// </summary>
    public async Task<(List<Reading> Readings, List<int> Indexes)> AdmitAsync(List<Reading> readings, List<int> indexes,
        List<RejectedItem> rejected)
    {
        var known = _known;
        Dictionary<string, (HashSet<string> Metrics, HashSet<string> Attributes)>? unknown = null;
        foreach (var reading in readings)
        {
            known.TryGetValue(reading.SensorId, out var names);
            foreach (var metric in reading.Metrics)
            {
                if (names is null || !names.HasMetric(metric.Name))
                {
                    Ask(ref unknown, reading.SensorId).Metrics.Add(metric.Name);
                }
            }

            foreach (var attribute in reading.Attributes ?? [])
            {
                if (names is null || !names.HasAttribute(attribute.Name))
                {
                    Ask(ref unknown, reading.SensorId).Attributes.Add(attribute.Name);
                }
            }
        }

        if (unknown is null)
        {
            return (readings, indexes);
        }

        var sensors = unknown.Keys.ToArray();
        var admissions = new NameAdmission[sensors.Length];
        // A body of new sensors (10,000 at most) asks their grains CallsInFlight at a time, not all at once.
        for (var start = 0; start < sensors.Length; start += CallsInFlight)
        {
            var count = Math.Min(CallsInFlight, sensors.Length - start);
            var window = new Task<NameAdmission>[count];
            for (var i = 0; i < count; i++)
            {
                var sensor = sensors[start + i];
                window[i] = grains.GetGrain<ISensorGrain>(sensor).AdmitNamesAsync([.. unknown[sensor].Metrics], [.. unknown[sensor].Attributes]);
            }

            (await Task.WhenAll(window)).CopyTo(admissions, start);
        }
        if (known.Count > MaxSensors)
        {
            _known = known = new ConcurrentDictionary<string, Known>(StringComparer.Ordinal);
        }

        Dictionary<string, NameAdmission>? refusals = null;
        for (var i = 0; i < sensors.Length; i++)
        {
            var admission = admissions[i];
            var asked = unknown[sensors[i]];
            asked.Metrics.ExceptWith(admission.RefusedMetrics);
            asked.Attributes.ExceptWith(admission.RefusedAttributes);
            known.AddOrUpdate(sensors[i], static (_, added) => new Known([.. added.Metrics], [.. added.Attributes]),
                static (_, current, added) => current.With(added.Metrics, added.Attributes), asked);
            if (!admission.AllAdmitted)
            {
                (refusals ??= new(StringComparer.Ordinal))[sensors[i]] = admission;
            }
        }

        if (refusals is null)
        {
            return (readings, indexes);
        }

        var keptReadings = new List<Reading>(readings.Count);
        var keptIndexes = new List<int>(readings.Count);
        for (var i = 0; i < readings.Count; i++)
        {
            var reading = readings[i];
            if (refusals.TryGetValue(reading.SensorId, out var admission) && Refusal(reading, admission) is { } error)
            {
                rejected.Add(new RejectedItem(indexes[i], error));
            }
            else
            {
                keptReadings.Add(reading);
                keptIndexes.Add(indexes[i]);
            }
        }

        return (keptReadings, keptIndexes);
    }

    private static (HashSet<string> Metrics, HashSet<string> Attributes) Ask(
        ref Dictionary<string, (HashSet<string> Metrics, HashSet<string> Attributes)>? unknown, string sensorId)
    {
        unknown ??= new(StringComparer.Ordinal);
        if (!unknown.TryGetValue(sensorId, out var names))
        {
            unknown[sensorId] = names = (new HashSet<string>(StringComparer.Ordinal), new HashSet<string>(StringComparer.Ordinal));
        }

        return names;
    }

    private static string? Refusal(Reading reading, NameAdmission admission)
    {
        foreach (var metric in reading.Metrics)
        {
            if (admission.RefusedMetrics.Contains(metric.Name, StringComparer.Ordinal))
            {
                return $"metric '{metric.Name}' would be a new metric of sensor '{reading.SensorId}', which has "
                    + $"{admission.MaxMetricNames} already, its limit (Grains:MaxMetricNames)";
            }
        }

        foreach (var attribute in reading.Attributes ?? [])
        {
            if (admission.RefusedAttributes.Contains(attribute.Name, StringComparer.Ordinal))
            {
                return $"attribute '{attribute.Name}' would be a new attribute of sensor '{reading.SensorId}', which has "
                    + $"{admission.MaxAttributeNames} already, its limit (Grains:MaxAttributeNames)";
            }
        }

        return null;
    }

    /// <summary>
    /// Names a sensor is known to have, as arrays (a sensor has a handful; lookups compare the parser's interned names by
    /// reference first): about a hundred bytes per sensor. Never changed in place: an update makes a new one.
    /// </summary>
    private sealed class Known(string[] metrics, string[] attributes)
    {
        public string[] Metrics { get; } = metrics;

        public string[] Attributes { get; } = attributes;

        public bool HasMetric(string name) => Array.IndexOf(Metrics, name) >= 0;

        public bool HasAttribute(string name) => Array.IndexOf(Attributes, name) >= 0;

        public Known With(IEnumerable<string> metrics, IEnumerable<string> attributes) =>
            new([.. Metrics.Union(metrics, StringComparer.Ordinal)], [.. Attributes.Union(attributes, StringComparer.Ordinal)]);
    }
}
