#include "procmond/platform/linux/linux_process_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "procmond/platform/linux/proc_parsers.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"

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
      hasher_(std::make_unique<ExeHasher>(options.max_hash_bytes, options.hash_cache_capacity)) {}

LinuxProcessSource::~LinuxProcessSource() {
  if (proc_fd_ >= 0) ::close(proc_fd_);
}

void LinuxProcessSource::SetHashing(bool enabled, uint64_t max_hash_bytes) {
  hash_executables_ = enabled;
  if (max_hash_bytes != hasher_->max_hash_bytes()) {
    hasher_ = std::make_unique<ExeHasher>(max_hash_bytes, hash_cache_capacity_);
  }
}

Status LinuxProcessSource::ReadProcFile(const std::string& pid_dir, const char* file,
                                        std::string* out) const {
  std::string rel = pid_dir + "/" + file;
  int fd = ::openat(proc_fd_, rel.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, file);
  out->clear();
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return ErrnoError(e, file);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return Status::Ok();
}

Result<std::string> LinuxProcessSource::ReadLink(const std::string& pid_dir, const char* rel,
                                                 std::string_view what) const {
  std::string path = pid_dir + "/" + rel;
  char link[PATH_MAX + 1];
  ssize_t n = ::readlinkat(proc_fd_, path.c_str(), link, sizeof link);
  if (n < 0) return ErrnoError(errno, what);
  if (static_cast<size_t>(n) == sizeof link) return ErrnoError(ENAMETOOLONG, what);
  return std::string(link, static_cast<size_t>(n));
}

std::optional<std::string> LinuxProcessSource::UserName(int64_t uid) {
  auto it = user_names_.find(uid);
  if (it != user_names_.end()) return it->second;
  struct passwd pw {};
  struct passwd* result = nullptr;
  char buf[4096];
  std::optional<std::string> name;
  if (getpwuid_r(static_cast<uid_t>(uid), &pw, buf, sizeof buf, &result) == 0 && result) name = pw.pw_name;
  user_names_[uid] = name;
  return name;
}

