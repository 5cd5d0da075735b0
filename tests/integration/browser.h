// Headless Chromium for the web UI's tests (tests/integration/web_ui_test.cc,
// tests/fleet/console_web_test.cc): the browser's path, a run that dumps the
// rendered DOM or writes a screenshot, and a PNG reader that tells a
// screenshot's size and how many colours it holds. Test-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sentinel/testing/subprocess.h"

namespace sentinel::itest {

// /usr/bin/chromium (Debian's package), or "" when it is not installed.
std::string ChromiumPath();

// Runs headless Chromium on `url` with `args` (--dump-dom, or --screenshot=FILE
// --window-size=W,H) and a fresh profile `profile_dir`; JavaScript gets a
// virtual 15 s to settle (fetches complete first). Bounded by timeout(1).
testing::RunResult RunChromium(const std::string& profile_dir, const std::vector<std::string>& args,
                               const std::string& url, const std::vector<std::string>& env);

// Occurrences of `needle` in `haystack`.
size_t CountOf(const std::string& haystack, const std::string& needle);

// A PNG's size and how many different colours its pixels have (8-bit RGB or
// RGBA, not interlaced: what Chromium writes); `error` says why not.
struct PngInfo {
  uint32_t width = 0, height = 0;
  size_t colours = 0;
  std::string error;
};
PngInfo ReadPng(const std::string& path);

}  // namespace sentinel::itest
