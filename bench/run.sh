#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md on this machine, all on 127.0.0.1, in about fifteen minutes, and writes
# bench/results/<UTC time>/ (one JSON file per run, the logs of the Apis, the durable silo and the in-process silos, and results.md: the table
# with the median of the runs and the ratios between the figures of this run).
#
#   bench/run.sh                  everything: parse, memory, calls, offline, embedded (query, ingest, alert latency),
#                                 durable (the same)
#   bench/run.sh calls offline    only those parts (any of: parse memory calls offline embedded durable)
#
# Parts: parse (parse-only throughput), memory (grain state per sensor, Orleans activation overhead, idle collection),
# calls (raw Orleans awaited-call rate to 10,000 grains, 1,000 in flight, one silo: the ceiling of one grain per device;
# beside it the same calls made from 8 caller grains, as the partition readers make theirs),
# offline (one offline rule created over an idle fleet deactivated by Orleans), embedded and durable (the Api over HTTP).
# Settings (environment): BENCH_RUNS=3 runs per ingest figure, BENCH_SECONDS=10 seconds per run,
# BENCH_SENSORS=100000 simulated sensors for ingest, BENCH_MEMORY_SENSORS=200000 sensors' state,
# BENCH_ACTIVATIONS=100000 sensor grain activations, BENCH_OFFLINE_SENSORS=200000, BENCH_PROBES=1200 alert samples
# (about 70 s: every run spans a minute close of the whole fleet),
# BENCH_TRANSPORT_SENSORS=2000 devices for the HTTP/MQTT comparison (one MQTT connection each).
# Ports: embedded Api 5280 (MQTT 5282), durable Api 5281 with PostgreSQL 55532, RabbitMQ 55772, Redis 56479 and one silo on 5391.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=${BENCH_RUNS:-3}
seconds=${BENCH_SECONDS:-10}
sensors=${BENCH_SENSORS:-100000}
memory_sensors=${BENCH_MEMORY_SENSORS:-200000}
activations=${BENCH_ACTIVATIONS:-100000}
offline_sensors=${BENCH_OFFLINE_SENSORS:-200000}
probes=${BENCH_PROBES:-1200}
transport_sensors=${BENCH_TRANSPORT_SENSORS:-2000}
parts=${*:-parse memory calls offline embedded durable}
out="$root/bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
operator_key=bench-operator-key
device_key=bench-device-key
embedded_port=5280
embedded_mqtt_port=5282
durable_dir=$(mktemp -d /tmp/oiot-bench-XXXXXX)
chmod 755 "$durable_dir" # PostgreSQL runs as the postgres user
api_pid=
load= # the half load of latency(), a process group of its own while it runs

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
  [ -n "$load" ] && kill -TERM -- -"$load" 2>/dev/null || true
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null || true
  if [ -d "$durable_dir" ]; then
    OIOT_DIR=$durable_dir PG_PORT=55532 RABBIT_PORT=55772 REDIS_PORT=56479 API_PORT=5281 SILO_PORT_BASE=5390 scripts/cluster.sh stop >/dev/null 2>&1 || true
    rm -rf "$durable_dir"
  fi
}
trap cleanup EXIT

log "building (Release)"
for project in Api/Api.csproj Silo/Silo.csproj Simulator/Simulator.csproj bench/Bench/Bench.csproj; do
  dotnet build -c Release --nologo -v q -p:SkipClientApp=true "$project" >/dev/null
done
simulator() { dotnet Simulator/bin/Release/net10.0/Simulator.dll --quiet "$@"; }
bench() { dotnet bench/Bench/bin/Release/net10.0/Bench.dll "$@"; }

cat >"$out/machine.json" <<JSON
{"date":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","commit":"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)",
 "cores":$(nproc),"memoryGiB":$(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo),
 "cpu":"$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)","os":"$(. /etc/os-release && echo "$PRETTY_NAME")",
 "dotnet":"$(dotnet --version)","runs":$runs,"secondsPerRun":$seconds,"sensors":$sensors}
