#!/usr/bin/env bash
# Runs the durable cluster on this machine, all on 127.0.0.1: a private PostgreSQL, RabbitMQ node and Redis
# server, three silo processes and one Api. Everything lives under $OIOT_DIR (default /tmp/orleansiot-cluster).
#
#   scripts/cluster.sh start [--demo]   build, start the servers, the silos and the Api (http://127.0.0.1:5080)
#   scripts/cluster.sh status           processes and the cluster view
#   scripts/cluster.sh kill-silo N      SIGKILL silo N (1-3): Orleans declares it dead and its partitions and grains
#                                       resume on the others within seconds
#   scripts/cluster.sh restart-silo N   SIGTERM silo N (grains write their state, partitions take a last checkpoint),
#                                       then start it again
#   scripts/cluster.sh stop             stop everything started here
#
# Ports (override with the variables): PG_PORT=55432 RABBIT_PORT=55672 REDIS_PORT=56379 API_PORT=5080 MQTT_PORT=1883 SILO_PORT_BASE=5090:
# silo N answers /health/live on SILO_PORT_BASE+N, talks to other silos on SILO_PORT_BASE+100+N and takes Orleans client
# (Api) connections on SILO_PORT_BASE+200+N. SILOS=3 sets how many silo processes start; SKIP_BUILD=1 starts what is built.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=${OIOT_DIR:-/tmp/orleansiot-cluster}
pg_port=${PG_PORT:-55432}
rabbit_port=${RABBIT_PORT:-55672}
redis_port=${REDIS_PORT:-56379}
api_port=${API_PORT:-5080}
mqtt_port=${MQTT_PORT:-1883}
silo_base=${SILO_PORT_BASE:-5090}
silos=${SILOS:-3}
pg_bin=/usr/lib/postgresql/15/bin
node="oiot-cluster-$rabbit_port@localhost"
pg_conn="Host=127.0.0.1;Port=$pg_port;Database=orleansiot;Username=postgres"
amqp="amqp://guest:guest@127.0.0.1:$rabbit_port/"
redis_conn="127.0.0.1:$redis_port"

as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

rabbit_env() {
  export HOME="$dir/rabbitmq" RABBITMQ_NODENAME="$node" RABBITMQ_NODE_PORT="$rabbit_port" \
    RABBITMQ_DIST_PORT=$((rabbit_port + 1000)) ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_MNESIA_BASE="$dir/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$dir/rabbitmq/log" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/rabbitmq/enabled_plugins" \
    RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq/rabbitmq-env.conf" RABBITMQ_PID_FILE="$dir/rabbitmq/rabbitmq.pid" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    ERL_CRASH_DUMP="$dir/rabbitmq/erl_crash.dump" # a node that fails to start writes it (default: the working directory)
}

wait_for() { # what, seconds, command...
  local what=$1 seconds=$2; shift 2
  for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "cluster.sh: $what did not come up within $seconds s (logs in $dir)" >&2; exit 1
}

start_postgres() {
  # PostgreSQL refuses to run as root: as root, its directory belongs to the postgres user and it runs as that user.
  if [ ! -d "$dir/pg/data" ]; then
    mkdir -p "$dir/pg"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/pg"
    as_postgres "$pg_bin/initdb" -D "$dir/pg/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
  fi
  as_postgres "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w start \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/pg -c max_connections=300" >/dev/null
  wait_for PostgreSQL 30 "$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port"
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "select 1 from pg_database where datname='orleansiot'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "create database orleansiot"
}

