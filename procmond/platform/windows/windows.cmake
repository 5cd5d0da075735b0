# procmond for Windows (preset `windows`; docs/platforms.md): the collector
# (collector.cc, batch_writer.cc) behind platform/windows, with the
# Windows service (main_windows.cc, service.cc) and the named-pipe control
# channel. Included from procmond/CMakeLists.txt when WIN32.
set(procmond_modules sentinel::base sentinel::models sentinel::storage sentinel::telemetry sentinel::crypto
    sentinel::ipc sentinel::config sentinel::audit)

# The process source: Windows' process table, tokens and images (ProcessSource).
add_library(procmond_windows_source STATIC
  platform/windows/exe_hasher.cc
  platform/windows/windows_process_source.cc)
target_include_directories(procmond_windows_source PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(procmond_windows_source
  PUBLIC sentinel::base sentinel::models sentinel::crypto nlohmann_json::nlohmann_json ntdll advapi32
  PRIVATE sentinel_build_flags)

add_library(procmond_lib STATIC
  collector.cc
  batch_writer.cc
  scan_pipeline.cc
  scan_stats.cc
  platform/windows/control_pipe.cc
  platform/windows/service.cc)
target_include_directories(procmond_lib PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(procmond_lib
  PUBLIC procmond_windows_source ${procmond_modules} nlohmann_json::nlohmann_json Threads::Threads advapi32
  PRIVATE sentinel_build_flags)

add_executable(procmond platform/windows/main_windows.cc)
target_link_libraries(procmond PRIVATE procmond_lib CLI11::CLI11 sentinel_build_flags)

if(SENTINEL_BUILD_TESTS)
  # A two-process tree with a known command line, for tests/windows (run from Linux).
  add_executable(sentinel_win_tree platform/windows/testing/process_tree.cc)
  target_link_options(sentinel_win_tree PRIVATE -municode)
  target_link_libraries(sentinel_win_tree PRIVATE sentinel_build_flags)
  # Run under wine64 (CMAKE_CROSSCOMPILING_EMULATOR); label `windows`.
  sentinel_test(NAME procmond_windows_source_test
    SOURCES platform/windows/windows_process_source_test.cc platform/windows/exe_hasher_test.cc
    DEPS procmond_windows_source shell32
    LABELS windows)
  sentinel_test(NAME procmond_windows_test
    SOURCES platform/windows/control_pipe_test.cc platform/windows/service_test.cc
    DEPS procmond_lib
    LABELS windows)
  add_dependencies(procmond_windows_test procmond)
  target_compile_definitions(procmond_windows_test PRIVATE SENTINEL_PROCMOND_EXE="$<TARGET_FILE:procmond>")
endif()
