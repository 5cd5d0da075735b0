#!/usr/bin/env bash
# Regenerates the ATT&CK coverage table of docs/rules.md from the built-in
# rules (tests/rules/rules_library_test.cc checks it is current).
# Usage: scripts/update-rules-coverage.sh [path/to/sentinelcli]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cli="${1:-$root/build/ci/sentinelcli/sentinelcli}"
doc="$root/docs/rules.md"
table="$(mktemp)"
trap 'rm -f "$table" "$table.doc"' EXIT
"$cli" rules coverage --builtin --markdown > "$table"
awk -v table="$table" '
  /^<!-- attack-coverage:begin / { print; while ((getline line < table) > 0) print line; skip = 1; next }
  /^<!-- attack-coverage:end -->/ { skip = 0 }
  !skip { print }
' "$doc" > "$table.doc"
mv "$table.doc" "$doc"