start_rabbitmq() {
  mkdir -p "$dir/rabbitmq/mnesia" "$dir/rabbitmq/log"
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "$rabbit_port" >"$dir/rabbitmq/rabbitmq.conf"
  echo '[].' >"$dir/rabbitmq/enabled_plugins"; : >"$dir/rabbitmq/rabbitmq-env.conf"
  # The node starts the Erlang port mapper (epmd) when none runs; stop ends it only then (another node may use it).
  epmd -names >/dev/null 2>&1 || : >"$dir/rabbitmq/epmd-started"
  (rabbit_env; cd "$dir/rabbitmq" && setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$dir/rabbitmq/console.log" 2>&1 &)
  wait_for RabbitMQ 90 bash -c "exec 3<>/dev/tcp/127.0.0.1/$rabbit_port"
}

start_redis() {
  # Grain state and cluster membership: the append-only file on, fsynced every second; no RDB snapshots.
  mkdir -p "$dir/redis/data"
  cat >"$dir/redis/redis.conf" <<CONF
bind 127.0.0.1
protected-mode yes
port $redis_port
daemonize no
dir "$dir/redis/data"
logfile "$dir/redis/redis.log"
appendonly yes
appendfsync everysec
save ""
CONF
  (cd "$dir/redis" && setsid bash -c 'echo $$ >"$0"; exec "$@"' "$dir/redis.pid" \
    redis-server "$dir/redis/redis.conf" >"$dir/redis/console.log" 2>&1 &)
  # PING answers PONG once the append-only file is replayed.
  wait_for Redis 30 bash -c "[ \"\$(redis-cli -h 127.0.0.1 -p $redis_port ping)\" = PONG ]"
}

start_silo() { # N
  local n=$1 port=$((silo_base + $1))
  (cd "$root/Silo/bin/Release/net10.0" && Redis__ConnectionString="$redis_conn" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$dir/silo-$n.pid" \
    dotnet Silo.dll --Urls="http://127.0.0.1:$port" --Orleans:SiloName="silo-$n" \
    --Silo:Port=$((silo_base + 100 + n)) --Silo:GatewayPort=$((silo_base + 200 + n)) \
    --Postgres:ConnectionString="$pg_conn" --RabbitMq:Uri="$amqp" >"$dir/silo-$n.log" 2>&1 &)
  wait_for "silo $n" 10 test -s "$dir/silo-$n.pid"
}

start_api() { # demo: true|false
  (cd "$root/Api/bin/Release/net10.0" && ASPNETCORE_ENVIRONMENT=Development Redis__ConnectionString="$redis_conn" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$dir/api.pid" \
    dotnet Api.dll --Urls="http://127.0.0.1:$api_port" --Mqtt:Port="$mqtt_port" \
    --Cluster:Mode=Durable --Postgres:ConnectionString="$pg_conn" --RabbitMq:Uri="$amqp" --Demo:Enabled="$1" \
    >"$dir/api.log" 2>&1 &)
}

stop_pid() { # file signal
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  kill "-$2" "$pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  rm -f "$1"
}

case "${1:-}" in
  start)
    demo=false; [ "${2:-}" = "--demo" ] && demo=true
    mkdir -p "$dir"
    if [ -z "${SKIP_BUILD:-}" ]; then
      dotnet build -c Release --nologo -v q Silo/Silo.csproj >/dev/null
      dotnet build -c Release --nologo -v q Api/Api.csproj >/dev/null
    fi
    start_postgres
    start_rabbitmq
    start_redis
    for n in $(seq "$silos"); do start_silo "$n"; done
    start_api "$demo"
    wait_for "the Api" 60 curl -sf "http://127.0.0.1:$api_port/health/ready"
    echo "cluster up: Api http://127.0.0.1:$api_port, silos on ports $((silo_base + 1))-$((silo_base + silos)), logs in $dir"
    ;;
  status)
    for f in "$dir"/*.pid; do [ -f "$f" ] && printf '%s %s %s\n' "$(basename "$f" .pid)" "$(cat "$f")" \
      "$(kill -0 "$(cat "$f")" 2>/dev/null && echo running || echo stopped)"; done
    printf 'redis 127.0.0.1:%s ping: %s\n' "$redis_port" "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null || echo 'no answer')"
    curl -s -H 'X-Api-Key: dev-operator-key-change-me' "http://127.0.0.1:$api_port/api/v1/cluster"; echo
    ;;
  kill-silo) stop_pid "$dir/silo-$2.pid" KILL ;;
  restart-silo) stop_pid "$dir/silo-$2.pid" TERM; rm -f "$dir/silo-$2.pid"; start_silo "$2" ;;
  stop)
    stop_pid "$dir/api.pid" TERM
    for f in "$dir"/silo-*.pid; do stop_pid "$f" TERM; done
    # Only a node that runs is asked to stop: rabbitmqctl starts a port mapper of its own when none runs, which nothing
    # would end (a second stop, or a cluster that never started).
    if epmd -names 2>/dev/null | grep -q "name ${node%@*} "; then
      (rabbit_env; /usr/lib/rabbitmq/bin/rabbitmqctl -n "$node" shutdown >/dev/null 2>&1 || true) # waits until the node has exited
    fi
    if [ -f "$dir/rabbitmq/epmd-started" ]; then
      # The stopped node leaves epmd's list when its process has exited; epmd refuses -kill while any node is listed.
      for _ in $(seq 50); do epmd -names 2>/dev/null | grep -q "name ${node%@*} " || break; sleep 0.2; done
      epmd -kill >/dev/null 2>&1 || true
      rm -f "$dir/rabbitmq/epmd-started"
    fi
    stop_pid "$dir/redis.pid" TERM # like SHUTDOWN: the append-only file is written and fsynced
    [ -d "$dir/pg/data" ] && as_postgres "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    echo "cluster stopped (data kept in $dir; remove it to start afresh)"
    ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
