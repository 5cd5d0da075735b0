// Runs a binary as a test would from a shell: argv, extra environment,
// optional stdin; captures stdout, stderr and the exit code. Test-only.
#pragma once

#include <string>
#include <vector>

namespace sentinel::testing {

struct RunResult {
  int exit_code = -1;  // 128+signal when killed by a signal
  std::string out;
  std::string err;
  // The child's peak resident set size in KiB (wait4 rusage ru_maxrss), or -1
  // when unknown. Linux counts the pages the child inherited from the fork
  // before exec, so this includes a share of the caller's own RSS; to
  // measure a program alone, run it from a small freshly exec'd launcher
  // (tests/integration/rss_probe.cc).
  long peak_rss_kib = -1;
};

// The current environment ("NAME=VALUE" strings, sorted by name) after
// `edits`, applied in order: "NAME=VALUE" adds or replaces, "NAME" without
// '=' removes the variable.
std::vector<std::string> EditedEnvironment(const std::vector<std::string>& edits);

// env entries "NAME=VALUE" are added to (or replace in) the current
// environment; entries "NAME" without '=' remove the variable.
RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              const std::string& stdin_data = "");

}  // namespace sentinel::testing
