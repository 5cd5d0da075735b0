// file: JSON lines appended to `path`, with an fsync policy and size-based
// rotation (path -> path.1 -> ... -> path.<rotate_keep>).
//
// Each line is one write(2) on an O_APPEND descriptor, so a crash leaves
// whole lines. A file renamed or removed behind our back (logrotate) is
// noticed by its inode and reopened.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "sentinel/alerting/sinks/sinks.h"
#include "sentinel/base/escape.h"
#include "sentinel/base/files.h"

namespace sentinel::alerting::sinks {
namespace {

class FileSink final : public AlertSink {
 public:
  FileSink(const config::SinkConfig& cfg, std::optional<OcsfSource> ocsf)
      : AlertSink(cfg.name),
        ocsf_(std::move(ocsf)),
        path_(cfg.path),
        fsync_(cfg.fsync),
        rotate_bytes_(cfg.rotate_bytes),
        rotate_keep_(cfg.rotate_keep) {}
  std::string_view type() const override { return "file"; }

  DeliveryResult Deliver(const DeliveryRequest& req) override {
    // Same value; no raw C1/bidi for `tail -f`.
    std::string line = HardenJsonText(PayloadOf(req, ocsf_)) + "\n";
    if (Status s = EnsureOpen(); !s.ok()) return {s};
    if (rotate_bytes_ > 0 && size_ > 0 && size_ + static_cast<int64_t>(line.size()) > rotate_bytes_) {
      if (Status s = Rotate(); !s.ok()) return {s};
    }
    ssize_t n;
    do {
      n = ::write(fd_.get(), line.data(), line.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      Status s = ErrnoError(errno, "writing " + path_);
      fd_ = UniqueFd();  // reopen next time (the disk may come back)
      return {s};
    }
    size_ += n;
    if (static_cast<size_t>(n) != line.size()) {
      fd_ = UniqueFd();
      return {ResourceExhaustedError("short write to " + path_ + " (disk full?)")};
    }
    dirty_ = true;
    if (fsync_ == "always") {
      if (Status s = Sync(); !s.ok()) return {s};
    }
    return {};
  }

  Status Flush() override { return fsync_ == "batch" ? Sync() : Status::Ok(); }

 private:
  Status Sync() {
    if (!dirty_ || fd_.get() < 0) return Status::Ok();
    if (::fdatasync(fd_.get()) != 0) {
      Status s = ErrnoError(errno, "fsync of " + path_);
      fd_ = UniqueFd();
      return s;
    }
    dirty_ = false;
    return Status::Ok();
  }

  Status EnsureOpen() {
    struct stat by_path {};
    if (fd_.get() >= 0) {
      // Still the file at `path`? (logrotate may have moved it.)
      if (::lstat(path_.c_str(), &by_path) == 0 && by_path.st_ino == ino_ && by_path.st_dev == dev_) {
        return Status::Ok();
      }
      if (Status s = Sync(); !s.ok()) return s;
      fd_ = UniqueFd();
    }
    // Never through a link, nor into a file with other hard links: the
    // directory may be writable by others (base/files.h).
    auto opened = OpenRegularNoFollow(path_, O_WRONLY | O_APPEND | O_CREAT, 0640);
    if (!opened.ok()) return opened.status();
    fd_ = std::move(opened).value();
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return ErrnoError(errno, "stat of " + path_);
    if (!S_ISREG(st.st_mode)) {
      fd_ = UniqueFd();
      return InvalidArgumentError(path_ + " is not a regular file");
    }
    ino_ = st.st_ino;
    dev_ = st.st_dev;
    size_ = st.st_size;
    return Status::Ok();
  }

  Status Rotate() {
    if (Status s = Sync(); !s.ok()) return s;
    fd_ = UniqueFd();
    std::error_code ec;
    for (int64_t i = rotate_keep_; i >= 1; --i) {
      const std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
      const std::string to = path_ + "." + std::to_string(i);
      if (!std::filesystem::exists(from, ec)) continue;
      if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoError(errno, "rotating " + from + " to " + to);
    }
    if (fsync_ != "never") {
      // The renames are durable before new lines go to a new file.
      std::string dir = std::filesystem::path(path_).parent_path().string();
      const UniqueFd dfd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dfd.get() >= 0) ::fsync(dfd.get());
    }
    return EnsureOpen();
  }

  std::optional<OcsfSource> ocsf_;  // set: format ocsf
  std::string path_;
  std::string fsync_;
  int64_t rotate_bytes_;
  int64_t rotate_keep_;
  UniqueFd fd_;
  ino_t ino_ = 0;
  dev_t dev_ = 0;
  int64_t size_ = 0;
  bool dirty_ = false;
};

}  // namespace

Result<std::unique_ptr<AlertSink>> MakeFileSink(const config::SinkConfig& cfg, const SinkEnvironment& env) {
  if (cfg.path.empty()) return InvalidArgumentError("path: required for a file sink");
  return std::unique_ptr<AlertSink>(std::make_unique<FileSink>(
      cfg, cfg.format == "ocsf" ? std::optional<OcsfSource>(OcsfSourceOf(env)) : std::nullopt));
}

}  // namespace sentinel::alerting::sinks
