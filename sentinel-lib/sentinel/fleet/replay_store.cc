// ReplayStore (envelope.h): the nonces a host has obeyed, in one small file.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <sstream>

#include "sentinel/base/files.h"
#include "sentinel/fleet/envelope.h"

namespace sentinel::fleet {
namespace {

// Longest store file read: kMaxEntries lines of "<32 hex> <20 digits>\n".
constexpr std::size_t kMaxFileBytes = ReplayStore::kMaxEntries * 56;

Result<std::string> ReadFd(int fd, const std::string& path) {
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "reading " + path);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > kMaxFileBytes) return DataLossError(path + ": larger than a replay store can be");
  }
}

Status WriteAllFd(int fd, const std::string& data, const std::string& path) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "writing " + path);
    }
    off += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

// nonce -> keep_until, without the entries expired at `now`.
Result<std::map<std::string, int64_t>> ParseEntries(const std::string& text, const std::string& path,
                                                    int64_t now) {
  std::map<std::string, int64_t> out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::istringstream ls(line);
    std::string nonce;
    int64_t until = 0;
    if (!(ls >> nonce >> until) || nonce.size() != kNonceHexLen) {
      return DataLossError(path + ": line " + std::to_string(lineno) +
                           ": not \"<nonce> <keep_until>\" (remove the file to reset the replay store)");
    }
    if (until >= now) out[nonce] = until;
  }
  return out;
}

// The entries of the store file, empty when it does not exist yet.
Result<std::map<std::string, int64_t>> ReadEntries(const std::string& path, int64_t now) {
  auto fd = OpenRegularNoFollow(path, O_RDONLY);
  if (!fd.ok()) {
    if (fd.status().code() == StatusCode::kNotFound) return std::map<std::string, int64_t>{};
    return fd.status();
  }
  ASSIGN_OR_RETURN(std::string text, ReadFd(fd->get(), path));
  return ParseEntries(text, path, now);
}

// Gives a file root created to the owner of its directory (the agent's
// service user owns the data directory; `sentinelcli` runs as root).
void MatchDirectoryOwner(const std::string& path, mode_t type) {
  if (::geteuid() != 0) return;
  struct stat dir {};
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (::stat(parent.empty() ? "." : parent.c_str(), &dir) != 0) return;
  ChownNoFollow(path, type, dir.st_uid, dir.st_gid).IgnoreError();
}

Status WriteEntries(const std::string& path, const std::map<std::string, int64_t>& entries) {
  std::string text;
  for (const auto& [nonce, until] : entries) text += nonce + " " + std::to_string(until) + "\n";
  const std::string tmp = path + ".tmp";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return ErrnoError(errno, "removing " + tmp);
  {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenRegularNoFollow(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600));
    RETURN_IF_ERROR(WriteAllFd(fd.get(), text, tmp));
    if (::fsync(fd.get()) != 0) return ErrnoError(errno, "syncing " + tmp);
  }
  MatchDirectoryOwner(tmp, S_IFREG);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError(errno, "renaming " + tmp + " to " + path);
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (auto dir = OpenDirectoryNoFollow(parent.empty() ? "." : parent); dir.ok()) ::fsync(dir->get());
  return Status::Ok();
}

// An exclusive flock on "<path>.lock" for as long as it lives.
class FileLock {
 public:
  static Result<FileLock> Take(const std::string& path) {
    const std::string lock = path + ".lock";
    ASSIGN_OR_RETURN(UniqueFd fd, OpenRegularNoFollow(lock, O_RDWR | O_CREAT, 0600));
    MatchDirectoryOwner(lock, S_IFREG);
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return ErrnoError(errno, "locking " + lock);
    }
    return FileLock(std::move(fd));
  }

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing it releases the lock
};

}  // namespace

Result<std::unique_ptr<ReplayStore>> ReplayStore::Open(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  auto dir = OpenDirectoryNoFollow(parent.empty() ? "." : parent);
  if (!dir.ok()) return dir.status().WithContext("replay store " + path);
  std::unique_ptr<ReplayStore> store(new ReplayStore(path));
  // Read once so a damaged file is reported at start, not at the first request.
  auto entries = ReadEntries(path, 0);
  if (!entries.ok()) return entries.status().WithContext("replay store");
  return store;
}

Status ReplayStore::Remember(std::string_view nonce, int64_t keep_until, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(FileLock file_lock, FileLock::Take(path_));
  ASSIGN_OR_RETURN(auto entries, ReadEntries(path_, now));
  const std::string key(nonce);
  if (entries.count(key) != 0) return AlreadyExistsError("nonce " + key + " already used");
  if (entries.size() >= kMaxEntries) {
    return ResourceExhaustedError(path_ + ": " + std::to_string(entries.size()) +
                                  " nonces held, the most a replay store keeps");
  }
  entries[key] = keep_until;
  return WriteEntries(path_, entries);
}

}  // namespace sentinel::fleet
