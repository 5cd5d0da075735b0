# The Windows build (preset `windows`, cmake/toolchains/mingw-w64-x86_64.cmake):
# procmond.exe and its tests, cross-compiled with mingw-w64 and run under
# wine64. Every dependency comes from Debian (docs/platforms.md):
#   SQLite     the amalgamation made from Debian's sqlite3 source package
#   yaml-cpp   Debian's yaml-cpp source package
#   GoogleTest /usr/src/googletest (package googletest)
#   nlohmann-json, CLI11  header-only: the host's Debian headers
#   SHA-256    the Windows API (CNG, bcrypt.dll): no OpenSSL
# scripts/windows-sources.sh (run by scripts/install-deps.sh) puts the first
# two under SENTINEL_WINDOWS_SRC. The targets made here carry the names the
# Linux build gets from find_package, so the modules' CMake files serve both.

set(SENTINEL_WINDOWS_SRC /usr/local/src/sentineld-windows CACHE PATH
    "Debian's SQLite amalgamation and yaml-cpp source for the Windows build (scripts/windows-sources.sh)")
if(NOT EXISTS ${SENTINEL_WINDOWS_SRC}/sqlite/sqlite3.c OR NOT EXISTS ${SENTINEL_WINDOWS_SRC}/yaml-cpp/CMakeLists.txt)
  message(FATAL_ERROR "The Windows build needs Debian's SQLite and yaml-cpp sources in ${SENTINEL_WINDOWS_SRC}: "
                      "run scripts/install-deps.sh (as root), or set SENTINEL_WINDOWS_SRC")
endif()

# Static runtime: the .exe needs no mingw DLL beside it (libstdc++, libgcc,
# winpthread), under Wine or on a Windows host.
add_link_options(-static -static-libgcc -static-libstdc++)
# Windows 10 API level (QueryFullProcessImageNameW, ProcessCommandLineInformation, ...).
add_compile_definitions(_WIN32_WINNT=0x0A00 WINVER=0x0A00 UNICODE _UNICODE WIN32_LEAN_AND_MEAN NOMINMAX)

find_package(Threads REQUIRED)

# SQLite with the compile options Debian's libsqlite3 is built with that
# matter to the store (JSON functions, threading, URI names).
add_library(sentinel_win_sqlite STATIC ${SENTINEL_WINDOWS_SRC}/sqlite/sqlite3.c)
target_include_directories(sentinel_win_sqlite SYSTEM PUBLIC ${SENTINEL_WINDOWS_SRC}/sqlite)
target_compile_definitions(sentinel_win_sqlite PRIVATE
  SQLITE_THREADSAFE=1 SQLITE_ENABLE_JSON1 SQLITE_USE_URI=1 SQLITE_SECURE_DELETE
  SQLITE_ENABLE_COLUMN_METADATA SQLITE_ENABLE_DBSTAT_VTAB SQLITE_LIKE_DOESNT_MATCH_BLOBS
  SQLITE_MAX_SCHEMA_RETRY=25 SQLITE_OMIT_LOAD_EXTENSION SQLITE_DEFAULT_FOREIGN_KEYS=0)
target_compile_options(sentinel_win_sqlite PRIVATE -w)
add_library(SQLite::SQLite3 ALIAS sentinel_win_sqlite)

set(YAML_CPP_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(YAML_CPP_BUILD_TOOLS OFF CACHE BOOL "" FORCE)
set(YAML_CPP_BUILD_CONTRIB OFF CACHE BOOL "" FORCE)
set(YAML_CPP_INSTALL OFF CACHE BOOL "" FORCE)
set(YAML_BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
add_subdirectory(${SENTINEL_WINDOWS_SRC}/yaml-cpp ${PROJECT_BINARY_DIR}/third_party/yaml-cpp EXCLUDE_FROM_ALL)
target_compile_options(yaml-cpp PRIVATE -w)

# Header-only libraries from the host: only their own directories are put on
# the include path (never /usr/include, whose glibc headers would shadow mingw's).
set(_win_headers ${PROJECT_BINARY_DIR}/third_party/include)
file(MAKE_DIRECTORY ${_win_headers})
foreach(dir nlohmann CLI)
  if(NOT EXISTS /usr/include/${dir})
    message(FATAL_ERROR "/usr/include/${dir} is missing: run scripts/install-deps.sh")
  endif()
  file(CREATE_LINK /usr/include/${dir} ${_win_headers}/${dir} SYMBOLIC)
endforeach()
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
target_include_directories(nlohmann_json::nlohmann_json SYSTEM INTERFACE ${_win_headers})
add_library(CLI11::CLI11 INTERFACE IMPORTED)
target_include_directories(CLI11::CLI11 SYSTEM INTERFACE ${_win_headers})

if(SENTINEL_BUILD_TESTS)
  if(NOT EXISTS /usr/src/googletest/CMakeLists.txt)
    message(FATAL_ERROR "/usr/src/googletest is missing (package googletest): run scripts/install-deps.sh")
  endif()
  set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  add_subdirectory(/usr/src/googletest ${PROJECT_BINARY_DIR}/third_party/googletest EXCLUDE_FROM_ALL)
  # googletest's own CMake file defines GTest::gtest and GTest::gtest_main.

  # Tests run under wine64 (ctest label `windows`) through wine-run.sh, which
  # gives them a Wine prefix of their own in the build tree. Without a working
  # Wine the tests are still built, and each says why it was not run.
  find_program(SENTINEL_WINE NAMES wine64 PATHS /usr/lib/wine NO_DEFAULT_PATH)
  find_program(SENTINEL_WINE NAMES wine64 wine)
  if(NOT SENTINEL_WINE)
    set(SENTINEL_WINE "")
  endif()
  set(SENTINEL_WINEPREFIX ${PROJECT_BINARY_DIR}/wineprefix)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/wine-run.sh.in ${PROJECT_BINARY_DIR}/wine-run.sh
                 @ONLY FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)
  set(SENTINEL_WINE_RUN ${PROJECT_BINARY_DIR}/wine-run.sh)
endif()
