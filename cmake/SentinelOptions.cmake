# Compiler warnings, hardening and sanitizers for every SentinelD target,
# plus the small helpers sentinel_library(), sentinel_test() and the module graph.

add_library(sentinel_build_flags INTERFACE)
target_compile_options(sentinel_build_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
  -Wformat=2 -Wimplicit-fallthrough -Wno-missing-field-initializers)
if(SENTINEL_WERROR)
  target_compile_options(sentinel_build_flags INTERFACE -Werror)
endif()
if(SENTINEL_SANITIZE)
  # Without UBSan's vptr check: it probes an object's memory through a pipe()
  # it writes into, which the query worker's seccomp filter denies, so every
  # virtual call it could not verify from its cache (a shared_ptr's count in
  # the worker) was reported as an invalid object there.
  target_compile_options(sentinel_build_flags INTERFACE
    -fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  # Debian's GCC links with --as-needed unless -fsanitize is given (its specs:
  # %{!fsanitize=*:--as-needed}): without it here, a sanitized binary would
  # list every library on its link line, used or not, and the NEEDED entries
  # the feature_libraries_linked test reads would differ from the release
  # build's. The sanitizer runtimes themselves are linked --no-as-needed by
  # the driver whatever this says.
  target_link_options(sentinel_build_flags INTERFACE -fsanitize=address,undefined -Wl,--as-needed)
endif()
if(SENTINEL_HARDEN)
  target_compile_options(sentinel_build_flags INTERFACE
    -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection
    -fcf-protection -fPIE)
  target_link_options(sentinel_build_flags INTERFACE -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack)
endif()

# Staged include directories: each module's public headers are linked into
# ${SENTINEL_INCLUDE_STAGE}/<module>/sentinel/<module>/, the only include
# directory the module exports, so code sees the public headers of the
# modules it links and nothing else. The module's own sources (and its
# tests) also see the whole module directory, internal/ included, through
# ${SENTINEL_PRIVATE_STAGE}/<module>/sentinel/<module> -> the sources.
set(SENTINEL_INCLUDE_STAGE ${PROJECT_BINARY_DIR}/include)
set(SENTINEL_PRIVATE_STAGE ${PROJECT_BINARY_DIR}/include-private)

# _sentinel_stage_headers(DIR dir PREFIX prefix HEADERS ...)
#   Links each header (relative to the current source dir) to
#   <dir>/<prefix>/<header>, and removes links left there by headers no
#   longer listed (generated files, which are not links, are kept).
function(_sentinel_stage_headers)
  cmake_parse_arguments(ARG "" "DIR;PREFIX" "HEADERS" ${ARGN})
  set(wanted "")
  foreach(h IN LISTS ARG_HEADERS)
    set(src ${CMAKE_CURRENT_SOURCE_DIR}/${h})
    if(NOT EXISTS ${src})
      message(FATAL_ERROR "${CMAKE_CURRENT_SOURCE_DIR}: public header ${h} does not exist")
    endif()
    set(dst ${ARG_DIR}/${ARG_PREFIX}/${h})
    get_filename_component(dst_dir ${dst} DIRECTORY)
    file(MAKE_DIRECTORY ${dst_dir})
    file(CREATE_LINK ${src} ${dst} SYMBOLIC)
    list(APPEND wanted ${dst})
  endforeach()
  file(GLOB_RECURSE staged LIST_DIRECTORIES false ${ARG_DIR}/*)
  foreach(f IN LISTS staged)
    if(IS_SYMLINK ${f} AND NOT f IN_LIST wanted)
      file(REMOVE ${f})
    endif()
  endforeach()
endfunction()

# sentinel_record_module(NAME name DEPS ...)
#   Records name -> its sentinel:: dependencies (and libcurl) for the module
#   graph of docs/architecture.md (sentinel_write_module_graph()).
function(sentinel_record_module)
  cmake_parse_arguments(ARG "" "NAME" "DEPS" ${ARGN})
  set(edges "")
  foreach(d IN LISTS ARG_DEPS)
    if(d MATCHES "^sentinel::(.+)$")
      list(APPEND edges ${CMAKE_MATCH_1})
    elseif(d STREQUAL "CURL::libcurl")
      list(APPEND edges "libcurl")
    endif()
  endforeach()
  set_property(GLOBAL APPEND PROPERTY SENTINEL_MODULES ${ARG_NAME})
  set_property(GLOBAL PROPERTY SENTINEL_MODULE_DEPS_${ARG_NAME} "${edges}")
endfunction()

# sentinel_library(NAME name SOURCES ... PUBLIC_HEADERS ... DEPS ... [PRIVATE_DEPS ...]
#                  [TESTS ...] [PRIVILEGED_TESTS ...] [TEST_DEPS ...] [TEST_SUPPORT_HEADERS ...])
#   Declares the module target sentinel_<name> with alias sentinel::<name>.
#   PUBLIC_HEADERS (paths relative to the module directory) are the module's
#   interface, included as "sentinel/<name>/x.h" by the modules that link
#   it; every other header (internal/ and the rest) is visible only to the
#   module's own sources and tests. DEPS are public, PRIVATE_DEPS are not
#   passed on.
#   TESTS are *_test.cc files beside the code, linked into one test binary
#   per module and registered with ctest under the label "unit".
#   PRIVILEGED_TESTS are the tests that need root (they skip with the reason
#   otherwise): the binary <name>_privileged_test, label "privileged".
#   TEST_SUPPORT_HEADERS are test helpers other modules' tests may use: the
#   INTERFACE target sentinel::<name>_testing exports them.
function(sentinel_library)
  cmake_parse_arguments(ARG "" "NAME"
                        "SOURCES;PUBLIC_HEADERS;DEPS;PRIVATE_DEPS;TESTS;PRIVILEGED_TESTS;TEST_DEPS;TEST_SUPPORT_HEADERS" ${ARGN})
  set(target sentinel_${ARG_NAME})
  if(WIN32 AND NOT ARG_NAME IN_LIST SENTINEL_WINDOWS_MODULE_TESTS)
    # The Windows build runs only the module tests written to run there too.
    set(ARG_TESTS "")
    set(ARG_PRIVILEGED_TESTS "")
  endif()
  set(public_dir ${SENTINEL_INCLUDE_STAGE}/${ARG_NAME})
  set(private_dir ${SENTINEL_PRIVATE_STAGE}/${ARG_NAME})
  _sentinel_stage_headers(DIR ${public_dir} PREFIX sentinel/${ARG_NAME} HEADERS ${ARG_PUBLIC_HEADERS})
  file(MAKE_DIRECTORY ${private_dir}/sentinel)
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${private_dir}/sentinel/${ARG_NAME} SYMBOLIC)

  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(sentinel::${ARG_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${public_dir} PRIVATE ${private_dir})
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} sentinel_build_flags)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  sentinel_record_module(NAME ${ARG_NAME} DEPS ${ARG_DEPS} ${ARG_PRIVATE_DEPS})

  if(ARG_TEST_SUPPORT_HEADERS)
    set(support_dir ${SENTINEL_INCLUDE_STAGE}/${ARG_NAME}-testing)
    _sentinel_stage_headers(DIR ${support_dir} PREFIX sentinel/${ARG_NAME} HEADERS ${ARG_TEST_SUPPORT_HEADERS})
    add_library(${target}_testing INTERFACE)
    add_library(sentinel::${ARG_NAME}_testing ALIAS ${target}_testing)
    target_include_directories(${target}_testing INTERFACE ${support_dir})
    target_link_libraries(${target}_testing INTERFACE ${target} sentinel::testing GTest::gtest)
  endif()
  if(SENTINEL_BUILD_TESTS AND ARG_TESTS)
    sentinel_test(NAME ${ARG_NAME}_test SOURCES ${ARG_TESTS} DEPS ${target} ${ARG_TEST_DEPS} LABELS unit)
    # A module's tests may use its internal headers.
    target_include_directories(${ARG_NAME}_test PRIVATE ${private_dir})
  endif()
  if(SENTINEL_BUILD_TESTS AND ARG_PRIVILEGED_TESTS)
    sentinel_test(NAME ${ARG_NAME}_privileged_test SOURCES ${ARG_PRIVILEGED_TESTS}
                  DEPS ${target} ${ARG_TEST_DEPS} LABELS privileged)
    target_include_directories(${ARG_NAME}_privileged_test PRIVATE ${private_dir})
  endif()
endfunction()

# _sentinel_module_reach(m out): every module m depends on, directly or not.
function(_sentinel_module_reach m out)
  get_property(known GLOBAL PROPERTY _SENTINEL_REACH_${m} SET)
  if(known)
    get_property(reach GLOBAL PROPERTY _SENTINEL_REACH_${m})
  else()
    get_property(deps GLOBAL PROPERTY SENTINEL_MODULE_DEPS_${m})
    set(reach "")
    foreach(d IN LISTS deps)
      _sentinel_module_reach(${d} below)
      list(APPEND reach ${d} ${below})
    endforeach()
    list(REMOVE_DUPLICATES reach)
    set_property(GLOBAL PROPERTY _SENTINEL_REACH_${m} "${reach}")
  endif()
  set(${out} "${reach}" PARENT_SCOPE)
endfunction()

# sentinel_write_module_graph(OUT file [REACH_OUT file])
#   Writes the recorded modules and their dependencies as a mermaid block
#   (an edge implied by a longer path is left out),
#   the one docs/architecture.md shows between its module-graph markers
#   (checked by the module_graph_doc test; `make architecture-doc` updates it).
#   REACH_OUT: one line per module, "name: everything it links, directly or not".
function(sentinel_write_module_graph)
  cmake_parse_arguments(ARG "" "OUT;REACH_OUT" "" ${ARGN})
  get_property(modules GLOBAL PROPERTY SENTINEL_MODULES)
  list(SORT modules)
  set(text "```mermaid\ngraph BT\n")
  foreach(m IN LISTS modules)
    get_property(deps GLOBAL PROPERTY SENTINEL_MODULE_DEPS_${m})
    list(REMOVE_DUPLICATES deps)
    list(SORT deps)
    # Transitive reduction: drop m -> d when another dependency of m reaches d.
    set(direct "")
    foreach(d IN LISTS deps)
      set(implied FALSE)
      foreach(other IN LISTS deps)
        if(NOT other STREQUAL d)
          _sentinel_module_reach(${other} reach)
          if(d IN_LIST reach)
            set(implied TRUE)
          endif()
        endif()
      endforeach()
      if(NOT implied)
        list(APPEND direct ${d})
      endif()
    endforeach()
    if(NOT direct)
      string(APPEND text "  ${m}\n")
    endif()
    foreach(d IN LISTS direct)
      if(d STREQUAL "libcurl")
        string(APPEND text "  ${m} -.-> libcurl[(libcurl)]\n")
      else()
        string(APPEND text "  ${m} --> ${d}\n")
      endif()
    endforeach()
  endforeach()
  string(APPEND text "```\n")
  file(WRITE ${ARG_OUT}.tmp "${text}")
  file(COPY_FILE ${ARG_OUT}.tmp ${ARG_OUT} ONLY_IF_DIFFERENT)
  file(REMOVE ${ARG_OUT}.tmp)
  if(ARG_REACH_OUT)
    set(reach_text "")
    foreach(m IN LISTS modules)
      _sentinel_module_reach(${m} reach)
      list(SORT reach)
      list(JOIN reach " " reach)
      string(APPEND reach_text "${m}: ${reach}\n")
    endforeach()
    file(WRITE ${ARG_REACH_OUT} "${reach_text}")
  endif()
endfunction()

# sentinel_test_pch(target): the test target reuses one precompiled header of
# GoogleTest and nlohmann/json. Every test file includes the first and most the
# second: parsing them is about 5 s of CPU per file, before any code of ours
# (docs/benchmarks.md "CI time"). The header is built once per build tree, by
# sentinel_test_pch, with the flags and definitions every test target has; a
# compiler that finds it unusable parses the headers as before (slower, same
# result). SENTINEL_TEST_PCH=OFF turns it off.
option(SENTINEL_TEST_PCH "Precompile GoogleTest and nlohmann/json once for every test target" ON)
function(sentinel_test_pch target)
  if(NOT SENTINEL_TEST_PCH)
    return()
  endif()
  if(NOT TARGET sentinel_test_pch)
    set(src ${PROJECT_BINARY_DIR}/sentinel_test_pch.cc)
    if(NOT EXISTS ${src})
      file(WRITE ${src} "// Compiled only for the precompiled header every test target reuses (cmake/SentinelOptions.cmake).\n")
    endif()
    add_library(sentinel_test_pch OBJECT ${src})
    target_link_libraries(sentinel_test_pch PRIVATE GTest::gtest nlohmann_json::nlohmann_json sentinel_build_flags)
    _sentinel_test_definitions(sentinel_test_pch)
    target_precompile_headers(sentinel_test_pch PRIVATE <gtest/gtest.h> <nlohmann/json.hpp>)
  endif()
  target_precompile_headers(${target} REUSE_FROM sentinel_test_pch)
  # GCC 12 at -O2 reports std::string's operator+ on a short literal path
  # (SENTINEL_SOURCE_DIR in a short checkout) as out of bounds once the headers
  # come from the precompiled header: -Warray-bounds, -Wstringop-overflow,
  # -Wstringop-overread and -Wrestrict, the known false positives of
  # libstdc++'s inlined memcpy in GCC 12. Off for the test targets only; the
  # product code keeps all four.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE
      -Wno-array-bounds -Wno-stringop-overflow -Wno-stringop-overread -Wno-restrict)
  endif()
endfunction()

function(_sentinel_test_definitions target)
  target_compile_definitions(${target} PRIVATE
    SENTINEL_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    SENTINEL_BINARY_DIR="${PROJECT_BINARY_DIR}")
endfunction()

# sentinel_test(NAME n SOURCES ... DEPS ... LABELS ... [SERIAL])
# SERIAL: ctest runs each of its tests with no other test beside it (RUN_SERIAL).
function(sentinel_test)
  cmake_parse_arguments(ARG "SERIAL" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main sentinel_build_flags)
  _sentinel_test_definitions(${ARG_NAME})
  sentinel_test_pch(${ARG_NAME})
  if(WIN32)
    # Under Wine, one ctest test per binary (its GoogleTest output lists each
    # case): discovering cases would run Wine at build time, and a machine
    # where Wine cannot start must still build, then skip with the reason
    # (cmake/wine-run.sh.in exits 77).
    add_test(NAME ${ARG_NAME} COMMAND ${SENTINEL_WINE_RUN} $<TARGET_FILE:${ARG_NAME}>)
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}" SKIP_RETURN_CODE 77)
    if(ARG_SERIAL)
      set_tests_properties(${ARG_NAME} PROPERTIES RUN_SERIAL TRUE)
    endif()
    return()
  endif()
  list(GET ARG_LABELS 0 first_label)
  set(properties LABELS "${first_label}")
  if(ARG_SERIAL)
    list(APPEND properties RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${ARG_NAME} PROPERTIES ${properties} DISCOVERY_TIMEOUT 60)
  # Several labels ("unit;sigma"): gtest_discover_tests cannot pass a list,
  # so a second include file labels the discovered tests (${name}_TESTS).
  list(LENGTH ARG_LABELS label_count)
  if(label_count GREATER 1)
    set(labels_file ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}_labels.cmake)
    file(WRITE ${labels_file}
         "if(${ARG_NAME}_TESTS)\n  set_tests_properties(\${${ARG_NAME}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\")\nendif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${labels_file})
  endif()
endfunction()
