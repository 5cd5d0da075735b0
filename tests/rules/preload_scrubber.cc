// A preloaded library that hides itself (issue 17 case 6): its constructor
// rewrites the LD_PRELOAD entry of its own process's environment in place,
// so /proc/PID/environ (what a scan reads) no longer shows it. Otherwise
// harmless. Built as a test-only shared library (tests/rules/CMakeLists.txt).
#include <cstring>

extern char** environ;

namespace {

__attribute__((constructor)) void ScrubPreload() {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "LD_PRELOAD=", 11) != 0) continue;
    // The bytes live in the block /proc/PID/environ shows: rename and blank.
    std::memset(*e, 'x', std::strlen(*e));
    std::memcpy(*e, "XX", 2);
  }
}

}  // namespace
