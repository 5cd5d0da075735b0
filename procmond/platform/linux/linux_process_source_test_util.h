// Helpers of the LinuxProcessSource tests: scanning and picking a process out
// of a scan. Test-only.
#pragma once

#include <cstdint>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "procmond/platform/linux/linux_process_source.h"
#include "sentinel/models/process.h"

namespace sentinel::procmond {

inline const models::ProcessRecord* Find(const std::vector<models::ProcessRecord>& procs, int64_t pid) {
  for (const auto& p : procs) {
    if (p.pid == pid) return &p;
  }
  return nullptr;
}

// Find() that never yields null (a missing pid fails the test and yields an
// empty record), for call sites that dereference straight away.
inline const models::ProcessRecord& Get(const std::vector<models::ProcessRecord>& procs, int64_t pid) {
  static const models::ProcessRecord kMissing;
  const models::ProcessRecord* p = Find(procs, pid);
  if (!p) ADD_FAILURE() << "pid " << pid << " not in the scan";
  return p ? *p : kMissing;
}

inline std::vector<models::ProcessRecord> Scan(LinuxProcessSource& src, ScanErrors* errors = nullptr) {
  std::vector<models::ProcessRecord> procs;
  ScanErrors local;
  Status s = src.Enumerate(&procs, errors ? errors : &local);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return procs;
}

inline nlohmann::json Pd(const models::ProcessRecord& p) {
  return nlohmann::json::parse(p.platform_data);
}

}  // namespace sentinel::procmond
