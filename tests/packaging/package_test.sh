#!/usr/bin/env bash
# End-to-end test of the Debian package (docs/install.md):
#   1. cpack builds the .deb from BUILD_DIR; its control fields, maintainer
#      scripts, conffiles and payload are checked;
#   2. dpkg -i installs it on this host: user, directories, modes, files,
#      enabled units; `systemd-analyze verify` on the installed units;
#   3. the installed daemons run for real, each the way its unit runs it:
#      procmond --once as root inside the unit's capability bounding set
#      (so a capability missing from CapabilityBoundingSet= fails here), then
#      as a daemon with each real-time source (ebpf, netlink) the host can
#      provide at all, which it opens as root before the drop;
#      sentinelagent --once --no-collector as user sentineld with no
#      capability; sentinelcli finds the scan, the alert and a valid ledger.
#      Every store is in a temp dir, never /var/lib/sentineld;
#   4. install.sh and dpkg -i again (upgrade path) change nothing;
#   5. dpkg --purge removes every file and directory (the user stays).
# A host that already has any SentinelD file in those places is refused
# (exit 77, skipped) and left untouched; the package this test installs is
# purged on every exit path.
#
# Usage: package_test.sh BUILD_DIR SOURCE_DIR
# Exit: 0 passed, 1 failed, 77 skipped (reason printed), 2 bad usage.
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: package_test.sh BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd) || exit 2
SRC=$(cd "$2" && pwd) || exit 2

skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root (installs a .deb into this host)"
for tool in dpkg dpkg-deb dpkg-query dpkg-shlibdeps cpack setpriv systemd-analyze python3 sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is missing (scripts/install-deps.sh installs it)"
done

if grep -q '^SENTINEL_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
  skip "$BUILD is a sanitizer build; the package is built from release builds (ci, release presets)"
fi

# One run at a time on this host (several build dirs share /usr and /etc).
exec 9>/run/lock/sentineld-package-test.lock 2>/dev/null || exec 9>/tmp/sentineld-package-test.lock
flock -w 600 9 || skip "another package test holds the lock for more than 10 minutes"

UNITDIR=/lib/systemd/system
UNITS="sentineld-procmond.service sentinelagent.service"
HOST_PATHS=(/etc/sentineld /var/lib/sentineld /var/log/sentineld /usr/sbin/procmond
  /usr/bin/sentinelagent /usr/bin/sentinelcli /usr/bin/sentinelfleet /usr/share/sentineld /usr/lib/sentineld
  /usr/share/doc/sentineld /usr/lib/tmpfiles.d/sentineld.conf "$UNITDIR/sentineld-procmond.service"
  "$UNITDIR/sentinelagent.service")

status=$(dpkg-query -W -f='${Status}' sentineld 2>/dev/null || true)
if [ -n "$status" ] && [ "$status" != "unknown ok not-installed" ]; then
  skip "package sentineld is on this host ('$status'); refusing to replace or purge it"
fi
present=()
for p in "${HOST_PATHS[@]}"; do
  if [ -e "$p" ] || [ -L "$p" ]; then present+=("$p"); fi
