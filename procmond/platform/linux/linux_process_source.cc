#include "procmond/platform/linux/linux_process_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <nlohmann/json.hpp>

#include "procmond/platform/linux/proc_parsers.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/crypto/hex.h"

namespace sentinel::procmond {

namespace lp = linux_proc;
using nlohmann::json;

namespace {

constexpr uint64_t kPfKthread = 0x00200000;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Keys of platform_data.errors that belong to every-scan reads.
constexpr const char* kScanErrorKeys[] = {"status", "cmdline", "exe"};

// "PID/file" in a fixed buffer (no allocation per read).
struct RelPath {
  char c[96];
  RelPath(const char* pid_dir, const char* file) {
    size_t a = std::strlen(pid_dir), b = std::strlen(file);
    if (a + 1 + b >= sizeof c) b = sizeof c - a - 2;  // never: pid <= 10 digits, files are short
    std::memcpy(c, pid_dir, a);
    c[a] = '/';
    std::memcpy(c + a + 1, file, b);
    c[a + 1 + b] = '\0';
  }
};

// Sets an optional string from a view (reusing its storage) or clears it.
void SetOptional(std::optional<std::string>* field, std::optional<std::string_view> value) {
  if (!value) {
    field->reset();
  } else if (*field) {
    (*field)->assign(*value);
  } else {
    field->emplace(*value);
  }
}

// "123/status" -> "status" (error messages name the file, as before).
std::string FileName(const char* rel) {
  const char* slash = std::strrchr(rel, '/');
  return std::string(slash ? slash + 1 : rel);
}

}  // namespace

void LinuxProcessSource::ApplyScanFields(const ScanFields& f, json* pd) {
  if (f.have_status) {
    (*pd)["uid"] = {{"real", f.ruid}, {"effective", f.euid}};
    (*pd)["gid"] = {{"real", f.rgid}, {"effective", f.egid}};
  } else {
    pd->erase("uid");
    pd->erase("gid");
  }
  (*pd)["threads"] = f.threads;
  if (auto tty = lp::TtyName(f.tty_nr)) {
    (*pd)["tty"] = *tty;
  } else {
    pd->erase("tty");
  }
  json errs = pd->contains("errors") ? (*pd)["errors"] : json::object();
  for (const char* k : kScanErrorKeys) errs.erase(k);
  for (const auto& [k, v] : f.errors) errs[k] = v;
  if (errs.empty()) {
    pd->erase("errors");
  } else {
    (*pd)["errors"] = std::move(errs);
  }
}

LinuxProcessSource::LinuxProcessSource() : LinuxProcessSource(LinuxProcessSourceOptions{}) {}

LinuxProcessSource::LinuxProcessSource(LinuxProcessSourceOptions options)
    : proc_root_(std::move(options.proc_root)),
      ticks_per_sec_(sysconf(_SC_CLK_TCK)),
      page_size_(sysconf(_SC_PAGESIZE)),
      hash_executables_(options.hash_executables),
      hash_cache_capacity_(options.hash_cache_capacity),
      refresh_every_(options.refresh_every_scans),
      exe_every_(options.exe_link_every_scans),
      hasher_(std::make_unique<ExeHasher>(options.max_hash_bytes, options.hash_cache_capacity)) {
  max_held_stat_files_ = options.max_held_stat_files;
  if (max_held_stat_files_ == LinuxProcessSourceOptions::kAutoHeldStatFiles) {
    // Raising the soft limit up to the hard one needs no privilege.
    rlimit lim{};
    max_held_stat_files_ = 0;
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      if (lim.rlim_cur < lim.rlim_max) {
        rlimit raised = lim;
        raised.rlim_cur =
            lim.rlim_max == RLIM_INFINITY ? std::max<rlim_t>(lim.rlim_cur, 1 << 20) : lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
      }
      constexpr rlim_t kReserve = 1024;
      if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur > kReserve) {
        max_held_stat_files_ = static_cast<size_t>(lim.rlim_cur - kReserve);
      }
    }
  }
}

void LinuxProcessSource::HeldFd::Reset() {
  if (fd_ >= 0) {
    ::close(fd_);
    if (count_) --*count_;
  }
  fd_ = -1;
}

