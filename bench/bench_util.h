// Helpers shared by the benchmark programs in bench/: elapsed time and CPU
// time in milliseconds, medians and percentiles of the runs, and (for the
// benchmarks that watch real daemons as root) starting a child in its own
// process group, the CPU a process has used, and a private auditd logging
// execve. Header-only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace sentinel::bench {

// A steady_clock interval in milliseconds.
inline double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The median: for an even count the mean of the two middle values; 0 when
// empty.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The upper median: for an even count the greater of the two middle values
// (no averaging); 0 when empty. What delivery_bench has always reported.
inline double UpperMedian(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// CPU time (user + system) this process has used so far, in milliseconds.
inline double CpuMs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

// The q-quantile (0..1) by nearest rank; 0 when empty.
inline double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// The whole file (empty when unreadable).
inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Fields 14-17 of /proc/PID/stat (utime, stime, cutime, cstime) in seconds;
// `children` adds the reaped children's times. -1 when the process is gone.
inline double CpuSeconds(pid_t pid, bool children = false) {
  const std::string s = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  const size_t rp = s.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream in(s.substr(rp + 2));
  std::string f;
  unsigned long long t[4] = {};
  for (int i = 3; i <= 17 && in >> f; ++i) {
    if (i >= 14) t[i - 14] = std::stoull(f);
  }
  const unsigned long long ticks = t[0] + t[1] + (children ? t[2] + t[3] : 0);
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// posix_spawn()s argv[0] (a path) with the caller's environment minus every
// SENTINELD_* variable, plus `env_extra`. stdout goes to `out_fd` (-1:
// /dev/null), stderr to the file `err` ("" = /dev/null). With `new_group`
// the child leads its own process group, so StopGroup can end it and
// everything it started.
inline pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env_extra,
                   const std::string& err, bool new_group = true, int out_fd = -1) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (std::string(*e).rfind("SENTINELD_", 0) != 0) env.emplace_back(*e);
  }
  env.insert(env.end(), env_extra.begin(), env_extra.end());
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out_fd >= 0) {
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_addopen(&fa, 2, err.empty() ? "/dev/null" : err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  if (new_group) {
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
  }
  pid_t pid = -1;
  if (posix_spawn(&pid, cargv[0], &fa, &at, cargv.data(), cenv.data()) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return pid;
}

// Ends a child Spawn started with new_group: SIGTERM to it, up to
// `grace_ms` for it to exit, then SIGKILL to its whole process group (only
// the processes it started); reaps it. Returns its wait status (-1 if none).
inline int StopGroup(pid_t pid, int grace_ms = 10000) {
  if (pid <= 0) return -1;
  kill(pid, SIGTERM);
  int status = -1;
  for (int waited = 0; waited < grace_ms; waited += 10) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      kill(-pid, SIGKILL);  // whatever it left behind in its group
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(-pid, SIGKILL);
  waitpid(pid, &status, 0);
  return status;
}

// Polls `file` every 50 ms for `text`, up to `seconds`.
inline bool WaitForText(const std::string& file, const std::string& text, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    if (ReadAll(file).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

inline int Sh(const std::string& cmd) {
  return std::system(cmd.c_str());
}

// Debian's auditd logging every execve, with a private configuration and log
// under a directory of the benchmark's: Start() starts `auditd -n` and adds
// the rule; Stop() (also run by the destructor) removes the rule, reads the
// kernel's `lost` counter, stops the daemon and puts kernel auditing back to
// what it was. It refuses to touch a host where another audit daemon runs.
class AuditdSession {
 public:
  AuditdSession() = default;
  AuditdSession(const AuditdSession&) = delete;
  AuditdSession& operator=(const AuditdSession&) = delete;
  ~AuditdSession() { Stop(); }

  // Empty on success, else why auditd could not be used.
  std::string Start(const std::string& dir) {
    if (access("/sbin/auditd", X_OK) != 0 || access("/sbin/auditctl", X_OK) != 0)
      return "auditd not installed (scripts/install-deps.sh installs it)";
    if (Sh("/sbin/auditctl -s 2>/dev/null | grep -q '^pid 0$'") != 0)
      return "another audit daemon already runs here: not touched";
    std::filesystem::create_directories(dir);
    log_ = dir + "/audit.log";
    WriteConfig(dir);
    // auditd enables kernel auditing; what it was before is put back after.
    was_enabled_ = Sh("/sbin/auditctl -s 2>/dev/null | grep -q '^enabled 1$'") == 0;
    pid_ = Spawn({"/sbin/auditd", "-n", "-c", dir}, {}, dir + "/auditd.err");
    bool up = false;
    for (int i = 0; i < 100 && !up && pid_ > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      up = Sh("/sbin/auditctl -s 2>/dev/null | grep -q '^pid " + std::to_string(pid_) + "$'") == 0;
    }
    if (!up) {
      const std::string why = "auditd could not run here: " + ReadAll(dir + "/auditd.err").substr(0, 200);
      Stop();
      return why;
    }
    Sh("/sbin/auditctl -b 65536 >/dev/null 2>&1; /sbin/auditctl --backlog_wait_time 0 >/dev/null 2>&1");
    if (Sh("/sbin/auditctl -a " + std::string(kRule) + " >/dev/null") != 0) {
      Stop();
      return "auditctl could not add the execve rule";
    }
    rule_added_ = true;
    return "";
  }

  // Waits until the log stops growing (checked every 500 ms, up to 60 s).
  void WaitQuiet() const {
    size_t last = 0;
    for (int i = 0; i < 120; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      std::error_code ec;
      const size_t now = std::filesystem::exists(log_, ec) ? std::filesystem::file_size(log_, ec) : 0;
      if (now == last) return;
      last = now;
    }
  }

  void Stop() {
    if (rule_added_) {
      Sh("/sbin/auditctl -d " + std::string(kRule) + " >/dev/null");
      rule_added_ = false;
      lost_ = ReadLost();
    }
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      if (!was_enabled_) Sh("/sbin/auditctl -e 0 >/dev/null");
    }
  }

  pid_t pid() const { return pid_; }
  const std::string& log() const { return log_; }
  int64_t lost() const { return lost_; }

  // The EXECVE records of the log whose first argument starts with
  // `prefix`: argument -> the record's line.
  std::map<std::string, std::string> ExecveByFirstArg(const std::string& prefix) const {
    std::map<std::string, std::string> out;
    std::ifstream in(log_);
    std::string line;
    const std::string key = " a1=\"" + prefix;
    while (std::getline(in, line)) {
      if (line.rfind("type=EXECVE", 0) != 0) continue;
      const size_t a1 = line.find(key);
      if (a1 == std::string::npos) continue;
      const size_t q = line.find('"', a1 + 5);
      out[line.substr(a1 + 5, q - a1 - 5)] = line;
    }
    return out;
  }

 private:
  static constexpr const char* kRule = "always,exit -F arch=b64 -S execve -k sentinel_bench";

  void WriteConfig(const std::string& dir) const {
    std::ofstream(dir + "/auditd.conf")
        << "log_file = " << log_
        << "\nlog_format = RAW\nflush = INCREMENTAL_ASYNC\nfreq = 50\nmax_log_file = 1024\n"
           "max_log_file_action = IGNORE\nspace_left = 75\nspace_left_action = IGNORE\nadmin_space_left = "
           "50\n"
           "admin_space_left_action = IGNORE\ndisk_full_action = IGNORE\ndisk_error_action = IGNORE\n"
           "write_logs = yes\nq_depth = 8000\n";
    chmod((dir + "/auditd.conf").c_str(), 0640);
  }

  static int64_t ReadLost() {
    int64_t lost = -1;
    if (FILE* p = popen("/sbin/auditctl -s | sed -n 's/^lost //p'", "r")) {
      char b[64] = {};
      if (fgets(b, sizeof(b), p)) lost = std::atoll(b);
      pclose(p);
    }
    return lost;
  }

  pid_t pid_ = -1;
  std::string log_;
  bool was_enabled_ = true;
  bool rule_added_ = false;
  int64_t lost_ = -1;
};

}  // namespace sentinel::bench