done
if [ ${#present[@]} -gt 0 ]; then
  skip "this host already has SentinelD files the package would own or purge: ${present[*]}; refusing to touch them"
fi
# /run/sentineld may exist already (a procmond started by hand with the
# default ipc.socket_dir): install.sh sets its owner and mode, purge removes
# it only when empty; the test puts owner and mode back.
run_before=""
[ -d /run/sentineld ] && run_before=$(stat -c '%a %U %G' /run/sentineld)

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# ok MESSAGE: the checks since the previous ok passed (else "not ok").
checked=0
ok() {
  if [ "$failures" -eq "$checked" ]; then echo "ok: $*"; else echo "not ok: $*"; fi
  checked=$failures
}
die() {
  echo "FAIL: $*"
  exit 1
}

T=$(mktemp -d /tmp/sentineld-pkg.XXXXXX)
chmod 0755 "$T"
installed=0
demo_pid=""
cleanup() {
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
  if [ "$installed" -eq 1 ]; then
    dpkg --purge sentineld >"$T/cleanup-purge.log" 2>&1 || {
      echo "cleanup: dpkg --purge sentineld failed:"
      cat "$T/cleanup-purge.log"
    }
  fi
  restore_run
  rm -rf "$T"
}
restore_run() {
  if [ -n "$run_before" ]; then
    local mode owner group
    read -r mode owner group <<<"$run_before"
    mkdir -p /run/sentineld
    chown "$owner:$group" /run/sentineld && chmod "$mode" /run/sentineld
  fi
}
trap cleanup EXIT

# dpkg with a wait for the dpkg lock (apt may be running elsewhere).
dpkg_locked() {
  local log=$1
  shift
  for _ in $(seq 1 30); do
    if dpkg "$@" >"$log" 2>&1; then return 0; fi
    grep -qi 'lock' "$log" || return 1
    sleep 2
  done
  return 1
}

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
[ -n "$version" ] || die "no CMAKE_PROJECT_VERSION in $BUILD/CMakeCache.txt"
for b in procmond/procmond sentinelagent/sentinelagent sentinelcli/sentinelcli sentinelfleet/sentinelfleet; do
  [ -x "$BUILD/$b" ] || die "$BUILD/$b is not built (the package_inputs_build test builds it)"
done

# ---------------------------------------------------------------- 1. cpack
echo "== cpack"
if ! cpack --config "$BUILD/CPackConfig.cmake" -B "$T/pkg" >"$T/cpack.log" 2>&1; then
  cat "$T/cpack.log"
  die "cpack failed"
fi
deb=$(ls "$T"/pkg/sentineld_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { cat "$T/cpack.log"; die "cpack wrote no sentineld_*.deb into $T/pkg"; }
ok "built $(basename "$deb")"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = sentineld ] || fail "Package is '$(field Package)', expected sentineld"
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', expected the project's $version"
[ "$(field Section)" = admin ] || fail "Section is '$(field Section)', expected admin"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is '$(field Architecture)'"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
depends=$(field Depends)
for dep in libc6 libsqlite3-0 libssl3 libcap2 passwd; do
  grep -q "\b$dep\b" <<<"$depends" || fail "Depends lacks $dep (dpkg-shlibdeps?): $depends"
done
ok "control: $(field Package) $(field Version) section $(field Section); Depends: $depends"

mkdir -p "$T/control"
dpkg-deb -e "$deb" "$T/control"
for s in postinst prerm postrm; do
  [ -x "$T/control/$s" ] || fail "maintainer script $s missing or not executable"
done
grep -qx /etc/sentineld/config.yaml "$T/control/conffiles" 2>/dev/null ||
  fail "conffiles does not list /etc/sentineld/config.yaml"

dpkg-deb -c "$deb" >"$T/contents"
if awk '$2 != "root/root"' "$T/contents" | grep -q .; then
  fail "payload entries not owned by root/root: $(awk '$2 != "root/root" {print $6}' "$T/contents" | head -3)"
fi
for f in ./usr/sbin/procmond ./usr/bin/sentinelagent ./usr/bin/sentinelcli ./usr/bin/sentinelfleet \
  ./etc/sentineld/config.yaml \
  ./lib/systemd/system/sentineld-procmond.service ./lib/systemd/system/sentinelagent.service \
  ./usr/lib/tmpfiles.d/sentineld.conf ./usr/lib/sentineld/install.sh; do
  grep -q " $f\$" "$T/contents" || fail "payload lacks $f"
done
if grep -qE ' \./(var|run|home|tmp)/' "$T/contents"; then
  fail "payload ships files under /var, /run, /home or /tmp: $(grep -E ' \./(var|run|home|tmp)/' "$T/contents" | head -2)"
fi

# --------------------------------------------------------------- 2. install
echo "== dpkg -i"
installed=1
if ! dpkg_locked "$T/install.log" -i "$deb"; then
  cat "$T/install.log"
  die "dpkg -i failed"
fi
ok "installed"
[ "$(dpkg-query -W -f='${Status}' sentineld)" = "install ok installed" ] || fail "dpkg does not list sentineld as installed"

pw=$(getent passwd sentineld) || die "user sentineld was not created"
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
case "$shell" in */nologin) ;; *) fail "sentineld has shell '$shell', expected nologin" ;; esac
[ "$uid" -lt 1000 ] || fail "sentineld uid $uid is not a system uid"
[ "$(getent group sentineld | cut -d: -f3)" = "$gid" ] || fail "sentineld's primary group is not group sentineld"
[ ! -e "$home" ] || fail "sentineld has an existing home '$home' (expected none)"
ok "user sentineld uid $uid gid $gid shell $shell home $home"

