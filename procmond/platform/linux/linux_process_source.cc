#include "procmond/platform/linux/linux_process_source.h"

#include <dirent.h>
#include <fcntl.h>
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

LinuxProcessSource::LinuxProcessSource(std::string proc_root)
    : proc_root_(std::move(proc_root)), ticks_per_sec_(sysconf(_SC_CLK_TCK)), page_size_(sysconf(_SC_PAGESIZE)) {}

LinuxProcessSource::~LinuxProcessSource() {
  if (proc_fd_ >= 0) ::close(proc_fd_);
}

Status LinuxProcessSource::ReadProcFile(const std::string& pid_dir, const char* file, std::string* out) {
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

  const int64_t now_mono = MonotonicMs();
  std::map<std::pair<int64_t, uint64_t>, std::pair<uint64_t, int64_t>> cpu_next;
  std::string buf;
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
    nlohmann::json pd = nlohmann::json::object();
    nlohmann::json field_errors = nlohmann::json::object();
    p.pid = stat->pid;
    p.ppid = stat->ppid;
    p.name = stat->comm;
    p.status = lp::StateName(stat->state);
    p.start_time_ms = boot_time_ms_ + static_cast<int64_t>(stat->starttime_ticks * 1000 /
                                                          static_cast<uint64_t>(ticks_per_sec_));
    p.memory_bytes = stat->rss_pages * page_size_;
    pd["threads"] = stat->num_threads;
    const bool kernel_thread = (stat->flags & 0x00200000) != 0;  // PF_KTHREAD
    if (kernel_thread) pd["kernel_thread"] = true;

    uint64_t ticks = stat->utime_ticks + stat->stime_ticks;
    auto key = std::make_pair(stat->pid, stat->starttime_ticks);
    auto prev = cpu_prev_.find(key);
    if (prev != cpu_prev_.end() && now_mono > prev->second.second && ticks >= prev->second.first) {
      double secs = static_cast<double>(now_mono - prev->second.second) / 1000.0;
      p.cpu_percent = static_cast<double>(ticks - prev->second.first) / static_cast<double>(ticks_per_sec_) / secs * 100.0;
    } else {
      p.cpu_percent = 0.0;
    }
    cpu_next[key] = {ticks, now_mono};

    s = ReadProcFile(pid_dir, "status", &buf);
    if (s.ok()) {
      auto st = lp::ParseStatus(buf);
      if (st.ok()) {
        p.user_id = st->ruid;
        if (st->ruid) p.user_name = UserName(*st->ruid);
        pd["uid"] = {{"real", st->ruid.value_or(-1)}, {"effective", st->euid.value_or(-1)}};
        pd["gid"] = {{"real", st->rgid.value_or(-1)}, {"effective", st->egid.value_or(-1)}};
      } else {
        field_errors["status"] = st.status().message();
        errors->Add(st.status().message());
      }
    } else if (s.code() == StatusCode::kNotFound) {
      continue;
    } else {
      field_errors["status"] = s.message();
      errors->Add(s.message());
    }

    s = ReadProcFile(pid_dir, "cmdline", &buf);
    if (s.ok()) {
      p.command_line = lp::ParseCmdline(buf);
    } else if (s.code() != StatusCode::kNotFound) {
      field_errors["cmdline"] = s.message();
      errors->Add(s.message());
    }

    if (!kernel_thread) {
      char link[4096];
      std::string rel = pid_dir + "/exe";
      ssize_t n = ::readlinkat(proc_fd_, rel.c_str(), link, sizeof link - 1);
      if (n >= 0) {
        auto exe = lp::ClassifyExe(std::string_view(link, static_cast<size_t>(n)));
        p.exe_path = exe.path;
        if (exe.deleted) pd["exe_deleted"] = true;
        if (exe.memfd) pd["exe_memfd"] = true;
      } else if (errno != ENOENT) {
        // EACCES without privileges; ENOENT is a zombie or a vanished process.
        std::string reason = ErrnoError(errno, "exe").message();
        field_errors["exe"] = reason;
        errors->Add(reason);
      }
    }
    if (!field_errors.empty()) pd["errors"] = field_errors;
    p.platform_data = pd.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out->push_back(std::move(p));
  }
  cpu_prev_ = std::move(cpu_next);
  return Status::Ok();
}

}  // namespace sentinel::procmond