bool LinuxProcessSource::ReadHeldStat(int fd) {
  // stat is at most ~1 KiB (a 64-byte comm and 52 numbers).
  char buf[4096];
  while (true) {
    ssize_t n = ::pread(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return false;
    buf_.assign(buf, static_cast<size_t>(n));
    return true;
  }
}

LinuxProcessSource::~LinuxProcessSource() {
  if (proc_fd_ >= 0) ::close(proc_fd_);
}

void LinuxProcessSource::SetHashing(bool enabled, uint64_t max_hash_bytes) {
  hash_executables_ = enabled;
  if (max_hash_bytes != hasher_->max_hash_bytes()) {
    hasher_ = std::make_unique<ExeHasher>(max_hash_bytes, hash_cache_capacity_);
  }
}

Status LinuxProcessSource::ReadProcFile(const char* rel, std::string* out, bool seq_file,
                                        int* keep_fd) const {
  int fd = ::openat(proc_fd_, rel, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return ErrnoError(e, FileName(rel));
  }
  out->clear();
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return ErrnoError(e, FileName(rel));
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    // stat and status are generated whole: a short read is all there is,
    // and saves the read() that would return 0.
    if (seq_file && static_cast<size_t>(n) < sizeof buf) break;
  }
  if (keep_fd) {
    *keep_fd = fd;
  } else {
    ::close(fd);
  }
  return Status::Ok();
}

Result<std::string> LinuxProcessSource::ReadLink(const char* rel, std::string_view what) const {
  char link[PATH_MAX + 1];
  ssize_t n = ::readlinkat(proc_fd_, rel, link, sizeof link);
  if (n < 0) return ErrnoError(errno, what);
  if (static_cast<size_t>(n) == sizeof link) return ErrnoError(ENAMETOOLONG, what);
  return std::string(link, static_cast<size_t>(n));
}

void LinuxProcessSource::SetError(Instance* inst, std::optional<std::string> ReadErrors::*field,
                                  std::optional<std::string> reason) {
  if (!inst->errors) {
    if (!reason) return;
    inst->errors = std::make_unique<ReadErrors>();
  }
  if ((*inst->errors).*field == reason) return;
  inst->pd_dirty = true;
  (*inst->errors).*field = std::move(reason);
  if (inst->errors->empty()) inst->errors.reset();
}

std::shared_ptr<const std::string> LinuxProcessSource::InternExeLink(std::string_view link) {
  auto it = exe_links_.find(link);
  if (it != exe_links_.end()) return *it;
  auto s = std::make_shared<const std::string>(link);
  exe_links_.insert(s);
  return s;
}

LinuxProcessSource::ScanFields LinuxProcessSource::CurrentScanFields(const Instance& inst, int64_t threads,
                                                                     int64_t tty_nr) {
  ScanFields sf;
  sf.have_status = inst.have_status;
  sf.ruid = inst.ruid;
  sf.euid = inst.euid;
  sf.rgid = inst.rgid;
  sf.egid = inst.egid;
  sf.threads = threads;
  sf.tty_nr = tty_nr;
  if (inst.errors) {
    if (inst.errors->status) sf.errors.emplace_back("status", *inst.errors->status);
    if (inst.errors->cmdline) sf.errors.emplace_back("cmdline", *inst.errors->cmdline);
    if (inst.errors->exe) sf.errors.emplace_back("exe", *inst.errors->exe);
  }
  return sf;
}

const std::optional<std::string>* LinuxProcessSource::UserName(int64_t uid) {
  auto it = user_names_.find(uid);
  if (it != user_names_.end()) return &it->second;
  struct passwd pw {};
  struct passwd* result = nullptr;
  char buf[4096];
  std::optional<std::string> name;
  if (getpwuid_r(static_cast<uid_t>(uid), &pw, buf, sizeof buf, &result) == 0 && result) name = pw.pw_name;
  return &(user_names_[uid] = std::move(name));
}

