// Lineage: what the netlink source knows of each live process between its
// events — its parent (from the fork event) and its real uid.
//
// The proc connector's exec event carries neither; /proc/PID has them only
// until the process is reaped, which for a short-lived command can be
// microseconds after its exec. A real uid survives exec and changes only
// through the set*uid calls, which the connector reports (PROC_EVENT_UID):
// so a child takes its parent's real uid at fork and keeps it until such an
// event. That gives the exec of a process already gone its uid anyway.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>

namespace sentinel::procmond {

class Lineage {
 public:
  // Reads the real uid of a live process (from /proc); called once for a
  // parent first seen forking (one started before the subscription).
  using RuidReader = std::function<std::optional<int64_t>(int64_t pid)>;

  explicit Lineage(RuidReader read_ruid, size_t max_entries = 65536)
      : read_ruid_(std::move(read_ruid)), max_entries_(max_entries) {}

  // A new process `child` (a tgid, not a thread) of `parent`.
  void OnFork(int64_t child, int64_t parent);
  // A set*uid call of `pid` left it with real uid `ruid`.
  void OnUid(int64_t pid, int64_t ruid);
  // What /proc said at an exec of `pid`, when it could be read.
  void OnExecRead(int64_t pid, int64_t ruid);
  // `pid` ended: its parent when known; `pid` is forgotten.
  std::optional<int64_t> OnExit(int64_t pid);
  // Events were lost (socket overflow): a uid change may be among them, so
  // no real uid is trusted until read again. Parents stay (they never change
  // for a pid until its exit, and a lost exit is overwritten by the next fork).
  void OnLoss();

  std::optional<int64_t> Parent(int64_t pid) const;
  std::optional<int64_t> Ruid(int64_t pid) const;
  size_t size() const { return known_.size(); }

 private:
  struct Known {
    int64_t parent = 0;  // 0: unknown (a process seen only as a parent)
    std::optional<int64_t> ruid;
  };
  // Bounded: forks of processes whose exit is never seen must not grow it forever.
  Known& Entry(int64_t pid);

  RuidReader read_ruid_;
  size_t max_entries_;
  std::unordered_map<int64_t, Known> known_;
};

}  // namespace sentinel::procmond
