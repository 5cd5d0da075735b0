// Must not compile: a module's internal header is visible only to that module
// (tests/structure/CMakeLists.txt, test internal_headers_are_private).
#include "sentinel/config/internal/checks.h"
