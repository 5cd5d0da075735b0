#include "tests/integration/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

extern char** environ;

namespace sentinel::itest {
namespace {

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

}  // namespace

std::string ProcmondBin() {
  return std::string(SENTINEL_BINARY_DIR) + "/procmond/procmond";
}
std::string CliBin() {
  return std::string(SENTINEL_BINARY_DIR) + "/sentinelcli/sentinelcli";
}
std::string AgentBin() {
  return std::string(SENTINEL_BINARY_DIR) + "/sentinelagent/sentinelagent";
}
std::string RssProbeBin() {
  return std::string(SENTINEL_BINARY_DIR) + "/tests/integration/rss_probe";
}

std::vector<std::string> IsolatedEnv(const std::string& root, const std::vector<std::string>& extra) {
  std::vector<std::string> edits;
  for (char** e = environ; *e; ++e) {
    std::string s(*e);
    if (s.rfind("SENTINELD_", 0) == 0) edits.push_back(s.substr(0, s.find('=')));
  }
  edits.push_back("NO_COLOR");
  edits.push_back("COLUMNS");
  edits.push_back("HOME=" + root + "/home");
  edits.push_back("XDG_CONFIG_HOME=" + root + "/home/.config");
  // Control sockets in the sandbox, and no HTTP endpoint unless a test asks
  // for one: never the host's /run/sentineld or port 9464.
  edits.push_back("SENTINELD_IPC__SOCKET_DIR=" + root + "/run");
  edits.push_back("SENTINELD_TELEMETRY__HTTP_LISTEN=");
  edits.insert(edits.end(), extra.begin(), extra.end());
  return edits;
}

std::optional<double> MetricSample(const std::string& metrics, const std::string& prefix) {
  for (const auto& line : SplitLines(metrics)) {
    if (line.rfind(prefix, 0) == 0 && line.size() > prefix.size() &&
        (line[prefix.size()] == ' ' || line[prefix.size()] == '{')) {
      try {
        return std::stod(line.substr(line.rfind(' ') + 1));
      } catch (...) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

bool MakeServiceDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0750) != 0) return false;
  if (::geteuid() != 0) return true;
  const passwd* pw = ::getpwnam(kServiceUser);
  return pw != nullptr && ::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) == 0;
}

Sandbox::Sandbox() {
  // HOME exists but holds no configuration: the user layer is looked up and
  // found missing, as on a fresh account.
  ::mkdir((path() + "/home").c_str(), 0700);
  // As root, the daemons drop to kServiceUser: the sandbox is its data
  // directory, as /var/lib/sentineld belongs to sentineld on an install.
  if (::geteuid() == 0) {
    if (const passwd* pw = ::getpwnam(kServiceUser); pw != nullptr) {
      for (const std::string& dir : {path(), path() + "/home"}) {
        if (::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0)
          ADD_FAILURE() << "chown " << dir << " to " << kServiceUser << ": " << std::strerror(errno);
      }
    } else {
      ADD_FAILURE() << "no user " << kServiceUser << " on this host for the daemons to drop to";
    }
  }
}

std::vector<std::string> Sandbox::ProcmondEnv(const std::vector<std::string>& extra) const {
  // procmond and the agent write the audit ledger: never the host's
  // default /var/lib/sentineld/audit.db (a test's own setting, in `extra`, wins).
  std::vector<std::string> env{"SENTINELD_DATABASE__AUDIT_PATH=" + File("audit.db")};
  if (::geteuid() == 0) env.push_back(std::string("SENTINELD_PRIVILEGES__USER=") + kServiceUser);
  env.insert(env.end(), extra.begin(), extra.end());
  return Env(env);
}

