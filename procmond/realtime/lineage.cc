#include "procmond/realtime/lineage.h"

namespace sentinel::procmond {

Lineage::Known& Lineage::Entry(int64_t pid) {
  if (known_.size() >= max_entries_ && known_.find(pid) == known_.end()) known_.clear();
  return known_[pid];
}

void Lineage::OnFork(int64_t child, int64_t parent) {
  std::optional<int64_t> ruid;
  if (parent > 0) {
    Known& p = Entry(parent);
    if (!p.ruid) p.ruid = read_ruid_(parent);
    ruid = p.ruid;
  }
  Known& c = Entry(child);
  c.parent = parent;
  c.ruid = ruid;
}

void Lineage::OnUid(int64_t pid, int64_t ruid) {
  Entry(pid).ruid = ruid;
}

void Lineage::OnExecRead(int64_t pid, int64_t ruid) {
  Entry(pid).ruid = ruid;
}

std::optional<int64_t> Lineage::OnExit(int64_t pid) {
  auto it = known_.find(pid);
  if (it == known_.end()) return std::nullopt;
  const int64_t parent = it->second.parent;
  known_.erase(it);
  if (parent <= 0) return std::nullopt;
  return parent;
}

void Lineage::OnLoss() {
  for (auto& [pid, k] : known_) k.ruid.reset();
}

std::optional<int64_t> Lineage::Parent(int64_t pid) const {
  auto it = known_.find(pid);
  if (it == known_.end() || it->second.parent <= 0) return std::nullopt;
  return it->second.parent;
}

std::optional<int64_t> Lineage::Ruid(int64_t pid) const {
  auto it = known_.find(pid);
  if (it == known_.end()) return std::nullopt;
  return it->second.ruid;
}

}  // namespace sentinel::procmond
