// The plan sigma_probe's "stage" role reads on stdin and the child spec its
// "parent" role reads on fd 3 (sigma_probe.cc describes both): NUL-terminated
// tokens, a list as its length then its items. Shared by the probe and the
// harness that writes the plan (sigma_process_harness.cc). Test-only.
//
// Plan: kPlanTag, scratch directory, process count, then per process: parent
// image, parent argv (list), and the child spec. Child spec: image, argv
// (list), cwd, uid, gid, groups (list), login uid ("" = inherited).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace sentinel::sigma_test {

inline constexpr const char* kPlanTag = "sigma-plan/2";

inline void PutToken(std::string* out, const std::string& token) {
  out->append(token);
  out->push_back('\0');
}

inline void PutList(std::string* out, const std::vector<std::string>& list) {
  PutToken(out, std::to_string(list.size()));
  for (const auto& s : list) PutToken(out, s);
}

// What the parent's child does before its exec.
struct ChildSpec {
  std::string image;
  std::vector<std::string> argv;
  std::string cwd;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string login_uid;  // "" = inherited
};

inline void PutChild(std::string* out, const ChildSpec& c) {
  PutToken(out, c.image);
  PutList(out, c.argv);
  PutToken(out, c.cwd);
  PutToken(out, std::to_string(c.uid));
  PutToken(out, std::to_string(c.gid));
  std::vector<std::string> groups;
  for (gid_t g : c.groups) groups.push_back(std::to_string(g));
  PutList(out, groups);
  PutToken(out, c.login_uid);
}

}  // namespace sentinel::sigma_test