Status LinuxProcessSource::ReadStatus(const char* pid_dir, Instance* inst, ScanErrors* errors) {
  ++reads_.status;
  Status s = ReadProcFile(RelPath(pid_dir, "status").c, &buf_, /*seq_file=*/true);
  if (s.code() == StatusCode::kNotFound) return s;
  inst->pd_dirty = true;
  inst->have_status = false;
  inst->ruid = inst->euid = inst->rgid = inst->egid = -1;
  inst->user_name = nullptr;
  SetError(inst, &ReadErrors::status, std::nullopt);
  if (!s.ok()) {
    SetError(inst, &ReadErrors::status, s.message());
    errors->Add(s.message());
    return Status::Ok();
  }
  auto st = lp::ParseStatus(buf_);
  if (!st.ok()) {
    SetError(inst, &ReadErrors::status, st.status().message());
    errors->Add(st.status().message());
    return Status::Ok();
  }
  if (st->ruid) inst->user_name = UserName(*st->ruid);
  inst->have_status = true;
  inst->ruid = st->ruid.value_or(-1);
  inst->euid = st->euid.value_or(-1);
  inst->rgid = st->rgid.value_or(-1);
  inst->egid = st->egid.value_or(-1);
  return Status::Ok();
}

void LinuxProcessSource::ReadCmdline(const char* pid_dir, Instance* inst, ScanErrors* errors) {
  ++reads_.cmdline;
  Status s = ReadProcFile(RelPath(pid_dir, "cmdline").c, &buf_);
  SetError(inst, &ReadErrors::cmdline, std::nullopt);
  if (s.ok()) {
    inst->cmdline = std::string(buf_);  // exact size
    inst->has_cmdline = true;
  } else {
    inst->cmdline = std::string();
    inst->has_cmdline = false;
    if (s.code() != StatusCode::kNotFound) {
      SetError(inst, &ReadErrors::cmdline, s.message());
      errors->Add(s.message());
    }
  }
  // A 128 KiB command line must not pin 128 KiB of buffer for good.
  if (buf_.capacity() > 65536) std::string().swap(buf_);
}

void LinuxProcessSource::ReadOnceFields(const char* pid_dir, bool kernel_thread, bool dead, bool refresh,
                                        const Status& exe_status, Instance* inst, json* pd,
                                        ScanErrors* errors) {
  json errs = json::object();
  auto fail = [&](const char* field, const Status& st) {
    if (st.code() == StatusCode::kNotFound) return;  // exited meanwhile
    errs[field] = st.message();
    errors->Add(st.message());
  };
  if (kernel_thread) {
    (*pd)["kernel_thread"] = true;
  } else if (!dead) {
    if (inst->exe_link) {
      auto exe = lp::ClassifyExe(*inst->exe_link);
      if (exe.deleted) (*pd)["exe_deleted"] = true;
      if (exe.memfd) (*pd)["exe_memfd"] = true;
    }

    if (Status cs = ReadProcFile(RelPath(pid_dir, "cgroup").c, &buf_); cs.ok()) {
      if (auto cg = lp::ParseCgroup(buf_); cg.ok()) {
        (*pd)["cgroup"] = *cg;
      } else {
        fail("cgroup", cg.status());
      }
    } else {
      fail("cgroup", cs);
    }

    if (exe_status.code() == StatusCode::kPermissionDenied) {
      // cwd, ns/*, fd/* and environ are guarded by the same ptrace read
      // check as exe: not tried, so a process we may not inspect costs no
      // further syscalls and no further error counts.
      errs["access"] = "cwd, ns, fds, environ not read: " + exe_status.message();
      (*pd)["hash_skipped"] = kHashSkipPermissionDenied;
    } else {
      if (auto cwd = ReadLink(RelPath(pid_dir, "cwd").c, "cwd"); cwd.ok()) {
        (*pd)["cwd"] = *cwd;
      } else {
        fail("cwd", cwd.status());
      }

      json ns = json::object();
      for (const char* type : {"pid", "mnt", "net"}) {
        std::string field = std::string("ns.") + type;
        std::string rel = std::string("ns/") + type;
        auto link = ReadLink(RelPath(pid_dir, rel.c_str()).c, rel);
        if (!link.ok()) {
          fail(field.c_str(), link.status());
          continue;
        }
        auto ino = lp::ParseNsLink(*link, type);
        if (ino.ok()) {
          ns[type] = *ino;
        } else {
          fail(field.c_str(), ino.status());
        }
      }
      if (!ns.empty()) (*pd)["ns"] = std::move(ns);

      json fds = json::object();
      for (const char* fd : {"0", "1", "2"}) {
        std::string rel = std::string("fd/") + fd;
        auto link = ReadLink(RelPath(pid_dir, rel.c_str()).c, rel);
        if (!link.ok()) {
          if (link.status().code() == StatusCode::kNotFound) {
            fds[fd] = {{"type", "none"}};
          } else {
            fail((std::string("fd.") + fd).c_str(), link.status());
          }
          continue;
        }
        lp::FdTarget t = lp::ClassifyFdTarget(*link);
        json j = {{"type", t.type}};
        if (!t.path.empty()) j["path"] = t.path;
        if (t.inode) j["inode"] = *t.inode;
        fds[fd] = std::move(j);
      }
      if (!fds.empty()) (*pd)["fds"] = std::move(fds);

      // Only names are looked at: LoaderEnvNames never copies a value out.
      if (Status es = ReadProcFile(RelPath(pid_dir, "environ").c, &buf_); es.ok()) {
        (*pd)["loader_env"] = lp::LoaderEnvNames(buf_);
      } else {
        fail("environ", es);
      }
      // Never keep environ contents (values) around.
      std::fill(buf_.begin(), buf_.end(), '\0');
      buf_.clear();
      if (buf_.capacity() > 65536) std::string().swap(buf_);

      const bool keep_hash = refresh && !hash_executables_ && inst->has_hash;
      if (!keep_hash) inst->has_hash = false;
      if (keep_hash) {
        // Hashing was turned off since: a refresh keeps what was recorded.
      } else if (inst->exe_link) {
        if (!hash_executables_) {
          (*pd)["hash_skipped"] = kHashSkipDisabled;
        } else {
          ExeHasher::Outcome h = hasher_->Hash(proc_fd_, RelPath(pid_dir, "exe").c);
          std::optional<std::vector<uint8_t>> bytes;
          if (h.sha256) bytes = crypto::FromHex(*h.sha256);
          if (bytes && bytes->size() == inst->exe_hash.size()) {
            std::copy(bytes->begin(), bytes->end(), inst->exe_hash.begin());
            inst->has_hash = true;
          } else if (h.skipped != kHashSkipGone) {
            (*pd)["hash_skipped"] = h.skipped;
            if (h.skipped == kHashSkipPermissionDenied || h.skipped == kHashSkipIoError) {
              std::string reason = "exe hash: " + h.detail;
              errs["exe_hash"] = reason;
              errors->Add(reason);
            }
          }
        }
      } else if (!exe_status.ok()) {
        (*pd)["hash_skipped"] = kHashSkipIoError;
      }
    }
  }
  if (!errs.empty()) (*pd)["errors"] = std::move(errs);
}

