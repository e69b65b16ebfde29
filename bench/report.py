#!/usr/bin/env python3
"""Reads the JSON files of one bench/run.sh run and prints the results table (medians of the runs)."""
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
        print(f"| managed memory per active sensor ({fmt(m.get('sensors'))} sensors) | **{fmt(m.get('bytesPerSensor'))} bytes** "
              f"(grain state {fmt(m.get('grainStateBytesPerSensor'))}); apply path {fmt(m.get('allocatedBytesPerReading'), 1)} B/reading allocated | 1 |")
    path = os.path.join(folder, "parse.json")
    if os.path.exists(path):
        for name, f in load(path)["formats"].items():
            print(f"| parse-only, {name} ({f['bytesPerReading']} B/reading), one thread: System.Text.Json token walk / telemetry parser | "
                  f"{fmt(f['stjTokenWalk']['readingsPerSecond'])} / {fmt(f['telemetryParser']['readingsPerSecond'])} readings/s "
                  f"({f['telemetryParser']['allocatedBytesPerReading']} B/reading allocated) | median of 5 |")


if __name__ == "__main__":
    {"half-rate": lambda: half_rate(sys.argv[2], sys.argv[3]), "table": lambda: table(sys.argv[2])}[sys.argv[1]]()
