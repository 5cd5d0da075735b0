// uid -> account name, as the host's name service says (getpwuid_r), cached
// for the scans and the real-time writer.
//
// Accounts change under a running procmond: `userdel` frees a uid and the
// next `useradd` may be given it under another name. A cache that never
// forgets would go on calling the new account's processes by the old name,
// so an analyst reading the history would blame the wrong account. The
// cache watches the password file (/etc/passwd; its device, inode, size and
// modification time, looked at no more than once a second) and, when it
// changed, looks every cached uid up again. Accounts served by a directory
// (LDAP, sssd) change without touching that file: every cached uid is also
// looked up again every 10 minutes (nscd's default time to live for passwd
// entries), so such a change is seen within that. One entry
// per uid a process ran as: only root hands out uids (directly or through
// /etc/subuid ranges), so the cache is as large as the host makes it.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

namespace sentinel::procmond {

class UserNames {
 public:
  using Lookup = std::function<std::optional<std::string>(int64_t uid)>;
  using Clock = std::function<int64_t()>;  // monotonic milliseconds

  // Defaults: getpwuid_r, /etc/passwd, the monotonic clock.
  UserNames();
  UserNames(Lookup lookup, std::string passwd_path, Clock clock);

  // The name of `uid` (no value: no such account). The pointer stays valid
  // for the object's life; what it points at is updated in place when the
  // accounts change.
  const std::optional<std::string>* Find(int64_t uid);

  // How often the cached names were looked up again (tests, stats).
  int64_t refreshes() const { return refreshes_; }

 private:
  struct FileStamp {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  FileStamp Stamp() const;
  void RefreshIfChanged();

  Lookup lookup_;
  std::string passwd_path_;
  Clock clock_;
  FileStamp stamp_;
  int64_t checked_ms_ = 0;
  int64_t refreshed_ms_ = 0;
  int64_t refreshes_ = 0;
  std::unordered_map<int64_t, std::optional<std::string>> names_;
};

}  // namespace sentinel::procmond
