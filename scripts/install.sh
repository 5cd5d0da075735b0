#!/usr/bin/env bash
# Sets up a host for an installed SentinelD (docs/install.md). Idempotent:
# run it again at any time; it only creates what is missing and puts owners
# and modes back to the ones below.
#
#   - system group and user `sentineld` (no home, nologin shell)
#   - /etc/sentineld           0755 root:root
#   - /etc/sentineld/rules.d   0755 root:root   (detection.rules_dirs)
#   - /etc/sentineld/config.yaml 0640 root:sentineld (copied from the default
#     when missing; never overwritten)
#   - /var/lib/sentineld       0750 sentineld:sentineld (event store, ledger)
#   - /var/log/sentineld       0750 sentineld:sentineld (file sinks)
#   - /run/sentineld           0750 sentineld:sentineld (control sockets; on
#     systemd hosts from tmpfiles.d at every boot)
#   - on a host running systemd: `systemctl daemon-reload`
#
# Used by the source install (`cmake --install`, as root) and by the .deb's
# postinst. From a source tree it can also do the install itself:
#
#   scripts/install.sh --build build/ci [--prefix /usr/local]
#       cmake --install build/ci --prefix P, then the set-up above
#   /usr/lib/sentineld/install.sh [--prefix /usr]
#       the set-up only (P/share/sentineld/config.yaml is the default config)
#
# Exit codes: 0 done, 1 a step failed, 2 bad usage.
set -euo pipefail

usage() {
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
}

build=""
prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) [ $# -ge 2 ] || { echo "install.sh: --build needs a build directory" >&2; exit 2; }
      build=$2; shift 2 ;;
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }
      prefix=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: must run as root (creates a system user and directories under /etc and /var)" >&2
  exit 1
fi

USER_NAME=sentineld
NOLOGIN=/usr/sbin/nologin
[ -x "$NOLOGIN" ] || NOLOGIN=/sbin/nologin

if [ -n "$build" ]; then
  [ -f "$build/cmake_install.cmake" ] || { echo "install.sh: $build is not a configured build directory" >&2; exit 2; }
  prefix=${prefix:-/usr/local}
  # The set-up runs below, once.
  SENTINELD_SKIP_SETUP=1 cmake --install "$build" --prefix "$prefix"
fi

# Where the default config comes from: the installed copy, else the tree.
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$prefix" ]; then
  case "$here" in
    */lib/sentineld) prefix=${here%/lib/sentineld} ;;
    *) prefix=/usr/local ;;
  esac
fi
default_config=""
for c in "$prefix/share/sentineld/config.yaml" "$here/../config/config.yaml"; do
  if [ -f "$c" ]; then default_config=$c; break; fi
done

say() { echo "install.sh: $*"; }

# ensure_dir PATH MODE OWNER GROUP
ensure_dir() {
  if [ ! -d "$1" ]; then
    install -d -m "$2" -o "$3" -g "$4" "$1"
    say "created $1 ($2 $3:$4)"
  else
    chown "$3:$4" "$1"
    chmod "$2" "$1"
  fi
}

# --- user and group ---
if ! getent group "$USER_NAME" >/dev/null; then
  groupadd --system "$USER_NAME"
  say "created system group $USER_NAME"
fi
if ! getent passwd "$USER_NAME" >/dev/null; then
  useradd --system --gid "$USER_NAME" --no-create-home --home-dir /nonexistent \
    --shell "$NOLOGIN" --comment "SentinelD collector and agent" "$USER_NAME"
  say "created system user $USER_NAME"
fi

# --- directories ---
ensure_dir /etc/sentineld 0755 root root
ensure_dir /etc/sentineld/rules.d 0755 root root
ensure_dir /var/lib/sentineld 0750 "$USER_NAME" "$USER_NAME"
ensure_dir /var/log/sentineld 0750 "$USER_NAME" "$USER_NAME"
ensure_dir /run/sentineld 0750 "$USER_NAME" "$USER_NAME"

# --- configuration ---
conf=/etc/sentineld/config.yaml
if [ ! -e "$conf" ]; then
  if [ -z "$default_config" ]; then
    echo "install.sh: $conf is missing and no default config was found under $prefix/share/sentineld" >&2
    exit 1
  fi
  install -m 0640 -o root -g "$USER_NAME" "$default_config" "$conf"
  say "installed $conf from $default_config"
else
  # The agent runs as sentineld and must read it; others must not (it may
  # name a signing key or carry sink credentials).
  chown "root:$USER_NAME" "$conf"
  chmod 0640 "$conf"
fi

# --- systemd ---
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload || say "systemctl daemon-reload failed (continuing)"
  say "units: systemctl enable --now sentineld-procmond.service sentinelagent.service"
else
  say "systemd is not running here: start the daemons by hand (docs/install.md, 'Without systemd')"
fi
say "done"
