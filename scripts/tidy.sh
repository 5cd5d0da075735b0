#!/usr/bin/env bash
# clang-tidy over the product code with the repository's .clang-tidy: every .cc of
# sentinel-lib, procmond, sentinelagent, sentinelcli and sentinelfleet that the build compiles
# (compile_commands.json), except tests (*_test.cc, and any tests/ directory such as
# sentinelagent/tests/, whose targets also use the test PCH that GCC built and clang
# cannot read), test helpers (*_helper.cc, sentinel-lib/sentinel/testing/) and
# everything under tests/, bench/ and fuzz/.
# The function size and cognitive complexity checks are errors (.clang-tidy
# WarningsAsErrors): any error, in any file, makes the script exit 1. Other
# findings are printed as warnings.
#
#   scripts/tidy.sh [BUILD_DIR]      (default build/$PRESET, PRESET=ci)
#
# BUILD_DIR must be configured and built (generated headers such as the BPF
# skeleton must exist). TIDY_JOBS (default 2) clang-tidy processes run at once.
# Files are checked most recently changed first (git history order). TIDY_DEADLINE
# (epoch seconds, optional): no file is started after it; the files left are
# counted in a final "tidy: deadline" line (CI's time budget, .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build/${PRESET:-ci}}
jobs=${TIDY_JOBS:-2}
db=$build/compile_commands.json
if [[ ! -f $db ]]; then
  echo "tidy: $db not found: configure and build first (make build)" >&2
  exit 2
fi
command -v clang-tidy >/dev/null || {
  echo "tidy: clang-tidy not installed (scripts/install-deps.sh)" >&2
  exit 2
}

mapfile -t files < <(grep -o '"file": *"[^"]*"' "$db" | sed -e 's/^"file": *"//' -e 's/"$//' -e "s|^$root/||" |
  grep -E '^(sentinel-lib|procmond|sentinelagent|sentinelcli|sentinelfleet)/.*\.cc$' |
  grep -vE '_test\.cc$|_helper\.cc$|/tests/|^sentinel-lib/sentinel/testing/' | sort -u)
# Most recently changed first: where a new finding is likeliest, and what a deadline
# must not leave out. Files git does not know (none expected) go last.
if git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t files < <(
    { git log --format= --name-only 2>/dev/null | awk 'NF && !seen[$0]++ {print "R " NR " " $0}'
      printf 'F %s\n' "${files[@]}"; } |
    awk '$1 == "R" {rank[$3] = $2; next} {f = $2; print ((f in rank) ? rank[f] : 999999999) " " f}' |
    sort -n -k1,1 | cut -d' ' -f2-)
fi
if [[ ${#files[@]} -eq 0 ]]; then
  echo "tidy: no product sources in $db" >&2
  exit 2
fi

# The compile commands carry GCC's -Werror: clang-tidy's own compiler would turn a
# GCC-only warning option into an error, so unknown options are not reported.
# Headers are checked when they are ours: anchored at the source tree, so the
# generated ones under the build directory (BPF skeletons) are not.
# Each file's findings are printed together once it is done (no interleaving).
header_filter="^$root/(sentinel-lib|procmond|sentinelagent|sentinelcli)/"
deadline=${TIDY_DEADLINE:-0}
skipped=$(mktemp)
trap 'rm -f "$skipped"' EXIT
echo "tidy: ${#files[@]} files, $jobs at a time"
status=0
printf '%s\0' "${files[@]}" | xargs -0 -n 1 -P "$jobs" sh -c '
  if [ "$2" -gt 0 ] && [ "$(date +%s)" -ge "$2" ]; then
    echo "$4" >>"$3"; exit 0
  fi
  out=$(clang-tidy -p "$0" --quiet --header-filter="$1" --extra-arg=-Wno-unknown-warning-option "$4" 2>&1)
  rc=$?
  if [ $rc -ne 0 ]; then
    printf "%s\ntidy: FAILED %s\n" "$out" "$4"
  elif printf "%s" "$out" | grep -q "warning:"; then
    printf "%s\n" "$out"
  fi
  exit $rc' "$build" "$header_filter" "$deadline" "$skipped" || status=1
left=$(wc -l <"$skipped")
if [[ $left -gt 0 ]]; then
  echo "tidy: deadline reached: $left of ${#files[@]} files not checked (the least recently changed)"
fi
if [[ $status -ne 0 ]]; then
  echo "tidy: errors found (see FAILED above); split the function by meaning (.clang-tidy)" >&2
  exit 1
fi
echo "tidy: ok ($(( ${#files[@]} - left )) files checked)"
