// The plan sigma_probe's "stage" role reads on stdin and the child spec its
// "parent" role reads on fd 3 (sigma_probe.cc describes both): NUL-terminated
// tokens, a list as its length then its items. Shared by the probe and the
// harness that writes the plan (sigma_process_harness.cc). Test-only.
#pragma once

#include <string>
#include <vector>

namespace sentinel::sigma_test {

inline constexpr const char* kPlanTag = "sigma-plan/1";

inline void PutToken(std::string* out, const std::string& token) {
  out->append(token);
  out->push_back('\0');
}

inline void PutList(std::string* out, const std::vector<std::string>& list) {
  PutToken(out, std::to_string(list.size()));
  for (const auto& s : list) PutToken(out, s);
}

}  // namespace sentinel::sigma_test
