#include "procmond/platform/linux/user_names.h"

#include <pwd.h>

#include <utility>
#include <vector>

#include "sentinel/base/time.h"

namespace sentinel::procmond {
namespace {

std::optional<std::string> LookUp(int64_t uid) {
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(4096);
  for (;;) {
    const int rc = getpwuid_r(static_cast<uid_t>(uid), &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc == 0 && found != nullptr) return std::string(found->pw_name);
    return std::nullopt;
  }
}

constexpr int64_t kCheckEveryMs = 1000;
constexpr int64_t kRefreshEveryMs = int64_t{10} * 60 * 1000;

}  // namespace

UserNames::UserNames() : UserNames(LookUp, "/etc/passwd", MonotonicMs) {}

UserNames::UserNames(Lookup lookup, std::string passwd_path, Clock clock)
    : lookup_(std::move(lookup)), passwd_path_(std::move(passwd_path)), clock_(std::move(clock)) {
  stamp_ = Stamp();
  checked_ms_ = refreshed_ms_ = clock_();
}

UserNames::FileStamp UserNames::Stamp() const {
  FileStamp s;
  struct stat st {};
  if (::stat(passwd_path_.c_str(), &st) != 0) return s;
  s.exists = true;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return s;
}

void UserNames::RefreshIfChanged() {
  const int64_t now = clock_();
  if (now - checked_ms_ < kCheckEveryMs) return;
  checked_ms_ = now;
  FileStamp current = Stamp();
  if (current == stamp_ && now - refreshed_ms_ < kRefreshEveryMs) return;
  stamp_ = current;
  refreshed_ms_ = now;
  ++refreshes_;
  // In place: callers hold pointers to the values.
  for (auto& [uid, name] : names_) name = lookup_(uid);
}

const std::optional<std::string>* UserNames::Find(int64_t uid) {
  RefreshIfChanged();
  auto it = names_.find(uid);
  if (it != names_.end()) return &it->second;
  return &(names_[uid] = lookup_(uid));
}

}  // namespace sentinel::procmond