RunResult Sandbox::Procmond(const std::vector<std::string>& args, const std::vector<std::string>& env) const {
  std::vector<std::string> argv{ProcmondBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::Run(argv, ProcmondEnv(env));
}

RunResult Sandbox::Cli(const std::vector<std::string>& args, const std::vector<std::string>& env) const {
  std::vector<std::string> argv{CliBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::Run(argv, Env(env));
}

RunResult Sandbox::Agent(const std::vector<std::string>& args, const std::vector<std::string>& env) const {
  std::vector<std::string> argv{AgentBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::Run(argv, ProcmondEnv(env));
}

RunResult Sandbox::CliMeasured(const std::vector<std::string>& args,
                               const std::vector<std::string>& env) const {
  const std::string result_file = File("peak_rss_kib");
  ::unlink(result_file.c_str());
  std::vector<std::string> argv{RssProbeBin(), result_file, CliBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = testing::Run(argv, Env(env));
  const std::string text = testing::ReadFile(result_file);
  r.peak_rss_kib = text.empty() ? -1 : std::stol(text);
  ::unlink(result_file.c_str());
  return r;
}

std::string Sandbox::Database() {
  if (db_.empty()) {
    std::string db = File("events.db");
    RunResult r = Procmond({"--once", "--database", db});
    EXPECT_EQ(r.exit_code, 0) << "procmond --once failed:\n" << r.err;
    EXPECT_TRUE(testing::FileExists(db));
    db_ = db;
  }
  return db_;
}

DbSnapshot SnapshotDb(const std::string& path) {
  DbSnapshot s;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::string p = path + suffix;
    if (testing::FileExists(p)) {
      s.files[suffix] = testing::ReadFile(p);
    } else {
      s.files[suffix] = std::nullopt;
    }
  }
  return s;
}

std::string Describe(const DbSnapshot& s) {
  std::string out;
  for (const auto& [suffix, content] : s.files) {
    out +=
        "  [main" + suffix + "] " + (content ? std::to_string(content->size()) + " bytes" : "absent") + "\n";
  }
  return out;
}

void PrintTo(const DbSnapshot& s, std::ostream* os) {
  *os << "\n" << Describe(s);
}

std::set<std::string> ListDir(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.insert(n);
  }
  ::closedir(d);
  return names;
}

Child::Child(const std::vector<std::string>& argv, const std::vector<std::string>& env_edits,
             const std::string& stdout_file, const std::string& stderr_file, bool new_group) {
  std::vector<std::string> args = argv;
  std::vector<std::string> env = testing::EditedEnvironment(env_edits);
  std::vector<char*> argp = Pointers(args), envp = Pointers(env);
  auto open_out = [](const std::string& f) {
    return ::open(f.empty() ? "/dev/null" : f.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  };
  int out = open_out(stdout_file), err = open_out(stderr_file);
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || err < 0 || in < 0) {
    ADD_FAILURE() << "Child: cannot open output files: " << std::strerror(errno);
    return;
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    if (new_group) ::setpgid(0, 0);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(argp[0], argp.data(), envp.data());
    _exit(127);
  }
  ::close(in);
  ::close(out);
  ::close(err);
  if (pid_ < 0) ADD_FAILURE() << "fork: " << std::strerror(errno);
  // Close the race between fork and the child's own setpgid.
  if (pid_ > 0 && new_group) ::setpgid(pid_, pid_);
}

Child::~Child() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

bool Child::Running() {
  if (pid_ <= 0 || exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeStatus(status);
    return false;
  }
  return true;
}

void Child::Signal(int sig) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> Child::Wait(std::chrono::milliseconds timeout) {
  WaitFor([&] { return !Running(); }, timeout);
  return exit_code_;
}

RunResult RunOnPty(const std::vector<std::string>& argv, const std::vector<std::string>& env_edits) {
  RunResult r;
  std::vector<std::string> args = argv;
  std::vector<std::string> env = testing::EditedEnvironment(env_edits);
  std::vector<char*> argp = Pointers(args), envp = Pointers(env);
  int master = -1, slave = -1;
  winsize ws{};
  ws.ws_col = 120;
  ws.ws_row = 40;
  if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) {
    ADD_FAILURE() << "openpty: " << std::strerror(errno);
    return r;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::close(master);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(slave, 1);
    ::dup2(slave, 2);
    ::execve(argp[0], argp.data(), envp.data());
    _exit(127);
  }
  ::close(slave);
  char buf[4096];
  while (true) {
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n > 0) {
      r.out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EIO: the child closed its side
  }
  ::close(master);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = DecodeStatus(status);
  return r;
}

RunResult RunWithStderrOnPty(const std::vector<std::string>& argv,
                             const std::vector<std::string>& env_edits) {
  RunResult r;
  std::vector<std::string> args = argv;
  std::vector<std::string> env = testing::EditedEnvironment(env_edits);
  std::vector<char*> argp = Pointers(args), envp = Pointers(env);
  int master = -1, slave = -1, out[2] = {-1, -1};
  winsize ws{};
  ws.ws_col = 120;
  ws.ws_row = 40;
  if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "openpty/pipe: " << std::strerror(errno);
    return r;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out[1], 1);
    ::dup2(slave, 2);
    ::execve(argp[0], argp.data(), envp.data());
    _exit(127);
  }
  ::close(slave);
  ::close(out[1]);
  // Both until their writer is gone: EOF on the pipe, EIO on the terminal.
  pollfd fds[2] = {{master, POLLIN, 0}, {out[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.err, &r.out};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0 && ::poll(fds, 2, -1) >= 0) {
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  ::close(master);
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = DecodeStatus(status);
  return r;
}

namespace {
std::optional<int64_t> QueryIntImpl(const std::string& db, const std::string& sql, bool report) {
  sqlite3* h = nullptr;
  std::optional<int64_t> result;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    if (report) ADD_FAILURE() << db << ": " << sqlite3_errmsg(h);
    sqlite3_close(h);
    return result;
  }
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    if (report) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(h);
  } else {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
      result = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      if (report) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(h);
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return result;
}
}  // namespace