Status LinuxProcessSource::Enumerate(std::vector<models::ProcessRecord>* out, ScanErrors* errors) {
  last_hash_counters_ = {};
  if (proc_fd_ < 0) {
    proc_fd_ = ::open(proc_root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc_fd_ < 0) return ErrnoError(errno, "opening " + proc_root_);
  }
  if (boot_time_ms_ < 0) {
    std::string s;
    RETURN_IF_ERROR(ReadProcFile(".", "stat", &s));
    ASSIGN_OR_RETURN(int64_t btime, lp::ParseBootTime(s));
    boot_time_ms_ = btime * 1000;
  }
  int dfd = ::openat(proc_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoError(errno, "listing " + proc_root_);
  DIR* dir = ::fdopendir(dfd);
  if (!dir) {
    ::close(dfd);
    return ErrnoError(errno, "listing " + proc_root_);
  }
  std::vector<std::string> pids;
  while (dirent* de = ::readdir(dir)) {
    if (de->d_name[0] >= '1' && de->d_name[0] <= '9' && ParseInt64(de->d_name)) pids.emplace_back(de->d_name);
  }
  ::closedir(dir);

  const ExeHasher::Counters hasher_before = hasher_->counters();
  int64_t reused_hashes = 0;
  const int64_t now_mono = MonotonicMs();
  std::unordered_map<InstanceKey, Instance, InstanceKeyHash> next;
  next.reserve(pids.size());
  std::string& buf = buf_;
  out->reserve(out->size() + pids.size());
  for (const std::string& pid_dir : pids) {
    Status s = ReadProcFile(pid_dir, "stat", &buf);
    if (!s.ok()) {
      if (s.code() != StatusCode::kNotFound) errors->Add(s.message());
      continue;  // vanished between listing and reading: not an error
    }
    auto stat = lp::ParseStat(buf);
    if (!stat.ok()) {
      errors->Add(stat.status().message());
      continue;
    }
    models::ProcessRecord p;
    ScanFields sf;
    p.pid = stat->pid;
    p.ppid = stat->ppid;
    p.name = stat->comm;
    p.status = lp::StateName(stat->state);
    p.start_time_ms = boot_time_ms_ + static_cast<int64_t>(stat->starttime_ticks * 1000 /
                                                           static_cast<uint64_t>(ticks_per_sec_));
    p.memory_bytes = stat->rss_pages * page_size_;
    sf.threads = stat->num_threads;
    sf.tty_nr = stat->tty_nr;
    const bool kernel_thread = (stat->flags & kPfKthread) != 0;
    const bool dead = stat->state == 'Z' || stat->state == 'X' || stat->state == 'x';

    const InstanceKey key{stat->pid, stat->starttime_ticks};
    auto prev_it = instances_.find(key);
    Instance* prev = prev_it == instances_.end() ? nullptr : &prev_it->second;

    uint64_t ticks = stat->utime_ticks + stat->stime_ticks;
    if (prev && now_mono > prev->cpu_mono_ms && ticks >= prev->cpu_ticks) {
      double secs = static_cast<double>(now_mono - prev->cpu_mono_ms) / 1000.0;
      p.cpu_percent =
          static_cast<double>(ticks - prev->cpu_ticks) / static_cast<double>(ticks_per_sec_) / secs * 100.0;
    } else {
      p.cpu_percent = 0.0;
    }

    s = ReadProcFile(pid_dir, "status", &buf);
    if (s.ok()) {
      auto st = lp::ParseStatus(buf);
      if (st.ok()) {
        p.user_id = st->ruid;
        if (st->ruid) p.user_name = UserName(*st->ruid);
        sf.have_status = true;
        sf.ruid = st->ruid.value_or(-1);
        sf.euid = st->euid.value_or(-1);
        sf.rgid = st->rgid.value_or(-1);
        sf.egid = st->egid.value_or(-1);
      } else {
        sf.errors.emplace_back("status", st.status().message());
        errors->Add(st.status().message());
      }
    } else if (s.code() == StatusCode::kNotFound) {
      continue;
    } else {
      sf.errors.emplace_back("status", s.message());
      errors->Add(s.message());
    }

    s = ReadProcFile(pid_dir, "cmdline", &buf);
    if (s.ok()) {
      p.command_line = lp::ParseCmdline(buf);
    } else if (s.code() != StatusCode::kNotFound) {
      sf.errors.emplace_back("cmdline", s.message());
      errors->Add(s.message());
    }

    std::optional<std::string> exe_link;
    Status exe_status;
    if (!kernel_thread) {
      auto link = ReadLink(pid_dir, "exe", "exe");
      if (link.ok()) {
        exe_link = std::move(*link);
        p.exe_path = exe_link;
      } else if (link.status().code() != StatusCode::kNotFound) {
        // EACCES without privileges; ENOENT is a zombie or a vanished process.
        exe_status = link.status();
        sf.errors.emplace_back("exe", exe_status.message());
        errors->Add(exe_status.message());
      }
    }

    Instance inst;
    // A process that became a zombie has lost its exe link: still the same instance.
    const bool reuse = prev && prev->comm == stat->comm && (prev->exe_link == exe_link || dead);
    if (reuse) {
      inst = std::move(*prev);
      if (inst.exe_hash) ++reused_hashes;
      if (!(sf == inst.scan_fields)) {
        json pd = json::parse(inst.platform_data, nullptr, /*allow_exceptions=*/false);
        if (!pd.is_object()) pd = json::object();
        ApplyScanFields(sf, &pd);
        inst.platform_data = Dump(pd);
        inst.scan_fields = std::move(sf);
      }
    } else {
      // First sight of this instance: the once-per-instance reads.
      inst.comm = stat->comm;
      inst.exe_link = exe_link;
      json pd = json::object();
      json errs = json::object();
      auto fail = [&](const char* field, const Status& st) {
        if (st.code() == StatusCode::kNotFound) return;  // exited meanwhile
        errs[field] = st.message();
        errors->Add(st.message());
      };
      if (kernel_thread) {
        pd["kernel_thread"] = true;
      } else if (!dead) {
        if (exe_link) {
          auto exe = lp::ClassifyExe(*exe_link);
          if (exe.deleted) pd["exe_deleted"] = true;
          if (exe.memfd) pd["exe_memfd"] = true;
        }

        if (Status cs = ReadProcFile(pid_dir, "cgroup", &buf); cs.ok()) {
          if (auto cg = lp::ParseCgroup(buf); cg.ok()) {
            pd["cgroup"] = *cg;
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
          pd["hash_skipped"] = kHashSkipPermissionDenied;
        } else {
          if (auto cwd = ReadLink(pid_dir, "cwd", "cwd"); cwd.ok()) {
            pd["cwd"] = *cwd;
          } else {
            fail("cwd", cwd.status());
          }

          json ns = json::object();
          for (const char* type : {"pid", "mnt", "net"}) {
            std::string field = std::string("ns.") + type;
            auto link = ReadLink(pid_dir, (std::string("ns/") + type).c_str(), "ns/" + std::string(type));
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
          if (!ns.empty()) pd["ns"] = std::move(ns);

          json fds = json::object();
          for (const char* fd : {"0", "1", "2"}) {
            auto link = ReadLink(pid_dir, (std::string("fd/") + fd).c_str(), std::string("fd/") + fd);
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
          if (!fds.empty()) pd["fds"] = std::move(fds);

          // Only names are looked at: LoaderEnvNames never copies a value out.
          if (Status es = ReadProcFile(pid_dir, "environ", &buf); es.ok()) {
            pd["loader_env"] = lp::LoaderEnvNames(buf);
          } else {
            fail("environ", es);
          }
          buf.clear();

          if (exe_link) {
            if (!hash_executables_) {
              pd["hash_skipped"] = kHashSkipDisabled;
            } else {
              std::string rel = pid_dir + "/exe";
              ExeHasher::Outcome h = hasher_->Hash(proc_fd_, rel.c_str());
              if (h.sha256) {
                inst.exe_hash = std::move(h.sha256);
              } else if (h.skipped != kHashSkipGone) {
                pd["hash_skipped"] = h.skipped;
                if (h.skipped == kHashSkipPermissionDenied || h.skipped == kHashSkipIoError) {
                  std::string reason = "exe hash: " + h.detail;
                  errs["exe_hash"] = reason;
                  errors->Add(reason);
                }
              }
            }
          } else if (!exe_status.ok()) {
            pd["hash_skipped"] = kHashSkipIoError;
          }
        }
      }
      if (!errs.empty()) pd["errors"] = std::move(errs);
      ApplyScanFields(sf, &pd);
      inst.platform_data = Dump(pd);
      inst.scan_fields = std::move(sf);
    }
    inst.cpu_ticks = ticks;
    inst.cpu_mono_ms = now_mono;
    p.exe_hash = inst.exe_hash;
    p.platform_data = inst.platform_data;
    out->push_back(std::move(p));
    next[key] = std::move(inst);
  }
  instances_ = std::move(next);

  const ExeHasher::Counters& after = hasher_->counters();
  last_hash_counters_.hits = after.hits - hasher_before.hits + reused_hashes;
  last_hash_counters_.misses = after.misses - hasher_before.misses;
  return Status::Ok();
}

}  // namespace sentinel::procmond
