# Run at install time (install(SCRIPT) from cmake/Packaging.cmake), with the
# install-time CMAKE_INSTALL_PREFIX and DESTDIR, so that `cmake --install
# --prefix P`, a DESTDIR staging and cpack all get units naming the right
# binaries. Installs:
#   - the systemd units, into /lib/systemd/system for prefix /usr and into
#     <prefix>/lib/systemd/system otherwise (systemd also reads
#     /usr/local/lib/systemd/system); SENTINEL_SYSTEMD_UNITDIR overrides;
#   - the tmpfiles.d entry for /run/sentineld, beside them;
#   - /etc/sentineld/config.yaml and /etc/sentineld/rules.d, never replacing
#     an existing config.yaml (the .deb marks it a conffile);
# then, for a real install as root (no DESTDIR), runs
# <prefix>/lib/sentineld/install.sh to create the sentineld user and the
# directories (SENTINELD_SKIP_SETUP=1 skips that step).
# Inputs set by the install(CODE) before this script: SENTINEL_PACKAGING_SRC,
# SENTINEL_CONFIG_SRC, SENTINEL_SYSTEMD_UNITDIR.

set(_prefix "${CMAKE_INSTALL_PREFIX}")
if(SENTINEL_SYSTEMD_UNITDIR)
  set(_unitdir "${SENTINEL_SYSTEMD_UNITDIR}")
elseif(_prefix STREQUAL "/usr")
  set(_unitdir "/lib/systemd/system")
else()
  set(_unitdir "${_prefix}/lib/systemd/system")
endif()
get_filename_component(_libroot "${_unitdir}/../.." ABSOLUTE)  # /lib or <prefix>/lib
if(_prefix STREQUAL "/usr")
  set(_tmpfilesdir "/usr/lib/tmpfiles.d")
else()
  set(_tmpfilesdir "${_libroot}/tmpfiles.d")
endif()

set(SENTINEL_SBINDIR "${_prefix}/sbin")
set(SENTINEL_BINDIR "${_prefix}/bin")
set(SENTINEL_DOCDIR "${_prefix}/share/doc/sentineld")
set(_dest "$ENV{DESTDIR}")

foreach(_unit sentineld-procmond.service sentinelagent.service)
  set(_out "${_dest}${_unitdir}/${_unit}")
  message(STATUS "Installing: ${_out}")
  configure_file("${SENTINEL_PACKAGING_SRC}/systemd/${_unit}.in" "${_out}" @ONLY)
  file(CHMOD "${_out}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_out}")
endforeach()

set(_out "${_dest}${_tmpfilesdir}/sentineld.conf")
message(STATUS "Installing: ${_out}")
configure_file("${SENTINEL_PACKAGING_SRC}/systemd/sentineld.tmpfiles" "${_out}" COPYONLY)
file(CHMOD "${_out}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_out}")

# /etc/sentineld: always /etc (the daemons read /etc/sentineld/config.yaml
# whatever the prefix). Mode and group are set by install.sh (0640
# root:sentineld): the file may name a signing key or sink credentials.
file(MAKE_DIRECTORY "${_dest}/etc/sentineld/rules.d")
set(_conf "${_dest}/etc/sentineld/config.yaml")
if(EXISTS "${_conf}")
  message(STATUS "Keeping existing: ${_conf} (the new default is ${_prefix}/share/sentineld/config.yaml)")
else()
  message(STATUS "Installing: ${_conf}")
  configure_file("${SENTINEL_CONFIG_SRC}" "${_conf}" COPYONLY)
  file(CHMOD "${_conf}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_conf}")
endif()

# Host set-up for a real install (not a DESTDIR staging such as cpack's).
if(_dest STREQUAL "" AND NOT "$ENV{SENTINELD_SKIP_SETUP}" STREQUAL "1")
  execute_process(COMMAND id -u OUTPUT_VARIABLE _uid OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_uid STREQUAL "0")
    execute_process(COMMAND bash "${_prefix}/lib/sentineld/install.sh" --prefix "${_prefix}" RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "${_prefix}/lib/sentineld/install.sh failed (exit ${_rc})")
    endif()
  else()
    message(STATUS "Not root: run `${_prefix}/lib/sentineld/install.sh` as root to create the sentineld "
                   "user and directories")
  endif()
endif()
