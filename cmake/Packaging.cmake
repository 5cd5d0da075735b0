# Installation beyond the binaries and rules, and the Debian package.
#
#   cmake --install BUILD [--prefix P]   source install: binaries, rules,
#       units, /etc/sentineld, then (as root) lib/sentineld/install.sh
#   cpack --config BUILD/CPackConfig.cmake   -> sentineld_<version>_<arch>.deb
#
# Included last from the top-level CMakeLists.txt, so these install rules
# run after the binaries' (CMP0082). See docs/install.md.

set(SENTINEL_SYSTEMD_UNITDIR "" CACHE PATH
    "systemd unit directory (default: /lib/systemd/system for prefix /usr, <prefix>/lib/systemd/system otherwise)")
set(SENTINEL_PACKAGE_MAINTAINER "SentinelD maintainers <sentineld@localhost>" CACHE STRING
    "Maintainer field of the Debian package")

# Host set-up script: source installs run it (InstallSystem.cmake), the
# .deb's postinst runs it.
install(PROGRAMS ${PROJECT_SOURCE_DIR}/scripts/install.sh DESTINATION lib/sentineld)
install(FILES ${PROJECT_SOURCE_DIR}/docs/install.md ${PROJECT_SOURCE_DIR}/README.md
        DESTINATION share/doc/sentineld)
install(CODE "
  set(SENTINEL_PACKAGING_SRC \"${PROJECT_SOURCE_DIR}/packaging\")
  set(SENTINEL_CONFIG_SRC \"${PROJECT_SOURCE_DIR}/config/config.yaml\")
  set(SENTINEL_SYSTEMD_UNITDIR \"${SENTINEL_SYSTEMD_UNITDIR}\")")
install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/InstallSystem.cmake)

# --- Debian package (CPack DEB) ---
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sentineld)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR SentinelD)
set(CPACK_PACKAGE_CONTACT "${SENTINEL_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "process monitor with SQL detection rules and a tamper-evident audit ledger")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "process monitor with SQL detection rules and a tamper-evident audit ledger
 SentinelD watches every process on the host (procmond), keeps a queryable
 SQLite history of them, runs SQL detection rules over that history and
 delivers alerts through retrying channels (sentinelagent). Every
 security-relevant step is written to a hash-chained audit ledger.
 sentinelcli queries, exports, manages rules and verifies the ledger.
 Works fully offline; sentinelfleet, the console, gathers many hosts' alerts
 and runs signed queries and rule bundles over NATS JetStream.")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${SENTINEL_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Library dependencies from dpkg-shlibdeps; passwd for useradd/groupadd in
# the maintainer scripts.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "sqlite3")
# Units in /lib/systemd/system and the config in /etc are absolute install
# destinations: stage everything under DESTDIR, with the prefix /usr
# (CPACK_INSTALL_PREFIX is the one used when staging with DESTDIR).
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