std::optional<int64_t> QueryInt(const std::string& db, const std::string& sql) {
  return QueryIntImpl(db, sql, true);
}

std::optional<int64_t> TryQueryInt(const std::string& db, const std::string& sql) {
  return QueryIntImpl(db, sql, false);
}

void ExecSql(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << db << ": " << sqlite3_errmsg(h);
    sqlite3_close(h);
    return;
  }
  char* err = nullptr;
  if (sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << (err ? err : "?");
  }
  sqlite3_free(err);
  if (sqlite3_close(h) != SQLITE_OK) ADD_FAILURE() << db << ": close failed";
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<std::string> DetectionEnv(const Sandbox& sb, const std::string& db, const std::string& rules_dir,
                                      std::vector<std::string> extra) {
  extra.push_back("SENTINELD_DATABASE__PATH=" + db);
  extra.push_back("SENTINELD_DATABASE__AUDIT_PATH=" + sb.File("audit.db"));
  extra.push_back("SENTINELD_DETECTION__RULES_DIRS=[" + rules_dir + "]");
  extra.push_back("SENTINELD_TELEMETRY__LOG_FORMAT=text");
  return extra;
}

nlohmann::json HealthComponent(const nlohmann::json& report, const std::string& name) {
  if (report.is_object() && report.contains("components")) {
    for (const auto& c : report["components"])
      if (c.value("name", "") == name) return c;
  }
  return nlohmann::json::object();
}

std::optional<ProcInfo> ReadProc(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto open = line.find('(');
  const auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  ProcInfo p;
  p.comm = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));
  rest >> p.state >> p.ppid;
  return p;
}

bool Alive(pid_t pid) {
  auto p = ReadProc(pid);
  return p.has_value() && p->state != 'Z' && p->state != 'X';
}

std::vector<std::pair<pid_t, std::string>> LiveChildren(pid_t parent) {
  std::vector<std::pair<pid_t, std::string>> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    auto p = ReadProc(static_cast<pid_t>(pid));
    if (p && p->ppid == parent && p->state != 'Z') out.emplace_back(static_cast<pid_t>(pid), p->comm);
  }
  ::closedir(d);
  return out;
}

void StopSignal::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

bool StopSignal::stopped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopped_;
}

bool StopSignal::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return stopped_; });
}

DeletedBinary::DeletedBinary(const std::string& path) {
  std::filesystem::copy_file("/bin/sleep", path);
  ::chmod(path.c_str(), 0755);
  child_ = std::make_unique<Child>(std::vector<std::string>{path, "600"}, std::vector<std::string>{});
  // exec has happened once /proc/PID/exe points at the copy.
  EXPECT_TRUE(WaitFor(
      [&] {
        std::error_code ec;
        return std::filesystem::read_symlink("/proc/" + std::to_string(child_->pid()) + "/exe", ec)
                   .string() == path;
      },
      std::chrono::seconds(10)));
  ::unlink(path.c_str());
}

}  // namespace sentinel::itest