JSON

wait_ready() { # url seconds
  for _ in $(seq $(($2 * 5))); do curl -sf "$1/health/ready" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "no answer from $1 within $2 s"; exit 1
}

# Ingest at saturation: accepted (202) and applied (every partition checkpointed) readings per second.
ingest() { # name url batch device_key operator_key
  # Warm-up, not counted: one reading of every sensor (the Api admits each sensor's names with its grain once, and
  # the grains activate), then 5 s at saturation.
  log "$1: batch $3, warm-up (every sensor once, then 5 s; not counted)"
  simulator --url "$2" --key "$4" --sensors "$sensors" --batch "$3" --total-rate 0 --concurrency 16 --count "$sensors" >/dev/null
  simulator --url "$2" --key "$4" --sensors "$sensors" --batch "$3" --total-rate 0 --concurrency 16 --duration 5s >/dev/null
  for run in $(seq "$runs"); do
    log "$1: batch $3, run $run of $runs ($seconds s)"
    simulator --url "$2" --key "$4" --operator-key "$5" --sensors "$sensors" --batch "$3" --total-rate 0 \
      --concurrency 16 --duration "${seconds}s" --wait-applied --summary "$out/$1-batch$3-run$run.json" >/dev/null
  done
}

# One reading per message from the same devices over HTTP and over MQTT (a connection per device, QoS 1), at
# saturation with 64 messages in flight: readings/s acknowledged and latency.
transports() { # name url mqtt_url device_key
  for transport in http mqtt; do
    log "$1: one reading per message over $transport, warm-up (every device once; not counted)"
    simulator --url "$2" --transport "$transport" --mqtt-url "$3" --key "$4" --sensors "$transport_sensors" --total-rate 0 \
      --concurrency 64 --count "$transport_sensors" >/dev/null
    for run in $(seq "$runs"); do
      log "$1: $transport, run $run of $runs ($seconds s)"
      simulator --url "$2" --transport "$transport" --mqtt-url "$3" --key "$4" --sensors "$transport_sensors" --total-rate 0 \
        --concurrency 64 --duration "${seconds}s" --summary "$out/$1-$transport-run$run.json" >/dev/null
    done
  done
}

# Ingest-to-alert latency with a load of half the saturation rate running next to the probe for all of its samples: the
# probe starts no sample 150 s after it began (1,200 take about 75 s when alerts come at once); the load, started 3 s
# before it, may run 240 s (the probe's start, its last sample's 20 s of waiting and its two requests) and is stopped
# when the probe is done.
latency() { # name url device_key operator_key
  local rate
  rate=$(python3 bench/report.py half-rate "$out" "$1-batch100")
  log "$1: alert latency with a load of $rate readings/s"
  # A process group of its own (set -m), stopped with SIGTERM to the group, on which the simulator writes its summary and
  # exits (SIGINT would not do: background commands of a script, and of one started in the background, ignore it).
  set -m
  simulator --url "$2" --key "$3" --sensors "$sensors" --batch 100 --total-rate "$rate" --concurrency 64 \
    --duration 240s --summary "$out/$1-halfload.json" >/dev/null </dev/null &
  load=$!
  set +m
  sleep 3
  simulator --url "$2" --key "$3" --operator-key "$4" --alert-probe "$probes" --probe-interval 50ms --duration 150s \
    --summary "$out/$1-alert-latency.json" >/dev/null
  kill -TERM -- -"$load" 2>/dev/null || true
  wait "$load" || true
  load=
}

