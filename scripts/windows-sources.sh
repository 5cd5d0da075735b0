#!/usr/bin/env bash
# The sources the Windows build (CMake preset `windows`, docs/platforms.md)
# compiles with mingw-w64, all from Debian: SQLite and yaml-cpp from Debian's
# own source packages (apt-get source), GoogleTest from /usr/src/googletest
# (package googletest). Run by scripts/install-deps.sh; idempotent.
#
# Into $SENTINEL_WINDOWS_SRC (default /usr/local/src/sentineld-windows):
#   sqlite/sqlite3.c, sqlite/sqlite3.h  the amalgamation, made from Debian's
#                                       sqlite3 source with its own tools
#                                       (tclsh, the host compiler)
#   yaml-cpp/                           Debian's yaml-cpp source tree
#   VERSIONS                            which source versions these are
#
# apt-get source needs a deb-src entry: when none is configured, one is added
# for the Debian archive and suite the machine already installs from
# (/etc/apt/sources.list.d/sentineld-src.sources).
set -euo pipefail

dest=${SENTINEL_WINDOWS_SRC:-/usr/local/src/sentineld-windows}
if [ -f "$dest/VERSIONS" ] && [ -f "$dest/sqlite/sqlite3.c" ] && [ -f "$dest/yaml-cpp/CMakeLists.txt" ]; then
  echo "windows-sources: present in $dest ($(tr '\n' ' ' < "$dest/VERSIONS"))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "windows-sources: the Windows build's sources are missing from $dest and this is not root;" \
       "run scripts/install-deps.sh as root" >&2
  exit 1
fi

# The first Debian archive and suite apt installs from: deb822 (.sources) or one-line format.
archive_and_suite() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN{RS=""; FS="\n"}
         /(^|\n)Types:[^\n]*deb([ \n]|$)/ {
           uri=""; suite="";
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/)   { split($i, a, " "); uri = a[2] }
             if ($i ~ /^Suites:/) { split($i, b, " "); suite = b[2] }
           }
           if (uri ~ /debian\/?$/ && suite != "") { print uri, suite; exit }
         }' "$f" | head -n1
  done | head -n1
  if [ -f /etc/apt/sources.list ]; then
    awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2, $3; exit }' /etc/apt/sources.list
  fi
}

has_deb_src() {
  grep -rqsE '^(deb-src[[:space:]]|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/
}

if ! has_deb_src; then
  read -r uri suite < <(archive_and_suite | head -n1) || true
  if [ -z "${uri:-}" ] || [ -z "${suite:-}" ]; then
    echo "windows-sources: no Debian archive found in /etc/apt/sources.list*; cannot add a deb-src entry" >&2
    exit 1
  fi
  echo "windows-sources: adding deb-src for $uri $suite (/etc/apt/sources.list.d/sentineld-src.sources)"
  cat > /etc/apt/sources.list.d/sentineld-src.sources <<SRC
# Added by SentinelD's scripts/windows-sources.sh: source packages for the Windows build.
Types: deb-src
URIs: $uri
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# As root, apt downloads unsandboxed into a directory _apt cannot read; that is expected here.
apt-get source -qq sqlite3 yaml-cpp 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
sqlite_src=$(find . -maxdepth 1 -type d -name 'sqlite3-*' | head -n1)
yaml_src=$(find . -maxdepth 1 -type d -name 'yaml-cpp-*' | head -n1)
if [ -z "$sqlite_src" ] || [ -z "$yaml_src" ]; then
  echo "windows-sources: apt-get source sqlite3 yaml-cpp did not unpack both source trees" >&2
  exit 1
fi

# The amalgamation: SQLite's own generator (lemon, mkkeywordhash, tclsh scripts) on the host.
mkdir sqlite-build
(cd sqlite-build && "../$sqlite_src/configure" --disable-tcl > configure.log 2>&1 && make sqlite3.c > make.log 2>&1) || {
  echo "windows-sources: making the SQLite amalgamation failed; the last lines of its log:" >&2
  tail -n 20 sqlite-build/make.log sqlite-build/configure.log >&2 2>/dev/null || true
  exit 1
}

rm -rf "$dest.new"
mkdir -p "$dest.new/sqlite"
cp sqlite-build/sqlite3.c sqlite-build/sqlite3.h "$dest.new/sqlite/"
cp -a "$yaml_src" "$dest.new/yaml-cpp"
{
  echo "sqlite3 $(cd "$sqlite_src" && dpkg-parsechangelog -S Version)"
  echo "yaml-cpp $(cd "$yaml_src" && dpkg-parsechangelog -S Version)"
} > "$dest.new/VERSIONS"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "windows-sources: $dest ($(tr '\n' ' ' < "$dest/VERSIONS"))"