check_modes() {
  local what=$1 path mode owner actual
  while read -r path mode owner; do
    if [ ! -e "$path" ]; then
      fail "$what: $path missing"
      continue
    fi
    actual=$(stat -c '%a %U:%G' "$path")
    [ "$actual" = "$mode $owner" ] || fail "$what: $path is '$actual', expected '$mode $owner'"
  done <<EOF
/etc/sentineld 755 root:root
/etc/sentineld/rules.d 755 root:root
/etc/sentineld/config.yaml 640 root:sentineld
/var/lib/sentineld 750 sentineld:sentineld
/var/log/sentineld 750 sentineld:sentineld
/run/sentineld 750 sentineld:sentineld
EOF
}
check_modes "after install"
ok "directory and config modes checked"

for f in /usr/sbin/procmond /usr/bin/sentinelagent /usr/bin/sentinelcli /usr/bin/sentinelfleet \
  /usr/lib/sentineld/install.sh; do
  [ -x "$f" ] || fail "$f missing or not executable"
done
for u in $UNITS; do [ -f "$UNITDIR/$u" ] || fail "$UNITDIR/$u missing"; done
[ -f /usr/lib/tmpfiles.d/sentineld.conf ] || fail "/usr/lib/tmpfiles.d/sentineld.conf missing"
cmp -s "$SRC/config/config.yaml" /etc/sentineld/config.yaml || fail "/etc/sentineld/config.yaml is not config/config.yaml"
want_rules=$(cd "$SRC/rules" && ls -1 ./*.yaml | sort)
have_rules=$(cd /usr/share/sentineld/rules 2>/dev/null && ls -1 ./*.yaml | sort)
[ -n "$want_rules" ] && [ "$want_rules" = "$have_rules" ] ||
  fail "/usr/share/sentineld/rules differs from rules/: $(diff <(echo "$want_rules") <(echo "$have_rules") | head -4)"
/usr/sbin/procmond --version | grep -q "$version" || fail "procmond --version does not say $version"
/usr/bin/sentinelfleet --version | grep -q "$version" || fail "sentinelfleet --version does not say $version"
for u in $UNITS; do
  exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$UNITDIR/$u")
  [ -x "$exe" ] || fail "$u: ExecStart '$exe' is not an installed executable"
done
grep -q -- '--no-collector' "$UNITDIR/sentinelagent.service" || fail "sentinelagent.service does not pass --no-collector"
if command -v deb-systemd-helper >/dev/null 2>&1; then
  for u in $UNITS; do
    [ -L "/etc/systemd/system/multi-user.target.wants/$u" ] || fail "$u was not enabled (no multi-user.target.wants link)"
  done
fi
ok "files, rules ($(wc -l <<<"$have_rules")), units and ExecStart paths checked"

echo "== systemd-analyze verify"
# Offline: loads the units and their dependencies from the unit path and
# checks every directive; prints nothing when all is well.
unit_paths=()
for u in $UNITS; do unit_paths+=("$UNITDIR/$u"); done
if ! systemd-analyze verify --man=no "${unit_paths[@]}" >"$T/verify.log" 2>&1; then
  cat "$T/verify.log"
  fail "systemd-analyze verify failed"
elif grep -v -e '^$' "$T/verify.log" | grep -q .; then
  cat "$T/verify.log"
  fail "systemd-analyze verify printed warnings"
else
  ok "systemd-analyze verify: clean"
fi
for u in $UNITS; do
  score=$(systemd-analyze security --offline=yes "$UNITDIR/$u" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  echo "   systemd-analyze security $u: exposure ${score:-?}"
done

# ------------------------------------------------------- 3. run the daemons
echo "== installed daemons"
# Every file of this run lives in $T; the installed /etc/sentineld/config.yaml
# is the base layer, as on a real host.
mkdir -p "$T/data" "$T/run"
chown sentineld:sentineld "$T/data" "$T/run"
chmod 0750 "$T/data" "$T/run"
run_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent
  SENTINELD_DATABASE__PATH="$T/data/events.db" SENTINELD_DATABASE__AUDIT_PATH="$T/data/audit.db"
  SENTINELD_IPC__SOCKET_DIR="$T/run" SENTINELD_TELEMETRY__HTTP_LISTEN=)

# A root process running a copy of sleep: hashing it needs the capabilities
# procmond keeps. A user rule in the package's /etc/sentineld/rules.d (the
# installed config's detection.rules_dirs; purge must remove it) matches
# exactly that process, so its alert does not depend on what else runs here.
cp /bin/sleep "$T/sentineld-demo"
cat >/etc/sentineld/rules.d/pkg-test-demo.yaml <<RULE
id: pkg-test-demo
name: Package test demo process
description: The process package_test.sh starts; proves the installed agent loads /etc/sentineld/rules.d.
severity: low
category: process
tags: [test]
enabled: true
dedup_keys: [pid]
query: |
  SELECT pid, name, exe_path FROM processes WHERE exe_path = '$T/sentineld-demo'
RULE
chmod 0644 /etc/sentineld/rules.d/pkg-test-demo.yaml
"$T/sentineld-demo" 300 &
demo_pid=$!
demo_sha=$(sha256sum "$T/sentineld-demo" | cut -d' ' -f1)

# procmond inside the unit's bounding set, with no_new_privs, as systemd
# would start it.
bset=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNITDIR/sentineld-procmond.service" | tail -1)
[ -n "$bset" ] || fail "sentineld-procmond.service has no CapabilityBoundingSet="
bset_arg="-all"
for c in $bset; do
  c=${c#CAP_}
  bset_arg+=",+${c,,}"
done
setpriv --bounding-set="$bset_arg" --no-new-privs "${run_env[@]}" /usr/sbin/procmond --once \
  >"$T/procmond.out" 2>"$T/procmond.err"
rc=$?
if [ $rc -ne 0 ]; then
  cat "$T/procmond.out" "$T/procmond.err"
  fail "procmond --once (bounding set $bset_arg) exited $rc"
fi
grep -q 'privileges dropped' "$T/procmond.out" "$T/procmond.err" ||
  fail "procmond did not log 'privileges dropped'"
ok "procmond --once within CapabilityBoundingSet=$bset"

# procmond as a daemon, once per real-time event source: the source (eBPF
# programs, proc connector) and the control socket are opened as root before
# the drop, so a capability or syscall the source needs and the unit's
# bounding set lacks makes it exit 1 here. A source this host cannot provide
# even with every capability is reported and not checked.
# daemon_run SOURCE TAG [PREFIX...]: 0 when it started SOURCE, wrote a scan
# and exited 0 on SIGTERM.
daemon_run() {
  local src=$1 tag=$2
  shift 2
  local d="$T/daemon-$src-$tag" pid rc
  mkdir -p "$d/run"
  chown -R sentineld:sentineld "$d"
  "$@" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent \
    SENTINELD_DATABASE__PATH="$d/events.db" SENTINELD_DATABASE__AUDIT_PATH="$d/audit.db" \
    SENTINELD_IPC__SOCKET_DIR="$d/run" SENTINELD_TELEMETRY__HTTP_LISTEN= \
    SENTINELD_COLLECTION__REALTIME_SOURCE="$src" /usr/sbin/procmond >"$d.log" 2>&1 &
  pid=$!
  # Until it has written its first scan or exited (a safety bound of 120 s).
  for _ in $(seq 1 1200); do
    kill -0 "$pid" 2>/dev/null || break
    grep -q 'scan written' "$d.log" && break
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  rc=$?
  [ $rc -eq 0 ] && grep -q 'real-time event source started' "$d.log" && grep -q 'scan written' "$d.log"
}
for src in ebpf netlink; do
  checked=$failures
  if daemon_run "$src" unit setpriv --bounding-set="$bset_arg" --no-new-privs; then
    ok "procmond daemon with real-time source $src and its control socket, within the unit's bounding set"
  elif daemon_run "$src" host; then
    grep -v '"scan written"' "$T/daemon-$src-unit.log" | tail -5
    fail "real-time source $src works with all of root's capabilities but not within CapabilityBoundingSet=$bset"
  else
    echo "   real-time source $src is unavailable on this host even as full root; not checked:"
    grep -i 'error\|cannot' "$T/daemon-$src-host.log" | tail -2 | sed 's/^/     /'
  fi
done

cli=("${run_env[@]}" /usr/bin/sentinelcli)
json_value() { # json_value PYTHON_EXPR < json
  python3 -c "import json,sys; rows=json.load(sys.stdin); print($1)"
}
scans=$("${cli[@]}" --json query "SELECT count(*) AS n FROM scan_metadata" | json_value 'rows[0]["n"]')
[ "$scans" = 1 ] || fail "scan_metadata has '$scans' rows after one procmond --once, expected 1"
demo=$("${cli[@]}" --json query "SELECT exe_path, exe_hash FROM processes WHERE pid = :p" --param "p=$demo_pid" |
  json_value '(rows[0]["exe_path"] or "") + " " + (rows[0]["exe_hash"] or "") if rows else "none"')
[ "$demo" = "$T/sentineld-demo $demo_sha" ] ||
  fail "the scan's row for the root-owned demo process is '$demo', expected '$T/sentineld-demo $demo_sha'"
ok "sentinelcli: 1 scan; demo process pid $demo_pid with its SHA-256"

# The agent as the unit runs it: user sentineld, no capability, no_new_privs.
setpriv --reuid=sentineld --regid=sentineld --init-groups --bounding-set=-all --inh-caps=-all --no-new-privs \
  "${run_env[@]}" /usr/bin/sentinelagent --once --no-collector >"$T/agent.out" 2>"$T/agent.err"
rc=$?
if [ $rc -ne 0 ]; then
  cat "$T/agent.out" "$T/agent.err"
  fail "sentinelagent --once --no-collector as sentineld exited $rc"
fi
grep -q '/etc/sentineld/config.yaml' "$T/agent.err" "$T/agent.out" ||
  fail "sentinelagent (user sentineld) did not load /etc/sentineld/config.yaml (group read?)"
grep -q "pkg-test-demo.*pid $demo_pid" "$T/agent.out" || {
  grep -v 'ALERT' "$T/agent.out" | head -20
  fail "the console sink printed no pkg-test-demo alert for pid $demo_pid"
}
"${cli[@]}" --json alerts list --rule pkg-test-demo >"$T/alerts.json" || fail "sentinelcli alerts list failed"
grep -q "sentineld-demo" "$T/alerts.json" || fail "no stored pkg-test-demo alert names the demo process"
"${cli[@]}" audit verify >"$T/verify-audit.log" 2>&1 || {
  cat "$T/verify-audit.log"
  fail "sentinelcli audit verify failed"
}
"${cli[@]}" --json audit list --limit 0 >"$T/audit.json" 2>&1 || fail "sentinelcli audit list failed"
for action in privileges_dropped component_start alert_created; do
  grep -q "\"$action\"" "$T/audit.json" || fail "audit ledger lacks $action"
done
ok "sentinelagent --once --no-collector as sentineld: rules.d rule's alert stored and printed; ledger verifies"
kill "$demo_pid" 2>/dev/null
wait "$demo_pid" 2>/dev/null
demo_pid=""

# ------------------------------------------------------- 4. idempotent again
echo "== install.sh and dpkg -i again"
/usr/lib/sentineld/install.sh >"$T/install-sh.log" 2>&1 || {
  cat "$T/install-sh.log"
  fail "install.sh (second run) failed"
}
if ! dpkg_locked "$T/reinstall.log" -i "$deb"; then
  cat "$T/reinstall.log"
  fail "dpkg -i over the installed package failed"
fi
check_modes "after reinstall"
cmp -s "$SRC/config/config.yaml" /etc/sentineld/config.yaml || fail "reinstall changed /etc/sentineld/config.yaml"
ok "second install.sh and reinstall: modes and config unchanged"

# ------------------------------------------------------------------ 5. purge
echo "== dpkg --purge"
if ! dpkg_locked "$T/purge.log" --purge sentineld; then
  cat "$T/purge.log"
  die "dpkg --purge sentineld failed"
fi
installed=0
left=()
for p in "${HOST_PATHS[@]}" /etc/systemd/system/multi-user.target.wants/sentineld-procmond.service \
  /etc/systemd/system/multi-user.target.wants/sentinelagent.service \
  /etc/systemd/system/sentineld-procmond.service /etc/systemd/system/sentinelagent.service; do
  if [ -e "$p" ] || [ -L "$p" ]; then left+=("$p"); fi
done
if [ -n "$run_before" ]; then
  restore_run
elif [ -e /run/sentineld ]; then
  left+=(/run/sentineld)
fi
[ ${#left[@]} -eq 0 ] || fail "left after purge: ${left[*]}"
status=$(dpkg-query -W -f='${Status}' sentineld 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = "unknown ok not-installed" ] || fail "dpkg still knows sentineld after purge: '$status'"
getent passwd sentineld >/dev/null && echo "   user sentineld stays after purge (Debian policy)"
ok "purged"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "PASSED"
