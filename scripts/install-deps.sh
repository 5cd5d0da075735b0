#!/usr/bin/env bash
# Installs the Debian packages SentinelD needs to build, run and test.
# Idempotent: only packages that are missing are installed; nothing is
# downloaded outside Debian's package archive.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # libraries
  libsqlite3-dev libssl-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libcap-dev
  libsodium-dev libcurl4-openssl-dev libcpp-httplib-dev
  # Sigma rules: linear-time regular expressions for the sandbox's regexp() (docs/sigma.md)
  libre2-dev
  # fleet (SPEC §14): NATS JetStream client library, and the server for the test cluster and the demo
  libnats-dev nats-server
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev sqlite3 procps python3 util-linux passwd
  b3sum rsyslog python3-aiosmtpd prometheus
  # the web UI's browser test (headless; tests/integration/web_ui_test.cc skips without it)
  chromium
  # the .deb (cpack, dpkg-shlibdeps) and its test (systemd-analyze verify)
  dpkg-dev systemd
  # eBPF real-time process events (procmond/bpf) and the exec-storm benchmark's peer
  clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev auditd
  # code hygiene; libFuzzer and the sanitizer runtimes for clang (make fuzz; clang only recommends them)
  clang-format clang-tidy libclang-rt-dev
  # the Windows build (preset `windows`, docs/platforms.md): the mingw-w64 cross-compiler, wine64 to
  # run its tests, GoogleTest's sources, and tclsh for SQLite's amalgamation (scripts/windows-sources.sh)
  g++-mingw-w64-x86-64-posix wine64 googletest tcl
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Debian's SQLite and yaml-cpp sources for the Windows build; a failure (no
# archive reachable) is said, and only the Windows build then stops on it.
windows_sources() {
  if ! "$(dirname "$0")/windows-sources.sh"; then
    echo "install-deps: WARNING: the Windows build's sources are missing (scripts/windows-sources.sh failed);" \
         "everything else is installed" >&2
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  windows_sources
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: missing packages (${missing[*]}) and not root; install them or run as root" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
windows_sources