Status LinuxProcessSource::Enumerate(std::vector<models::ProcessRecord>* out, ScanErrors* errors) {
  return Scan(out, errors, /*reuse=*/false);
}

Status LinuxProcessSource::EnumerateReusing(std::vector<models::ProcessRecord>* out, ScanErrors* errors) {
  return Scan(out, errors, /*reuse=*/true);
}

Status LinuxProcessSource::Scan(std::vector<models::ProcessRecord>* out, ScanErrors* errors, bool reuse) {
  last_hash_counters_ = {};
  reads_ = {};
  if (proc_fd_ < 0) {
    proc_fd_ = ::open(proc_root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc_fd_ < 0) return ErrnoError(errno, "opening " + proc_root_);
    // Held stat files rely on procfs: content regenerated at each read, and
    // ESRCH once the task is gone. Anything else (a test's fake tree) is
    // read by path every time.
    struct statfs fs {};
    if (::fstatfs(proc_fd_, &fs) != 0 || fs.f_type != PROC_SUPER_MAGIC) max_held_stat_files_ = 0;
  }
  if (boot_time_ms_ < 0) {
    std::string s;
    RETURN_IF_ERROR(ReadProcFile("stat", &s));
    ASSIGN_OR_RETURN(int64_t btime, lp::ParseBootTime(s));
    boot_time_ms_ = btime * 1000;
  }

  // The kernel's sample of every process when there is a sampler; /proc
  // otherwise, and for good once the sampler failed.
  bool from_kernel = false;
  if (sampler_) {
    if (Status s = sampler_->Sample(&samples_); s.ok()) {
      from_kernel = true;
    } else {
      sampler_failure_ = s.message();
      sampler_.reset();
      samples_ = {};
      errors->Add("task sampler: " + s.message());
    }
  }
  // /proc is listed either way: the kernel's sample is checked against
  // it, and a process it did not report is read from /proc (seen on 6.18:
  // the task iterator never visits pid 1 and its threads).
  {
    int dfd = ::openat(proc_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return ErrnoError(errno, "listing " + proc_root_);
    DIR* dir = ::fdopendir(dfd);
    if (!dir) {
      ::close(dfd);
      return ErrnoError(errno, "listing " + proc_root_);
    }
    pids_.clear();
    while (dirent* de = ::readdir(dir)) {
      if (de->d_name[0] < '1' || de->d_name[0] > '9') continue;
      int32_t pid = 0;
      const char* end = de->d_name + std::strlen(de->d_name);
      auto [ptr, ec] = std::from_chars(de->d_name, end, pid);
      if (ec == std::errc() && ptr == end) pids_.push_back(pid);
    }
    ::closedir(dir);
  }

  ++scan_;
  const ExeHasher::Counters hasher_before = hasher_->counters();
  int64_t reused_hashes = 0;
  const int64_t now_mono = MonotonicMs();
  // Sample and listing differ by the processes only one of them saw.
  const size_t n = from_kernel ? std::max(samples_.size(), pids_.size()) + 64 : pids_.size();
  if (instances_.bucket_count() < n) instances_.reserve(n + n / 4);
  used_ = reuse ? 0 : out->size();
  out->reserve(used_ + n);
  const uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(ticks_per_sec_);

  if (from_kernel) {
    // Both in ascending pid order: a merge finds what only /proc listed.
    if (!std::is_sorted(pids_.begin(), pids_.end())) std::sort(pids_.begin(), pids_.end());
    auto listed = pids_.begin();
    for (const TaskSample& t : samples_) {
      for (; listed != pids_.end() && *listed < t.pid; ++listed) {
        ++reads_.unsampled;
        ObserveFromProc(*listed, now_mono, out, errors, &reused_hashes);
      }
      if (listed != pids_.end() && *listed == t.pid) ++listed;
      ++reads_.sampled;
      Observation o;
      o.pid = t.pid;
      o.ppid = t.ppid;
      o.state = t.state;
      o.kernel_thread = (t.task_flags & kPfKthread) != 0;
      o.start_ticks = t.start_boottime_ns / ns_per_tick;  // as /proc (nsec_to_clock_t)
      o.cpu_ns = t.cpu_ns;
      o.rss_bytes = t.rss_pages * page_size_;
      o.threads = t.threads;
      o.tty_nr = t.tty_nr;
      o.comm = t.comm();
      o.exec_sig = (t.exec_id << 1) | 1;  // never 0: always "shown"
      o.from_kernel = true;
      o.ruid = t.ruid;
      o.euid = t.euid;
      o.rgid = t.rgid;
      o.egid = t.egid;
      if (t.has_exe) {
        // Bit 0: unlinked, bit 1: has an exe; the identity above them, so a
        // deletion always changes the key.
        const uint64_t id = (t.exe_ino * 0x9e3779b97f4a7c15ULL) ^ (t.exe_dev * 0xc2b2ae3d27d4eb4fULL);
        o.exe_key = (id << 2) | 2 | (t.exe_unlinked ? 1 : 0);
      }
      Observe(o, nullptr, now_mono, out, errors, &reused_hashes);
    }
    for (; listed != pids_.end(); ++listed) {
      ++reads_.unsampled;
      ObserveFromProc(*listed, now_mono, out, errors, &reused_hashes);
    }
  } else {
    for (const int32_t pid : pids_) ObserveFromProc(pid, now_mono, out, errors, &reused_hashes);
  }
  out->resize(used_);  // drops recycled records this scan did not need
  std::erase_if(instances_, [&](const auto& kv) { return kv.second.seen_scan != scan_; });
  std::erase_if(exe_links_, [](const auto& link) { return link.use_count() == 1; });
  // A spike (a fork storm) must not pin its bucket array for good.
  if (instances_.bucket_count() > 4 * (instances_.size() + 1024)) instances_.rehash(0);

  const ExeHasher::Counters& after = hasher_->counters();
  last_hash_counters_.hits = after.hits - hasher_before.hits + reused_hashes;
  last_hash_counters_.misses = after.misses - hasher_before.misses;
  return Status::Ok();
}

void LinuxProcessSource::ObserveFromProc(int32_t pid, int64_t now_mono,
                                         std::vector<models::ProcessRecord>* out, ScanErrors* errors,
                                         int64_t* reused_hashes) {
  const uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(ticks_per_sec_);
  char pid_dir[16];
  *std::to_chars(pid_dir, pid_dir + sizeof pid_dir - 1, pid).ptr = '\0';

  ++reads_.stat;
  // A held stat file first; it fails once its task is gone (a process
  // now holding the pid is then read by path, as a new instance).
  bool read_held = false;
  if (auto held = instances_.find(pid); held != instances_.end() && held->second.stat_fd.get() >= 0) {
    read_held = ReadHeldStat(held->second.stat_fd.get());
    if (!read_held) held->second.stat_fd.Reset();
  }
  HeldFd opened;  // a stat file opened by path, to keep if there is room
  if (read_held) {
    ++reads_.stat_held;
  } else {
    int fd = -1;
    const bool keep = held_stat_files_ < max_held_stat_files_;
    Status s = ReadProcFile(RelPath(pid_dir, "stat").c, &buf_, /*seq_file=*/true, keep ? &fd : nullptr);
    if (!s.ok()) {
      if (s.code() != StatusCode::kNotFound) errors->Add(s.message());
      return;  // vanished between listing and reading: not an error
    }
    opened = HeldFd(fd, &held_stat_files_);
  }
  auto stat = lp::ParseStat(buf_);
  if (!stat.ok()) {
    errors->Add(stat.status().message());
    return;
  }
  // The owner of /proc/PID is the task's euid:egid (see the header).
  ++reads_.owner;
  struct stat dir_st {};
  Observation o;
  o.owner_known = true;
  if (::fstatat(proc_fd_, pid_dir, &dir_st, 0) != 0) {
    if (errno == ENOENT || errno == ESRCH) return;  // gone
    o.owner_known = false;                          // status is read every scan then
  }
  o.owner_uid = dir_st.st_uid;
  o.owner_gid = dir_st.st_gid;
  o.pid = static_cast<int32_t>(stat->pid);
  o.ppid = stat->ppid;
  o.state = stat->state;
  o.kernel_thread = (stat->flags & kPfKthread) != 0;
  o.start_ticks = stat->starttime_ticks;
  o.cpu_ns = (stat->utime_ticks + stat->stime_ticks) * ns_per_tick;
  o.rss_bytes = stat->rss_pages * page_size_;
  o.threads = stat->num_threads;
  o.tty_nr = stat->tty_nr;
  o.comm = stat->comm;
  o.exec_sig = stat->exec_sig;
  o.pid_dir = pid_dir;
  Observe(o, &opened, now_mono, out, errors, reused_hashes);
}

void LinuxProcessSource::Observe(const Observation& o, HeldFd* opened, int64_t now_mono,
                                 std::vector<models::ProcessRecord>* out, ScanErrors* errors,
                                 int64_t* reused_hashes) {
  const bool kernel_thread = o.kernel_thread;
  const bool dead = o.state == 'Z' || o.state == 'X' || o.state == 'x';
  char own_dir[16];
  const char* pid_dir = o.pid_dir;  // formatted already when read from /proc
  if (pid_dir == nullptr) {
    *std::to_chars(own_dir, own_dir + sizeof own_dir - 1, o.pid).ptr = '\0';
    pid_dir = own_dir;
  }

  auto [it, inserted] = instances_.try_emplace(o.pid);
  Instance& inst = it->second;
  const bool fresh = inserted || inst.start_ticks != o.start_ticks;
  if (fresh) {
    inst = Instance{};
    inst.start_ticks = o.start_ticks;
    inst.exec_sig = o.exec_sig;
    inst.exe_key = o.exe_key;
  }
  if (opened && opened->get() >= 0) inst.stat_fd = std::move(*opened);
  if (o.from_kernel) inst.stat_fd.Reset();  // no longer read: give its kernel memory back
  // Last seen the other way (/proc <-> the kernel's sample): its markers
  // cannot be compared, the exe link decides whether it exec'd.
  const bool way_changed = !fresh && inst.from_kernel != o.from_kernel;
  inst.from_kernel = o.from_kernel;
  // A zombie's signature reads 0 in stat: it did not exec.
  const bool sig_moved = !fresh && !way_changed && !dead && inst.exec_sig != o.exec_sig;
  // The kernel's sample names the executable: a deleted or swapped image
  // (prctl PR_SET_MM_EXE_FILE) is seen now, without a readlink per scan.
  const bool exe_moved = o.from_kernel && !fresh && !way_changed && !dead && inst.exe_key != o.exe_key;

  // The exe link: at first sight, when a marker moved, and (from /proc)
  // every exe_every_ scans.
  std::optional<std::string_view> exe_now;  // meaningful once exe_read
  Status exe_status;
  bool exe_read = false;
  char exe_buf[PATH_MAX + 1];
  auto read_exe = [&] {
    exe_read = true;
    if (kernel_thread) return;
    ++reads_.exe_link;
    ssize_t n = ::readlinkat(proc_fd_, RelPath(pid_dir, "exe").c, exe_buf, sizeof exe_buf);
    if (n >= 0 && static_cast<size_t>(n) < sizeof exe_buf) {
      exe_now = std::string_view(exe_buf, static_cast<size_t>(n));
      return;
    }
    Status e = ErrnoError(n < 0 ? errno : ENAMETOOLONG, "exe");
    // EACCES without privileges; ENOENT is a zombie or a vanished process.
    if (e.code() != StatusCode::kNotFound) {
      errors->Add(e.message());
      exe_status = std::move(e);
    }
  };
  const bool staggered =
      !o.from_kernel &&
      (exe_every_ == 1 || (exe_every_ > 1 && (static_cast<uint64_t>(o.pid) + scan_) % exe_every_ == 0));
  if (fresh || way_changed || sig_moved || exe_moved || staggered) read_exe();

  const bool exec =
      !fresh &&
      (inst.comm != o.comm ||
       // Both shown and different (to or from 0 is a change of access: the link decides).
       (sig_moved && inst.exec_sig != 0 && o.exec_sig != 0) ||
       // A process that became a zombie has lost its exe link: still the same image.
       (exe_read && !dead &&
        (inst.exe_link ? std::optional<std::string_view>(*inst.exe_link) : std::nullopt) != exe_now));
  if (!dead) {
    inst.exec_sig = o.exec_sig;
    inst.exe_key = o.exe_key;
  }
  // Zombies and kernel threads have nothing left to refresh.
  const bool refresh = !fresh && !exec && !dead && !kernel_thread && refresh_every_ > 0 &&
                       scan_ - inst.full_scan >= refresh_every_ &&
                       static_cast<uint64_t>(o.pid) % refresh_every_ == scan_ % refresh_every_;
  const bool full = fresh || exec || refresh;
  if (full && !exe_read) read_exe();
  if (exe_read) {
    SetError(&inst, &ReadErrors::exe,
             exe_status.ok() ? std::nullopt : std::optional<std::string>(exe_status.message()));
  }

  if (o.from_kernel) {
    // Every id, live from the kernel, every scan: no status file to read.
    if (!inst.have_status || inst.ruid != o.ruid || inst.euid != o.euid || inst.rgid != o.rgid ||
        inst.egid != o.egid) {
      if (!fresh && inst.have_status) ++reads_.owner_changes;
      inst.have_status = true;
      inst.ruid = o.ruid;
      inst.euid = o.euid;
      inst.rgid = o.rgid;
      inst.egid = o.egid;
      inst.user_name = UserName(o.ruid);
      inst.pd_dirty = true;
    }
  } else {
    const bool owner_changed = !full && (!o.owner_known || !inst.owner_known ||
                                         inst.owner_uid != o.owner_uid || inst.owner_gid != o.owner_gid);
    if (full || owner_changed) {
      if (owner_changed && o.owner_known && inst.owner_known) ++reads_.owner_changes;
      // The owner is taken before status is read: a change in between shows
      // as a difference at the next scan, never as a missed one.
      Status st = ReadStatus(pid_dir, &inst, errors);
      if (st.code() == StatusCode::kNotFound) {
        if (fresh) instances_.erase(it);
        return;  // gone
      }
      inst.owner_known = o.owner_known;
      inst.owner_uid = o.owner_uid;
      inst.owner_gid = o.owner_gid;
    }
  }

  // Built in place: no record is moved (10,000 moves were ~5% of a warm
  // scan), and a recycled one is overwritten field by field, keeping its
  // strings' storage (steady scans then allocate next to nothing).
  models::ProcessRecord& p = used_ < out->size() ? (*out)[used_] : out->emplace_back();
  ++used_;
  p.pid = o.pid;
  p.ppid = o.ppid;
  SetOptional(&p.status, lp::StateName(o.state));
  p.start_time_ms =
      boot_time_ms_ + static_cast<int64_t>(o.start_ticks * 1000 / static_cast<uint64_t>(ticks_per_sec_));
  p.memory_bytes = o.rss_bytes;
  if (!fresh && now_mono > inst.cpu_mono_ms && o.cpu_ns >= inst.cpu_ns) {
    const double secs = static_cast<double>(now_mono - inst.cpu_mono_ms) / 1000.0;
    p.cpu_percent = static_cast<double>(o.cpu_ns - inst.cpu_ns) / 1e9 / secs * 100.0;
  } else {
    p.cpu_percent = 0.0;
  }

  if (full) {
    inst.exe_link = exe_now ? InternExeLink(*exe_now) : nullptr;
    ReadCmdline(pid_dir, &inst, errors);
    if (refresh) ++reads_.refreshes;
    ++reads_.full_reads;
    inst.full_scan = scan_;
    inst.comm.assign(o.comm);
    json pd = json::object();
    ReadOnceFields(pid_dir, kernel_thread, dead, refresh, exe_status, &inst, &pd, errors);
    ApplyScanFields(CurrentScanFields(inst, o.threads, o.tty_nr), &pd);
    inst.platform_data = Dump(pd);
    inst.platform_data.shrink_to_fit();  // cached for the instance's life
  } else {
    if (inst.has_hash) ++*reused_hashes;
    if (inst.pd_dirty || inst.pd_threads != o.threads || inst.pd_tty != o.tty_nr) {
      json pd = json::parse(inst.platform_data, nullptr, /*allow_exceptions=*/false);
      if (!pd.is_object()) pd = json::object();
      ApplyScanFields(CurrentScanFields(inst, o.threads, o.tty_nr), &pd);
      inst.platform_data = Dump(pd);
      inst.platform_data.shrink_to_fit();
    }
  }
  inst.pd_threads = o.threads;
  inst.pd_tty = o.tty_nr;
  inst.pd_dirty = false;
  inst.seen_scan = scan_;
  inst.cpu_ns = o.cpu_ns;
  inst.cpu_mono_ms = now_mono;

  p.name.assign(inst.comm);
  SetOptional(&p.exe_path, inst.exe_link ? std::optional<std::string_view>(*inst.exe_link) : std::nullopt);
  if (inst.has_cmdline) {
    if (!p.command_line) p.command_line.emplace();
    lp::ParseCmdlineInto(inst.cmdline, &*p.command_line);
  } else {
    p.command_line.reset();
  }
  if (inst.have_status && inst.ruid >= 0) {
    p.user_id = inst.ruid;
  } else {
    p.user_id.reset();
  }
  // The euid from status (or the kernel); from /proc it is also the owner of
  // /proc/PID, read this scan, and status was re-read above if they differed.
  if (inst.have_status && inst.euid >= 0) {
    p.effective_uid = inst.euid;
  } else if (o.owner_known) {
    p.effective_uid = static_cast<int64_t>(o.owner_uid);
  } else {
    p.effective_uid.reset();
  }
  SetOptional(&p.user_name, inst.user_name && *inst.user_name
                                ? std::optional<std::string_view>(**inst.user_name)
                                : std::nullopt);
  if (inst.has_hash) {
    static constexpr char kDigits[] = "0123456789abcdef";
    if (!p.exe_hash) p.exe_hash.emplace();
    std::string& hex = *p.exe_hash;
    hex.resize(2 * inst.exe_hash.size());
    for (size_t i = 0; i < inst.exe_hash.size(); ++i) {
      hex[2 * i] = kDigits[inst.exe_hash[i] >> 4];
      hex[2 * i + 1] = kDigits[inst.exe_hash[i] & 0xf];
    }
  } else {
    p.exe_hash.reset();
  }
  p.platform_data.assign(inst.platform_data);
}

void LinuxProcessSource::SetTaskSampler(std::unique_ptr<TaskSampler> sampler) {
  sampler_ = std::move(sampler);
  sampler_failure_.reset();
}

std::optional<std::string> LinuxProcessSource::TakeSamplerFailure() {
  return std::exchange(sampler_failure_, std::nullopt);
}

}  // namespace sentinel::procmond
