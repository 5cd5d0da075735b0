#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` configure preset: clang, ASan +
# UBSan, build/fuzz) and runs each for a bounded time on a copy of its seed
# corpus (fuzz/corpus/<name>/), so the tree is never modified. Fails when any
# target finds a crash, a sanitizer report, a leak, a timeout or an
# out-of-memory input; the input is kept as <artifacts>/<name>-crash-<sha1>
# (or -leak-, -timeout-, -oom-) and the target's log is printed.
#
# Environment:
#   FUZZ_SECONDS        seconds per target (default 60)
#   FUZZ_TARGETS        space-separated names (default: every target below)
#   FUZZ_RSS_LIMIT_MB   memory limit per target (default 2048)
#   FUZZ_INPUT_TIMEOUT  seconds one input may take (default 10)
#   FUZZ_ARTIFACTS      where failing inputs go (default build/fuzz/artifacts)
#   FUZZ_NO_BUILD=1     run what is built, do not configure/build
#
# Reproduce a failure: build/fuzz/fuzz/<name>_fuzz <artifact file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"ipc_frame proc_parsers realtime_decode task_records config rule"}
rss=${FUZZ_RSS_LIMIT_MB:-2048}
input_timeout=${FUZZ_INPUT_TIMEOUT:-10}
artifacts=${FUZZ_ARTIFACTS:-build/fuzz/artifacts}

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  launcher=()
  if command -v ccache >/dev/null 2>&1; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  cmake --preset fuzz "${launcher[@]}" >/dev/null
  cmake --build --preset fuzz
fi

mkdir -p "$artifacts" build/fuzz/logs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=()
for name in $targets; do
  bin=build/fuzz/fuzz/${name}_fuzz
  seeds=fuzz/corpus/$name
  if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
    echo "fuzz: $name: no $bin or no $seeds" >&2
    failed+=("$name")
    continue
  fi
  corpus=$work/$name
  mkdir -p "$corpus"
  cp -R "$seeds/." "$corpus/"
  log=build/fuzz/logs/$name.log
  echo "fuzz: $name for ${seconds}s ($(find "$corpus" -type f | wc -l) seeds)"
  rc=0
  # halt_on_error: the first report ends the run; UBSan reports are fatal
  # (the build uses -fno-sanitize-recover=undefined).
  ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$bin" -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout="$input_timeout" \
      -artifact_prefix="$artifacts/$name-" -print_final_stats=1 "$corpus" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $name FAILED (exit $rc); log $log:" >&2
    tail -n 60 "$log" >&2
    failed+=("$name")
  else
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
    echo "fuzz: $name ok (${runs:-?} inputs, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) files)"
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (failing inputs in $artifacts)" >&2
  exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a finding"
