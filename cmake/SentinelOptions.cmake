# Compiler warnings, hardening and sanitizers for every SentinelD target,
# plus the small helpers sentinel_library() and sentinel_test().

add_library(sentinel_build_flags INTERFACE)
target_compile_options(sentinel_build_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
  -Wformat=2 -Wimplicit-fallthrough -Wno-missing-field-initializers)
if(SENTINEL_WERROR)
  target_compile_options(sentinel_build_flags INTERFACE -Werror)
endif()
if(SENTINEL_SANITIZE)
  target_compile_options(sentinel_build_flags INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(sentinel_build_flags INTERFACE -fsanitize=address,undefined)
endif()
if(SENTINEL_HARDEN)
  target_compile_options(sentinel_build_flags INTERFACE
    -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection
    -fcf-protection -fPIE)
  target_link_options(sentinel_build_flags INTERFACE -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack)
endif()

# sentinel_library(NAME name SOURCES ... DEPS ... [TESTS ...])
#   Declares the module target sentinel_<name> with alias sentinel::<name>.
#   Headers are included from sentinel-lib/ ("sentinel/<name>/x.h").
#   TESTS are *_test.cc files beside the code, linked into one test binary
#   per module and registered with ctest under the label "unit".
function(sentinel_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;TESTS;TEST_DEPS" ${ARGN})
  set(target sentinel_${ARG_NAME})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(sentinel::${ARG_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/sentinel-lib)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE sentinel_build_flags)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(SENTINEL_BUILD_TESTS AND ARG_TESTS)
    sentinel_test(NAME ${ARG_NAME}_test SOURCES ${ARG_TESTS} DEPS ${target} ${ARG_TEST_DEPS} LABELS unit)
  endif()
endfunction()

# sentinel_test(NAME n SOURCES ... DEPS ... LABELS ...)
function(sentinel_test)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main sentinel_build_flags)
  target_compile_definitions(${ARG_NAME} PRIVATE
    SENTINEL_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    SENTINEL_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()
