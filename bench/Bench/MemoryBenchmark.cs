using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Grains;
using Grains.Abstractions;
using Runtime;

namespace Bench;

/// <summary>
/// Managed memory per active sensor and allocations per applied reading. Activates <c>--sensors</c> sensor grains
/// (default 1,000,000) through the <see cref="GrainFactory"/> and delivers each <c>--readings</c> readings (default 10)
/// of 5 metrics, one string attribute and metadata, named as the simulator's slide format and the design's seed
/// format send them (temperature, humidity, heat_index, solar_radiation, volume_control; light on/off; model and
/// location). Readings go round by round to every sensor, stream time advancing to each reading's event time and due
/// wake-ups firing after each one, like the partition worker does, so minutes close and the state is the steady state
/// of a live sensor (one open minute, one closed).
/// <para>
/// Allocations: <c>allocatedBytesPerReading</c> is everything allocated while delivering a reading (the grain's
/// Receive, due wake-ups with their minute aggregates, the wake-up bookkeeping); <c>grainAllocatedBytesPerReading</c>
/// only the grain's Receive; <c>…AfterFirst</c> the same without each sensor's first reading (which sizes its state).
/// Building the reading message (the parser's work) is not counted.
/// </para>
/// <para>
/// Runtime bookkeeping is included: the partition worker's private <c>Activation</c> class is replicated here
/// (<see cref="BenchActivation"/>, same fields) and held like the worker holds it, in a
/// <c>Dictionary&lt;GrainId, Activation&gt;</c> plus one wake-up entry per sensor in a <c>SortedSet</c> ordered the same
/// way. Every string of a reading (sensor id, metric and attribute names and values, metadata) is a fresh instance, as
/// when readings are deserialized from the log.
/// </para>
/// </summary>
public static class MemoryBenchmark
{
    private static readonly string[] MetricNames = ["temperature", "humidity", "heat_index", "solar_radiation", "volume_control"];
    private static readonly string[] Locations = ["garden", "greenhouse", "warehouse", "office"];
    private static readonly string[] Models = ["HW-MD202", "TH-100", "SR-7"];

    /// <summary>A UTC minute start (2023-11-14T22:14:00Z); readings start 20 s into it.</summary>
    private const long M0 = 1_700_000_040_000;

