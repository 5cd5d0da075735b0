// ProcessSource over Linux /proc. Reads stat, status, cmdline and the exe
// link of every process; parsing is done by proc_parsers.h.
//
// One instance per collector thread. It remembers each process's CPU ticks
// between calls to compute cpu_percent over the interval.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <unordered_map>
#include <utility>

#include "procmond/platform/process_source.h"

namespace sentinel::procmond {

class LinuxProcessSource final : public ProcessSource {
 public:
  // proc_root is "/proc" except in tests.
  explicit LinuxProcessSource(std::string proc_root = "/proc");
  ~LinuxProcessSource() override;
  LinuxProcessSource(const LinuxProcessSource&) = delete;
  LinuxProcessSource& operator=(const LinuxProcessSource&) = delete;

  Status Enumerate(std::vector<models::ProcessRecord>* out, ScanErrors* errors) override;

 private:
  // Reads PID/<file> relative to the /proc dir fd into buf_. ENOENT/ESRCH
  // mean the process is gone.
  Status ReadProcFile(const std::string& pid_dir, const char* file, std::string* out);
  std::optional<std::string> UserName(int64_t uid);

  std::string proc_root_;
  int proc_fd_ = -1;
  int64_t boot_time_ms_ = -1;
  long ticks_per_sec_;
  long page_size_;
  std::unordered_map<int64_t, std::optional<std::string>> user_names_;
  // (pid, start ticks) -> (utime+stime ticks, monotonic ms at read)
  std::map<std::pair<int64_t, uint64_t>, std::pair<uint64_t, int64_t>> cpu_prev_;
};

}  // namespace sentinel::procmond
