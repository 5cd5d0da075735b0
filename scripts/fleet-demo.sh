#!/usr/bin/env bash
# The fleet on one machine (docs/fleet.md): a 3-node NATS JetStream cluster on
# loopback, the console (sentinelfleet serve) and three hosts (sentinelagent,
# each with its own data directory and host id; demo-1 with its procmond).
# An alert recreated on demo-1 shows on the console, then a signed query runs
# on every host. Everything lives in one temporary directory and is stopped
# at the end (KEEP=1 leaves it running until Ctrl-C).
#
# Usage (as root, after a build): scripts/fleet-demo.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(cd "${1:-build/ci}" && pwd)
FLEET=$BUILD/sentinelfleet/sentinelfleet
AGENT=$BUILD/sentinelagent/sentinelagent
PROCMOND=$BUILD/procmond/procmond
NATS=${NATS_SERVER:-/usr/sbin/nats-server}

die() { echo "fleet-demo: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root: procmond reads every process, the agents drop to user sentineld"
[ -x "$NATS" ] || die "$NATS not found (apt-get install nats-server; scripts/install-deps.sh)"
for b in "$FLEET" "$AGENT" "$PROCMOND"; do [ -x "$b" ] || die "$b is not built (cmake --build $BUILD)"; done
if ! getent passwd sentineld >/dev/null; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin sentineld
  echo "created system user sentineld"
fi

D=$(mktemp -d /tmp/sentineld-fleet-demo.XXXXXX)
chmod 0755 "$D"
PIDS=()
cleanup() {
  # Only what this script started, each by its process group.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM -- "-${PIDS[i]}" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || true
  done
  echo "fleet-demo: stopped; logs and stores are in $D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts "$@" in its own process group (setsid), output to log $1.
start() {
  local log=$1
  shift
  setsid "$@" >"$log" 2>&1 &
  PIDS+=($!)
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2
  shift 2
  for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "gave up waiting for $what (logs in $D)"
}

echo "== 1. a 3-node NATS JetStream cluster on 127.0.0.1 ($D/nats-*)"
CPORTS=() RPORTS=()
for i in 1 2 3; do CPORTS+=("$(free_port)"); RPORTS+=("$(free_port)"); done
ROUTES=$(printf 'nats-route://127.0.0.1:%s, ' "${RPORTS[@]}")
SERVERS=()
for i in 0 1 2; do
  n=n$((i + 1))
  mkdir -p "$D/nats-$n"
  cat >"$D/nats-$n/server.conf" <<EOF
server_name: $n
listen: 127.0.0.1:${CPORTS[i]}
jetstream { store_dir: "$D/nats-$n/store" }
cluster { name: demo; listen: 127.0.0.1:${RPORTS[i]}; routes: [${ROUTES%, }] }
EOF
  start "$D/nats-$n/server.log" "$NATS" -c "$D/nats-$n/server.conf"
  SERVERS+=("nats://127.0.0.1:${CPORTS[i]}")
done
SERVER_LIST=$(printf '"%s", ' "${SERVERS[@]}")
SERVER_LIST="[${SERVER_LIST%, }]"

echo "== 2. the console: a signing key, streams and buckets (init), sentinelfleet serve"
# The console's web UI (docs/web-ui.md) on CONSOLE_UI (default 127.0.0.1:9465; "" for none),
# when the build has the HTTP endpoint (its --version lists +http).
if "$FLEET" --version | grep -q -- '+http'; then CONSOLE_UI=${CONSOLE_UI-127.0.0.1:9465}; else CONSOLE_UI=""; fi
mkdir -p "$D/console"
cat >"$D/console/config.yaml" <<EOF
fleet: {servers: $SERVER_LIST}
console: {database: $D/console/fleet.db, signing_key: $D/console/console.key, http_listen: "$CONSOLE_UI"}
telemetry: {log_format: text}
EOF
fleet() { "$FLEET" --config "$D/console/config.yaml" "$@"; }
PUB=$(fleet keys generate --output "$D/console/console.key" 2>/dev/null)
echo "   console public key $PUB"
# The cluster elects its JetStream leader within a few seconds: init until it succeeds.
wait_for 30 "the cluster to accept streams" fleet init --timeout 2s
fleet init
start "$D/console/serve.log" "$FLEET" --config "$D/console/config.yaml" serve

echo "== 3. three hosts: demo-1 (with procmond), demo-2 and demo-3 (one scan each)"
for i in 1 2 3; do
  h=$D/demo-$i
  mkdir -p "$h/run" "$h/rules.d"
  cat >"$h/config.yaml" <<EOF
database: {path: $h/events.db, audit_path: $h/audit.db}
collection: {interval_secs: 5}
detection: {interval_secs: 5, rules_dirs: [$h/rules.d]}
ipc: {socket_dir: $h/run}
fleet: {servers: $SERVER_LIST, host_id: demo-$i, trusted_keys: [$PUB]}   # forward: [alerts]
telemetry: {log_format: text, http_listen: ""}
EOF
  chown -R sentineld:sentineld "$h"
  chmod 0750 "$h"
  if [ "$i" = 1 ]; then
    start "$h/agent.log" "$AGENT" --config "$h/config.yaml"
  else
    "$PROCMOND" --config "$h/config.yaml" --once >"$h/procmond.log" 2>&1
    start "$h/agent.log" "$AGENT" --config "$h/config.yaml" --no-collector
  fi
done
hosts_up() { [ "$(fleet --format csv hosts 2>/dev/null | grep -c '^demo-')" = 3 ]; }
wait_for 60 "the three hosts' heartbeats" hosts_up
fleet hosts

echo "== 4. an alert recreated on demo-1: a program run from /tmp (rule proc-exec-from-tmp)"
cp /bin/sleep "$D/demo"
setsid "$D/demo" 600 >/dev/null 2>&1 &
PIDS+=($!)
alert_in() { fleet --format csv alerts list --host demo-1 | grep -q proc-exec-from-tmp; }
wait_for 60 "demo-1's alert on the console" alert_in
fleet alerts list --host demo-1 --limit 5

echo "== 5. a signed live query on every host"
fleet query "SELECT count(*) AS processes, max(start_time) AS newest FROM processes" --timeout 10s

if [ "${KEEP:-0}" = 1 ]; then
  echo "== running; try:  $FLEET --config $D/console/config.yaml alerts list   (Ctrl-C stops everything)"
  if [ -n "$CONSOLE_UI" ]; then echo "   the console's web UI: http://$CONSOLE_UI/"; fi
  wait
fi