    public static int Run(string[] args)
    {
        var sensors = Option(args, "--sensors", 1_000_000);
        var readings = Option(args, "--readings", 10);
        var intervalMs = Option(args, "--interval-ms", 6_000);
        var ruleCount = Option(args, "--rules", 0);
        if (sensors < 1 || readings < 1 || intervalMs < 1 || ruleCount < 0)
        {
            Console.Error.WriteLine("--sensors, --readings and --interval-ms must be positive, --rules not negative");
            return 2;
        }

        var options = new SensorGrainOptions();
        var factory = new GrainFactory(options);
        var ids = new string[sensors];
        for (var i = 0; i < sensors; i++)
        {
            ids[i] = string.Create(CultureInfo.InvariantCulture, $"{Locations[i % Locations.Length]}-{i / Locations.Length + 1:00}");
        }

        var rules = RuleCatalog.From(Enumerable.Range(1, ruleCount).Select(r => new RuleDefinition
        {
            Id = string.Create(CultureInfo.InvariantCulture, $"rule-{r:00}"),
            Name = "temperature above 35",
            Enabled = true,
            Severity = Severity.Major,
            Target = new RuleTarget { Kind = TargetKind.All },
            Condition = new RuleCondition { Kind = ConditionKind.Threshold, Metric = "temperature", Operator = ComparisonOperator.Greater, Value = 35 },
            Version = 1,
        }));

        var worker = new Worker(factory, rules);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var start = Stopwatch.GetTimestamp();

        long grainAllocated = 0;
        long deliveryAllocated = 0;
        long steadyGrainAllocated = 0;
        for (var round = 0; round < readings; round++)
        {
            var time = M0 + 20_000 + round * (long)intervalMs;
            for (var i = 0; i < sensors; i++)
            {
                var reading = NewReading(ids[i], i, time, round);
                var activation = worker.ActivateIfNeeded(reading.SensorId);
                var a0 = GC.GetAllocatedBytesForCurrentThread();
                var allocated = worker.Deliver(activation, reading);
                grainAllocated += allocated;
                steadyGrainAllocated += round > 0 ? allocated : 0;
                deliveryAllocated += GC.GetAllocatedBytesForCurrentThread() - a0;
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(start);
        var after = GC.GetTotalMemory(forceFullCollection: true);

        // Grain state only: keep the grains in a plain array, drop the runtime's bookkeeping.
        var sample = factory.SerializeState(worker.Activations[GrainId.Sensor(ids[0])].Grain);
        var grains = worker.Activations.Values.Select(a => a.Grain).ToArray();
        var wakeups = worker.Wakeups.Count;
        var outputs = worker.Outputs;
        var signals = worker.Signals;
        worker.Clear();
        var grainsOnly = GC.GetTotalMemory(forceFullCollection: true);
        var arrayBytes = 24L + 8L * grains.Length;

        var total = (long)sensors * readings;
        var result = new Dictionary<string, object>
        {
            ["benchmark"] = "memory",
            ["sensors"] = sensors,
            ["readingsPerSensor"] = readings,
            ["metricsPerReading"] = MetricNames.Length,
            ["rules"] = ruleCount,
            ["lastReadingsCount"] = options.LastReadingsCount,
            ["bytesPerSensor"] = Math.Round((after - before) / (double)sensors, 1),
            ["grainStateBytesPerSensor"] = Math.Round((grainsOnly - before - arrayBytes) / (double)sensors, 1),
            ["allocatedBytesPerReading"] = Math.Round(deliveryAllocated / (double)total, 1),
            ["grainAllocatedBytesPerReading"] = Math.Round(grainAllocated / (double)total, 1),
            ["grainAllocatedBytesPerReadingAfterFirst"] = readings > 1 ? Math.Round(steadyGrainAllocated / (double)(total - sensors), 1) : 0,
            ["checkpointJsonBytesPerSensor"] = sample.Length,
            ["wakeupEntries"] = wakeups,
            ["outputsEmitted"] = outputs,
            ["signalsSent"] = signals,
            ["readingsPerSecond"] = Math.Round(total / elapsed.TotalSeconds),
            ["bookkeeping"] = "includes a replica of the private Activation class of the partition worker (same fields), held in a dictionary by grain id, and one wake-up entry per sensor in a sorted set, as Runtime/PartitionWorker.cs holds them",
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        GC.KeepAlive(grains);
        GC.KeepAlive(ids);
        GC.KeepAlive(worker);
        return 0;
    }

    /// <summary>One reading as the ingest path hands it over: every string a fresh instance.</summary>
    private static Reading NewReading(string id, int sensor, long timeMs, int round)
    {
        var metrics = new MetricValue[MetricNames.Length];
        for (var m = 0; m < metrics.Length; m++)
        {
            metrics[m] = new MetricValue(Fresh(MetricNames[m]), Math.Round(10 + (sensor % 97) * 0.25 + m * 7.5 + round * 0.1, 2));
        }

        return new Reading
        {
            SensorId = Fresh(id),
            TimestampMs = timeMs,
            Metrics = metrics,
            Attributes = [new AttributeValue(Fresh("light"), Fresh(round % 2 == 0 ? "on" : "off"))],
            Metadata = new SensorMetadata { Model = Fresh(Models[sensor % Models.Length]), Location = Fresh(Locations[sensor % Locations.Length]) },
        };
    }

    private static string Fresh(string s) => new(s.AsSpan());

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>The fields of Runtime/PartitionWorker.cs's private Activation class.</summary>
    private sealed class BenchActivation(GrainId id, IGrain grain)
    {
        public GrainId Id { get; } = id;
        public IGrain Grain { get; } = grain;
        public bool Dirty { get; set; }
        public long? WakeAtMs { get; set; }
        public Dictionary<int, MessageId>? Received { get; set; }
        public long LastUsedTicks { get; set; }
    }

    /// <summary>The wake-up order of the partition worker: time, then grain type and key (ordinal).</summary>
    private sealed class WakeupOrder : IComparer<(long TimeMs, GrainId Id)>
    {
        public static readonly WakeupOrder Instance = new();

        public int Compare((long TimeMs, GrainId Id) x, (long TimeMs, GrainId Id) y)
        {
            var c = x.TimeMs.CompareTo(y.TimeMs);
            if (c != 0) return c;
            c = string.CompareOrdinal(x.Id.Type, y.Id.Type);
            return c != 0 ? c : string.CompareOrdinal(x.Id.Key, y.Id.Key);
        }
    }

    /// <summary>The apply path of the partition worker for telemetry: activation, delivery, wake-ups; outputs are counted and dropped.</summary>
    private sealed class Worker(GrainFactory factory, RuleCatalog rules) : IGrainContext
    {
        private BenchActivation _current = null!;
        private long _streamTimeMs = long.MinValue;

        public Dictionary<GrainId, BenchActivation> Activations { get; private set; } = [];
        public SortedSet<(long TimeMs, GrainId Id)> Wakeups { get; private set; } = new(WakeupOrder.Instance);
        public long Outputs { get; private set; }
        public long Signals { get; private set; }

        public GrainId Id => _current.Id;
        public long StreamTimeMs => _streamTimeMs;
        public RuleCatalog Rules => rules;

        public BenchActivation ActivateIfNeeded(string sensorId)
        {
            var id = GrainId.Sensor(sensorId);
            if (!Activations.TryGetValue(id, out var activation))
            {
                activation = new BenchActivation(id, factory.Activate(id, null));
                Activations[id] = activation;
            }

            return activation;
        }

        /// <summary>Delivers one reading and fires due wake-ups; returns the bytes the grain allocated in Receive.</summary>
        public long Deliver(BenchActivation activation, Reading reading)
        {
            if (reading.TimestampMs > _streamTimeMs)
            {
                _streamTimeMs = reading.TimestampMs;
            }

            _current = activation;
            activation.LastUsedTicks = Stopwatch.GetTimestamp();
            activation.Dirty = true;
            var before = GC.GetAllocatedBytesForCurrentThread();
            activation.Grain.Receive(reading, this);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            FireDueWakeups();
            return allocated;
        }

        public void Send(GrainId target, GrainMessage message) => Signals++;

        public void Emit(GrainOutput output) => Outputs++;

        public void WakeAt(long? timeMs)
        {
            var activation = _current;
            if (activation.WakeAtMs == timeMs)
            {
                return;
            }

            if (activation.WakeAtMs is { } previous)
            {
                Wakeups.Remove((previous, activation.Id));
            }

            if (timeMs <= _streamTimeMs)
            {
                timeMs = _streamTimeMs + 1;
            }

            activation.WakeAtMs = timeMs;
            if (timeMs is { } next)
            {
                Wakeups.Add((next, activation.Id));
            }
        }

        public void Clear()
        {
            Activations = [];
            Wakeups = new(WakeupOrder.Instance);
        }

        private void FireDueWakeups()
        {
            while (Wakeups.Count > 0 && Wakeups.Min.TimeMs <= _streamTimeMs)
            {
                var (timeMs, id) = Wakeups.Min;
                Wakeups.Remove((timeMs, id));
                var activation = Activations[id];
                activation.WakeAtMs = null;
                _current = activation;
                activation.LastUsedTicks = Stopwatch.GetTimestamp();
                activation.Dirty = true;
                activation.Grain.Wake(this);
            }
        }
    }
}
