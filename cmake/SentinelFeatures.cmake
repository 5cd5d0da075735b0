# Build-time features (docs/building.md "Build features", docs/decisions.md #81).
#
# Each option removes its code and its library from every binary when OFF:
#   SENTINEL_EBPF           procmond's eBPF sources, libbpf (cmake/SentinelEbpf.cmake: AUTO|ON|OFF)
#   SENTINEL_SINK_WEBHOOK   the webhook sink            libcurl
#   SENTINEL_SINK_EMAIL     the email sink              libcurl
#   SENTINEL_AUDIT_SIGNING  Ed25519 audit signatures    libsodium
#   SENTINEL_HTTP           the agent's /metrics, /health endpoint (its own server, no library)
#   SENTINEL_FLEET          libnats, the nats sink, the agent's fleet service, signed bundles
#                           (`sentinelcli rules import BUNDLE`) and sentinelfleet   libnats, libsodium
#   SENTINEL_SIGMA          the Sigma converter and the sandbox's regexp()    RE2
# Every option defaults to ON when its libraries are found (pkg-config) and
# OFF otherwise; an option set ON whose library is missing is a configure
# error naming the Debian package. A library two features share (libcurl,
# libsodium) is linked when either is ON.
#
# Sets SENTINEL_HAS_<X> (ON/OFF) for every feature, the imported targets of
# the libraries found, and SENTINEL_FEATURES_LINE ("+ebpf -webhook ...").
# sentinel-lib/sentinel/base/features.h.in turns them into the one generated
# header the code reads (sentinel/base/features.h).

if(WIN32)
  # The Windows build (cmake/SentinelWindows.cmake) is procmond alone: none of
  # the optional features is part of it (docs/platforms.md).
  set(SENTINEL_EBPF OFF CACHE STRING "" FORCE)
  foreach(_found CURL_FOUND SODIUM_FOUND NATS_FOUND RE2_FOUND SENTINEL_NO_LIBRARY_NEEDED)
    set(${_found} FALSE)
  endforeach()
else()
  find_package(CURL QUIET)
  pkg_check_modules(SODIUM QUIET IMPORTED_TARGET libsodium)
  pkg_check_modules(NATS QUIET IMPORTED_TARGET libnats)
  pkg_check_modules(RE2 QUIET IMPORTED_TARGET re2)
  set(SENTINEL_NO_LIBRARY_NEEDED TRUE)
endif()

set(SENTINEL_FEATURES_LINE "")
set(SENTINEL_FEATURE_OPTIONS "")

# _sentinel_feature(<option> <name> <doc> [<found-variable> <debian-package>]...)
#   Declares option SENTINEL_<option>, its default the presence of every
#   listed library; sets SENTINEL_HAS_<option> and appends "+name"/"-name".
macro(_sentinel_feature option name doc)
  set(_needs ${ARGN})
  set(_missing "")
  while(_needs)
    list(POP_FRONT _needs _found _package)
    if(NOT ${_found})
      list(APPEND _missing ${_package})
    endif()
  endwhile()
  if(_missing)
    option(SENTINEL_${option} "${doc}" OFF)
  else()
    option(SENTINEL_${option} "${doc}" ON)
  endif()
  if(SENTINEL_${option} AND WIN32)
    message(FATAL_ERROR "SENTINEL_${option}=ON: the Windows build has no optional features "
                        "(docs/platforms.md); configure with -DSENTINEL_${option}=OFF")
  endif()
  if(SENTINEL_${option} AND _missing)
    list(JOIN _missing " " _missing_text)
    message(FATAL_ERROR "SENTINEL_${option}=ON but its library is missing: install ${_missing_text} "
                        "(apt-get install -y ${_missing_text}, or scripts/install-deps.sh), "
                        "or configure with -DSENTINEL_${option}=OFF")
  endif()
  if(SENTINEL_${option})
    set(SENTINEL_HAS_${option} ON)
    string(APPEND SENTINEL_FEATURES_LINE " +${name}")
  else()
    set(SENTINEL_HAS_${option} OFF)
    string(APPEND SENTINEL_FEATURES_LINE " -${name}")
  endif()
  list(APPEND SENTINEL_FEATURE_OPTIONS SENTINEL_${option})
  message(STATUS "feature ${name}: SENTINEL_${option}=${SENTINEL_HAS_${option}}")
endmacro()

# eBPF keeps its AUTO|ON|OFF option (SentinelEbpf.cmake); the others follow.
include(SentinelEbpf)
set(SENTINEL_HAS_EBPF ${SENTINEL_HAVE_EBPF})
if(SENTINEL_HAVE_EBPF)
  string(APPEND SENTINEL_FEATURES_LINE "+ebpf")
else()
  string(APPEND SENTINEL_FEATURES_LINE "-ebpf")
endif()
_sentinel_feature(SINK_WEBHOOK webhook "Build the webhook alert sink (libcurl)" CURL_FOUND libcurl4-openssl-dev)
_sentinel_feature(SINK_EMAIL email "Build the email alert sink (libcurl)" CURL_FOUND libcurl4-openssl-dev)
_sentinel_feature(AUDIT_SIGNING audit-signing "Build Ed25519 signing of the audit ledger (libsodium)"
                  SODIUM_FOUND libsodium-dev)
_sentinel_feature(HTTP http "Build the agent's HTTP endpoint (/metrics, /health)" SENTINEL_NO_LIBRARY_NEEDED none)
_sentinel_feature(FLEET fleet "Build the fleet: the nats sink, the agent's fleet service, signed bundles and sentinelfleet (libnats, libsodium)"
                  NATS_FOUND libnats-dev SODIUM_FOUND libsodium-dev)
_sentinel_feature(SIGMA sigma "Build the Sigma rule converter and the rule sandbox's regexp() (RE2)"
                  RE2_FOUND libre2-dev)

# Libraries shared by two features: linked when either is built.
set(SENTINEL_NEEDS_CURL OFF)
if(SENTINEL_HAS_SINK_WEBHOOK OR SENTINEL_HAS_SINK_EMAIL)
  set(SENTINEL_NEEDS_CURL ON)
endif()
set(SENTINEL_NEEDS_SODIUM OFF)
if(SENTINEL_HAS_AUDIT_SIGNING OR SENTINEL_HAS_FLEET)
  set(SENTINEL_NEEDS_SODIUM ON)
endif()
message(STATUS "features: ${SENTINEL_FEATURES_LINE}")

# sentinel_feature_sources(<out-var> <feature-option> <files>...)
#   Appends <files> to <out-var> when SENTINEL_HAS_<feature> is ON (the
#   feature's whole files, left out of the build otherwise).
macro(sentinel_feature_sources out feature)
  if(SENTINEL_HAS_${feature})
    list(APPEND ${out} ${ARGN})
  endif()
endmacro()

# Every optional feature built (the module graph of docs/architecture.md is this build's).
set(SENTINEL_ALL_FEATURES ON)
foreach(_feature SINK_WEBHOOK SINK_EMAIL AUDIT_SIGNING HTTP FLEET SIGMA)
  if(NOT SENTINEL_HAS_${_feature})
    set(SENTINEL_ALL_FEATURES OFF)
  endif()
endforeach()

# 1/0 for the generated header's #defines.
foreach(_feature EBPF SINK_WEBHOOK SINK_EMAIL AUDIT_SIGNING HTTP FLEET SIGMA)
  if(SENTINEL_HAS_${_feature})
    set(SENTINEL_HAS_${_feature}_01 1)
  else()
    set(SENTINEL_HAS_${_feature}_01 0)
  endif()
endforeach()
