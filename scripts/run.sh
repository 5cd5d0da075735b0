#!/usr/bin/env bash
# Runs SentinelD from the build tree on a local data directory (./data), with
# config/local.yaml layered over the defaults. Usage: scripts/run.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/ci}
# Started as root, sentinelagent and procmond both drop to the unprivileged
# user of privileges.user (default sentineld); only a small launcher of
# procmond stays root. Create the user the way a package would, and give it
# ./data the way an install gives it /var/lib/sentineld (a ./data left by an
# older run, when the agent kept root, may hold root's files).
if [ "$(id -u)" -eq 0 ]; then
  if ! getent passwd sentineld >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin sentineld
    echo "created system user sentineld" >&2
  fi
  mkdir -p data
  chown -R --no-dereference sentineld:sentineld data
  chmod 0750 data
fi
export SENTINELD_DATABASE__PATH=${SENTINELD_DATABASE__PATH:-$PWD/data/events.db}
export SENTINELD_DATABASE__AUDIT_PATH=${SENTINELD_DATABASE__AUDIT_PATH:-$PWD/data/audit.db}

# stdout is for alerts only (SPEC §16): everything this script says goes to stderr.
exec 3>&1 1>&2
echo "SentinelD: event store $SENTINELD_DATABASE__PATH, audit ledger $SENTINELD_DATABASE__AUDIT_PATH"
echo "  sentinelagent runs the built-in rules and prints alerts on stdout; it starts and supervises procmond."
echo "  Its log (stderr): what started, problems, and a summary line once a minute."
echo "  From another terminal, e.g.:"
echo "    $BUILD/sentinelcli/sentinelcli --config config/local.yaml query 'SELECT pid, name, exe_path FROM processes LIMIT 20'"
echo "    $BUILD/sentinelcli/sentinelcli --config config/local.yaml alerts list"
echo "    cp /bin/sleep /tmp/demo && /tmp/demo 600 &    # raises proc-exec-from-tmp within a second"
echo "  stop with Ctrl-C"
exec "$BUILD/sentinelagent/sentinelagent" --config config/local.yaml 1>&3 3>&-
