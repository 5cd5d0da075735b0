// Runs a binary as a test would from a shell: argv, extra environment,
// optional stdin; captures stdout, stderr and the exit code. Test-only.
#pragma once

#include <string>
#include <vector>

namespace sentinel::testing {

struct RunResult {
  int exit_code = -1;   // 128+signal when killed by a signal
  std::string out;
  std::string err;
};

// env entries "NAME=VALUE" are added to (or replace in) the current
// environment; entries "NAME" without '=' remove the variable.
RunResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              const std::string& stdin_data = "");

}  // namespace sentinel::testing
