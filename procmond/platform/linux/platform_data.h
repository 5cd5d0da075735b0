// Builds ProcessRecord.platform_data for LinuxProcessSource from what was
// read (the keys are listed in linux_process_source.h). No I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "procmond/platform/linux/image_identity.h"
#include "procmond/platform/process_source.h"
#include "sentinel/base/status.h"

namespace sentinel::procmond {

// The platform_data fields that can change without a full read;
// platform_data is re-serialized only when they changed.
struct ScanFields {
  bool have_status = false;
  int64_t ruid = -1, euid = -1, rgid = -1, egid = -1;
  int64_t threads = 0;
  int64_t tty_nr = 0;
  std::vector<std::pair<std::string, std::string>> errors;  // status/cmdline/exe failures
  bool operator==(const ScanFields&) const = default;
};

// Sets uid, gid, threads, tty and the status/cmdline/exe errors of *pd,
// keeping its other keys and errors.
void ApplyScanFields(const ScanFields& fields, nlohmann::json* pd);

// platform_data from the once-per-instance reads, one read at a time. A
// failed read is named in "errors" and counted in `errors`; NotFound (the
// process exited meanwhile) is neither.
class OnceFieldsBuilder {
 public:
  explicit OnceFieldsBuilder(ScanErrors* errors) : errors_(errors) {}

  void KernelThread() { pd_["kernel_thread"] = true; }
  // exe_deleted / exe_memfd from the exe link's target.
  void ExeLink(std::string_view target);
  void Cgroup(const Status& read, std::string_view content);
  // cwd, ns, fds and environ are behind the same ptrace check as the exe
  // link: when that was refused they are not tried, only explained.
  void PtraceDenied(const Status& exe_status);
  void Cwd(const Status& read, std::string_view link);
  // One of ns/pid, ns/mnt, ns/net.
  void Namespace(const char* type, const Status& read, std::string_view link);
  // One of fds 0-2 ("none" when not open).
  void Fd(const char* fd, const Status& read, std::string_view link);
  void LoaderEnv(const Status& read, std::string_view environ);
  // exe_nlink and exe_owner_uid: the image's link count and owner.
  void ExeLinks(const Status& read, uint64_t nlink, uint32_t owner_uid);
  void HashSkipped(std::string_view reason) { pd_["hash_skipped"] = reason; }
  // A hash that failed with `skipped`; permission and I/O errors are errors.
  void HashFailed(const std::string& skipped, const std::string& detail);
  // exe_host_mismatch (+ _reason) or exe_host_skipped (image_identity.h).
  void HostCheck(const struct HostCheck& c);
  // exe_memfd_seals of a memfd image (a failed read is an error).
  void MemfdSeals(const Result<uint32_t>& seals);
  // exe_memfd_runtime: the installed runtime binary a runc_cloned memfd is a copy of.
  void MemfdRuntime(const std::string& path) { pd_["exe_memfd_runtime"] = path; }

  // The object built (with "errors" when any); the builder is spent.
  nlohmann::json Take();

 private:
  void Fail(const std::string& field, const Status& st);

  ScanErrors* errors_;
  nlohmann::json pd_ = nlohmann::json::object();
  nlohmann::json errs_ = nlohmann::json::object();
  nlohmann::json ns_ = nlohmann::json::object();
  nlohmann::json fds_ = nlohmann::json::object();
};

// platform_data of a process the kernel's task list has but whose /proc
// entry is missing, unreadable or another task's: proc_hidden, its reason
// (also under errors.proc), and nothing read from that entry.
nlohmann::json HiddenProcessData(const std::string& reason);

}  // namespace sentinel::procmond