for part in $parts; do
  case $part in
    parse)
      log "parse: System.Text.Json and the telemetry parser, one thread"
      bench parse --seconds 1 --runs 5 >"$out/parse.json"
      ;;
    memory)
      log "memory: state of $memory_sensors sensors, $activations sensor grain activations, idle collection"
      bench memory --sensors "$memory_sensors" --activations "$activations" >"$out/memory.json" 2>"$out/memory.log"
      ;;
    calls)
      # Server GC, as the Api and the silos run.
      log "calls: raw Orleans awaited calls to 10,000 grains, 1,000 in flight, one silo (from outside any grain, then from 8 caller grains)"
      DOTNET_gcServer=1 bench calls --grains 10000 --in-flight 1000 >"$out/calls.json" 2>"$out/calls.log"
      ;;
    offline)
      log "offline: one offline rule over $offline_sensors idle sensors"
      bench offline --sensors "$offline_sensors" >"$out/offline.json" 2>"$out/offline.log"
      ;;
    embedded)
      log "embedded: starting the Api (in-memory log and state, co-hosted silo)"
      # Rate limits off and a large Idempotency-Key bound: the figures are the machine's, not the limits' (the simulator
      # sends a key per request, and one reading per request reaches the default 100,000 keys within a few runs).
      (cd Api/bin/Release/net10.0 && exec env ASPNETCORE_ENVIRONMENT=Production Logging__LogLevel__Default=Warning \
        Auth__Keys__0__Name=bench-operator Auth__Keys__0__Key=$operator_key Auth__Keys__0__Role=operator \
        Auth__Keys__1__Name=bench-device Auth__Keys__1__Key=$device_key Auth__Keys__1__Role=device \
        RateLimits__Enabled=false Telemetry__MaxIdempotencyKeysPerCaller=10000000 dotnet Api.dll --Urls="http://127.0.0.1:$embedded_port" --Mqtt:Port=$embedded_mqtt_port >"$out/embedded-api.log" 2>&1) &
      api_pid=$!
      url="http://127.0.0.1:$embedded_port"
      wait_ready "$url" 60
      log "embedded: 24-hour metrics query"
      bench query --url "$url" --device-key "$device_key" --operator-key "$operator_key" >"$out/embedded-query.json"
      ingest embedded "$url" 100 "$device_key" "$operator_key"
      ingest embedded "$url" 500 "$device_key" "$operator_key"
      latency embedded "$url" "$device_key" "$operator_key"
      transports embedded "$url" "mqtt://127.0.0.1:$embedded_mqtt_port" "$device_key"
      kill "$api_pid"; wait "$api_pid" 2>/dev/null || true; api_pid=
      ;;
    durable)
      log "durable: PostgreSQL, RabbitMQ, Redis, one silo and the Api (scripts/cluster.sh)"
      export OIOT_DIR=$durable_dir PG_PORT=55532 RABBIT_PORT=55772 REDIS_PORT=56479 API_PORT=5281 SILO_PORT_BASE=5390 SILOS=1 SKIP_BUILD=1
      # As for the embedded Api: the figures are the machine's, not the rate limits' (1,000 queries in a few seconds
      # would pass the operator key's 100 requests/s).
      export RateLimits__Enabled=false Telemetry__MaxIdempotencyKeysPerCaller=10000000
      scripts/cluster.sh start >"$out/durable-start.log"
      url="http://127.0.0.1:5281"
      # scripts/cluster.sh runs the Development keys.
      log "durable: 24-hour metrics query"
      bench query --url "$url" --device-key dev-device-key-change-me --operator-key dev-operator-key-change-me >"$out/durable-query.json"
      ingest durable "$url" 100 dev-device-key-change-me dev-operator-key-change-me
      ingest durable "$url" 500 dev-device-key-change-me dev-operator-key-change-me
      latency durable "$url" dev-device-key-change-me dev-operator-key-change-me
      scripts/cluster.sh stop >/dev/null
      cp "$durable_dir"/api.log "$out/durable-api.log"; cp "$durable_dir"/silo-1.log "$out/durable-silo.log"
      unset OIOT_DIR PG_PORT RABBIT_PORT REDIS_PORT API_PORT SILO_PORT_BASE SILOS SKIP_BUILD
      ;;
    *) log "unknown part '$part' (parse memory calls offline embedded durable)"; exit 2 ;;
  esac
done

python3 bench/report.py table "$out" | tee "$out/results.md"
log "results in $out"
