#!/usr/bin/env python3
"""Reads the JSON files of one bench/run.sh run and prints the results table (medians of the runs, and the ratios
between figures of the run)."""
import glob, json, os, statistics, sys


def load(path):
    with open(path) as f:
        return json.load(f)


def runs(folder, prefix):
    return [load(p) for p in sorted(glob.glob(os.path.join(folder, prefix + "-run*.json")))]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def half_rate(folder, prefix):
    applied = median([r.get("appliedReadingsPerSecond") for r in runs(folder, prefix)])
    print(int(applied / 2) if applied else 1000)


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def table(folder):
    machine = load(os.path.join(folder, "machine.json"))
    print(f"Run of {machine['date']} (commit {machine['commit']}): {machine['cores']} cores, {machine['memoryGiB']} GiB, "
          f"{machine['cpu']}, {machine['os']}, .NET SDK {machine['dotnet']}; ingest figures are the median of "
          f"{machine['runs']} runs of {machine['secondsPerRun']} s with {machine['sensors']:,} sensors.\n")
    print("| figure | result | runs |")
    print("|---|---|---|")
    for mode in ("embedded", "durable"):
        for batch in (100, 500):
            rs = runs(folder, f"{mode}-batch{batch}")
            if rs:
                accepted = median([r["readingsPerSecond"] for r in rs])
                applied = median([r.get("appliedReadingsPerSecond") for r in rs])
                p99 = median([r["latencyMs"]["p99"] for r in rs])
                each = ", ".join(fmt(r.get("appliedReadingsPerSecond")) for r in rs)
                print(f"| {mode} ingest, batch {batch}: readings/s accepted / aggregated (request p99) | "
                      f"{fmt(accepted)} / **{fmt(applied)}** ({fmt(p99, 1)} ms) | {each} |")
        per_transport = {}
        for transport in ("http", "mqtt"):
            rs = runs(folder, f"{mode}-{transport}")
            if rs:
                per_transport[transport] = median([r["readingsPerSecond"] for r in rs])
                p99 = median([r["latencyMs"]["p99"] for r in rs])
                each = ", ".join(fmt(r["readingsPerSecond"]) for r in rs)
                print(f"| {mode} ingest, one reading per message over {transport.upper()}, {rs[0]['sensors']:,} sensors: "
                      f"readings/s acknowledged (p99) | **{fmt(per_transport[transport])}** ({fmt(p99, 1)} ms) | {each} |")
        if per_transport.get("http") and per_transport.get("mqtt"):
            print(f"| {mode} ingest, one reading per message: MQTT / HTTP | **{per_transport['mqtt'] / per_transport['http']:.2f}x** | |")
        path = os.path.join(folder, f"{mode}-alert-latency.json")
        if os.path.exists(path):
            probe = load(path)
            load_path = os.path.join(folder, f"{mode}-halfload.json")
            rate = load(load_path)["readingsPerSecond"] if os.path.exists(load_path) else None
            l = probe["latencyMs"]
            print(f"| {mode} ingest-to-alert latency at {fmt(rate)} readings/s: p50 / **p99** / max | "
                  f"{fmt(l['p50'], 1)} / **{fmt(l['p99'], 1)}** / {fmt(l['max'], 1)} ms | {probe['samples']} samples, {probe['timeouts']} timeouts |")
        path = os.path.join(folder, f"{mode}-query.json")
        if os.path.exists(path):
            q = load(path)
            l = q["latencyMs"]
            print(f"| {mode} 24-hour metrics query ({q['points']:,} points, {q['responseBytes']:,} bytes): p50 / **p99** / max | "
                  f"{fmt(l['p50'], 2)} / **{fmt(l['p99'], 2)}** / {fmt(l['max'], 2)} ms | {q['requests']} requests |")
    path = os.path.join(folder, "memory.json")
    if os.path.exists(path):
        m = load(path)
        shape = f"{m['readingsPerSensor']} readings of {m['metricsPerReading']} metrics"
        s = m.get("state")
        if s:
            print(f"| grain state per active sensor ({fmt(s['sensors'])} sensors, {shape}): managed / stored (binary, base64) | "
                  f"**{fmt(s['bytesPerSensor'])} bytes** / {fmt(s['storedBytesPerSensor'])}, {fmt(s['storedBase64BytesPerSensor'])} bytes; "
                  f"apply path {fmt(s['allocatedBytesPerReading'], 1)} B/reading allocated "
                  f"({fmt(s.get('allocatedBytesPerReadingAfterFirst'), 1)} after the first) | 1 |")
        a = m.get("activations")
        if a:
            print(f"| sensor grain activation ({fmt(a['sensors'])} activations, {shape}): in all / grain state / **Orleans overhead** "
                  f"(an empty grain's activation + the sensor grain's shell) | {fmt(a['bytesPerActivation'])} / "
                  f"{fmt(a.get('grainStateBytesPerSensor'))} / **{fmt(a.get('orleansOverheadBytesPerActivation'))}** bytes "
                  f"({fmt(a['emptyGrainBytesPerActivation'])} + {fmt(a.get('sensorGrainShellBytesPerActivation'))}) | 1 |")
            print(f"| idle collection (IdleDeactivation {a['idleDeactivationSeconds']} s, no traffic): all {fmt(a['sensors'])} "
                  f"deactivated after / memory released / kept (stored states {fmt(a['storedBase64BytesPerSensor'])} B) | "
                  f"{fmt(a['allDeactivatedAfterSeconds'], 1)} s / **{fmt(a['releasedBytesPerActivation'])}** / "
                  f"{fmt(a['heldAfterCollectionBytesPerSensor'])} bytes per sensor | 1 |")
    path = os.path.join(folder, "offline.json")
    if os.path.exists(path):
        o = load(path)
        print(f"| offline rule created over {fmt(o['sensors'])} idle sensors (deactivated by Orleans after "
              f"{fmt(o['allDeactivatedAfterSeconds'], 1)} s): applied by every partition / committed; sensor activations after | "
              f"**{fmt(o['ruleAppliedMs'], 1)} ms** / {fmt(o['ruleCommittedMs'], 1)} ms; **{o['sensorActivationsAfterRule']}** "
              f"(then {o['sensorActivationsAfterCommit']}) | 1 |")
        print(f"| managed memory, {fmt(o['sensors'])} sensors: released by idle collection / kept per idle sensor / "
              f"added by the offline rule | {fmt(o['releasedBytesPerSensor'])} / {fmt(o['idleBytesPerSensor'])} / "
              f"{fmt(o['ruleBytesPerSensor'])} bytes per sensor | 1 |")
    raw = from_grains = None
    path = os.path.join(folder, "calls.json")
    if os.path.exists(path):
        c = load(path)
        raw = c["awaitedCallsPerSecond"]
        print(f"| raw Orleans awaited calls/s, {fmt(c['grains'])} grains, {fmt(c['inFlight'])} in flight, one silo "
              f"(one-way calls/s) | **{fmt(raw)}** ({fmt(c['oneWayCallsPerSecond'])}) | "
              f"{', '.join(fmt(r) for r in c['awaitedRuns'])} |")
        if "fromGrainsCallsPerSecond" in c:
            from_grains = c["fromGrainsCallsPerSecond"]
            print(f"| the same awaited calls made from {c['callerGrains']} caller grains (as the partition readers call the sensor "
                  f"grains), {fmt(c['inFlight'])} in flight in all | **{fmt(from_grains)}** | "
                  f"{', '.join(fmt(r) for r in c['fromGrainsRuns'])} |")
    # Ratios between figures of this run (the same machine at the same time).
    embedded = median([r.get("appliedReadingsPerSecond") for r in runs(folder, "embedded-batch500")])
    durable = median([r.get("appliedReadingsPerSecond") for r in runs(folder, "durable-batch500")])
    if embedded and raw:
        print(f"| embedded aggregated ingest (batch 500) / raw awaited call rate (target ≥ 35 %) | **{embedded / raw:.0%}** | |")
    if embedded and from_grains:
        print(f"| embedded aggregated ingest (batch 500) / awaited calls from caller grains (no target; one call per reading at 100,000 sensors) | "
              f"**{embedded / from_grains:.0%}** | |")
    if embedded and durable:
        print(f"| durable aggregated ingest by one silo (batch 500) / embedded (target ≥ 30 %) | **{durable / embedded:.0%}** | |")
    path = os.path.join(folder, "parse.json")
    if os.path.exists(path):
        for name, f in load(path)["formats"].items():
            print(f"| parse-only, {name} ({f['bytesPerReading']} B/reading), one thread: System.Text.Json token walk / telemetry parser | "
                  f"{fmt(f['stjTokenWalk']['readingsPerSecond'])} / {fmt(f['telemetryParser']['readingsPerSecond'])} readings/s "
                  f"({f['telemetryParser']['allocatedBytesPerReading']} B/reading allocated) | median of 5 |")
        codec = load(path).get("logCodec")
        if codec:
            b, j = codec["binary"], codec["json"]
            print(f"| log codec, telemetry entries of {codec['readingsPerEntry']} readings, encode + decode, one thread: binary / JSON | "
                  f"{fmt(b['readingsPerSecond'])} / {fmt(j['readingsPerSecond'])} readings/s "
                  f"({b['bytesPerReading']} / {j['bytesPerReading']} B/reading stored, "
                  f"{b['allocatedBytesPerReading']} / {j['allocatedBytesPerReading']} B/reading allocated) | median of 5 |")


if __name__ == "__main__":
    {"half-rate": lambda: half_rate(sys.argv[2], sys.argv[3]), "table": lambda: table(sys.argv[2])}[sys.argv[1]]()
