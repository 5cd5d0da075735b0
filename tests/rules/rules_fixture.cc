#include "tests/rules/rules_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/detection/rule.h"
#include "sentinel/storage/sqlite.h"
#include "sentinel/testing/subprocess.h"
#include "sentinel/testing/wait.h"

extern char** environ;

namespace sentinel::rules_test {
namespace {

std::vector<std::string> ChildEnvironment(std::vector<std::string> edits) {
  // A loader variable of the test runner must not leak into every process a
  // test starts (the loader rule's negative tests rely on that).
  edits.insert(edits.begin(), {"LD_PRELOAD", "LD_AUDIT"});
  return sentinel::testing::EditedEnvironment(edits);
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

// In the child after fork: report errno on the status pipe and exit.
[[noreturn]] void ChildFail(int status_fd, int err) {
  ssize_t ignored = ::write(status_fd, &err, sizeof err);
  (void)ignored;
  _exit(127);
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

std::string RulesDir() {
  return std::string(SENTINEL_SOURCE_DIR) + "/rules";
}
std::string RuleFile(const std::string& id) {
  return RulesDir() + "/" + id + ".yaml";
}
std::string DocsRulesFile() {
  return std::string(SENTINEL_SOURCE_DIR) + "/docs/rules.md";
}
std::string ProcmondBin() {
  return std::string(SENTINEL_BINARY_DIR) + "/procmond/procmond";
}
std::string ProbeBin() {
  return RULE_PROBE_BIN;
}

std::string ProgramInterpreter() {
  for (const char* p :
       {"/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-x86-64.so.2"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

std::string PlainDirectory() {
  return std::filesystem::path(ProcmondBin()).parent_path().string();
}

std::string SystemBinary(const std::string& name) {
  for (const char* dir : {"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"}) {
    std::string p = dir + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------
// TestProcess

std::unique_ptr<TestProcess> TestProcess::Start(const std::string& path, const std::vector<std::string>& argv,
                                                const SpawnOptions& options) {
  std::vector<std::string> args = argv;
  std::vector<std::string> env = ChildEnvironment(options.env);
  std::vector<char*> argp = Pointers(args), envp = Pointers(env);
  std::string image;
  if (options.from_memfd) {
    image = ReadSmallFile(path);
    if (image.empty()) {
      ADD_FAILURE() << "cannot read " << path;
      return nullptr;
    }
  }
  // The child reports a failed set-up or exec on this pipe; EOF (the
  // close-on-exec write end vanishing) means the exec succeeded.
  int status[2];
  if (::pipe2(status, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return nullptr;
  }
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) {
    // Some sandboxes make /dev/null root-only: an empty pipe reads as EOF
    // just the same (and writes to it fail harmlessly).
    int p[2];
    if (::pipe2(p, O_CLOEXEC) == 0) {
      ::close(p[1]);
      null_fd = p[0];
    }
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return nullptr;
  }
  if (pid == 0) {
    ::close(status[0]);
    // A session of its own: a process group to kill, and no controlling
    // terminal inherited from whoever runs the tests.
    if (::setsid() < 0) ChildFail(status[1], errno);
    if (options.controlling_tty >= 0 && ::ioctl(options.controlling_tty, TIOCSCTTY, 0) != 0) {
      ChildFail(status[1], errno);
    }
    const int fds[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
    // dup2 into 0..2 after duplicating the sources above 2, so that a
    // source that already is 0, 1 or 2 is not clobbered on the way.
    int src[3];
    for (int i = 0; i < 3; ++i) {
      src[i] = ::fcntl(fds[i] >= 0 ? fds[i] : null_fd, F_DUPFD_CLOEXEC, 10);
      if (src[i] < 0) ChildFail(status[1], errno);
    }
    for (int i = 0; i < 3; ++i) {
      if (::dup2(src[i], i) < 0) ChildFail(status[1], errno);
    }
    if (options.uid) {
      const gid_t gid = static_cast<gid_t>(*options.uid);
      if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(*options.uid) != 0) {
        ChildFail(status[1], errno);
      }
    }
    if (options.from_memfd) {
      const int mfd = ::memfd_create("payload", 0);
      if (mfd < 0) ChildFail(status[1], errno);
      size_t off = 0;
      while (off < image.size()) {
        ssize_t n = ::write(mfd, image.data() + off, image.size() - off);
        if (n <= 0) ChildFail(status[1], errno);
        off += static_cast<size_t>(n);
      }
      ::fexecve(mfd, argp.data(), envp.data());
      ChildFail(status[1], errno);
    }
    ::execve(path.c_str(), argp.data(), envp.data());
    ChildFail(status[1], errno);
  }
  ::close(status[1]);
  if (null_fd >= 0) ::close(null_fd);
  auto proc = std::unique_ptr<TestProcess>(new TestProcess(pid));
  int err = 0;
  ssize_t n;
  do {
    n = ::read(status[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  ::close(status[0]);
  if (n > 0) {
    ADD_FAILURE() << "starting " << path << " failed: " << std::strerror(err);
    return nullptr;  // the destructor reaps the child
  }
  return proc;
}

std::unique_ptr<TestProcess> TestProcess::Fork(const std::function<void()>& body) {
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return nullptr;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    body();
    _exit(0);
  }
  ::setpgid(pid, pid);
  return std::unique_ptr<TestProcess>(new TestProcess(pid));
}

TestProcess::~TestProcess() {
  if (pid_ <= 0) return;
  // The whole group: shells started by a test have children of their own.
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
}

// ---------------------------------------------------------------------------
// /proc readers

std::string ExeLink(pid_t pid) {
  char buf[PATH_MAX + 1];
  const std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::string Comm(pid_t pid) {
  std::string c = ReadSmallFile("/proc/" + std::to_string(pid) + "/comm");
  if (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

std::optional<uid_t> EffectiveUid(pid_t pid) {
  std::istringstream in(ReadSmallFile("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0) {
      std::istringstream f(line.substr(4));
      long ruid = -1, euid = -1;
      f >> ruid >> euid;
      if (euid >= 0) return static_cast<uid_t>(euid);
    }
  }
  return std::nullopt;
}

bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  return testing::WaitFor(pred, timeout, 20ms);
}

std::optional<pid_t> WaitForChild(pid_t parent, const std::function<bool(const std::string&)>& pred,
                                  std::chrono::milliseconds timeout) {
  std::optional<pid_t> found;
  WaitUntil(
      [&] {
        DIR* d = ::opendir("/proc");
        if (!d) return false;
        while (dirent* e = ::readdir(d)) {
          if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
          const std::string stat = ReadSmallFile(std::string("/proc/") + e->d_name + "/stat");
          const auto open = stat.find('('), close = stat.rfind(')');
          if (open == std::string::npos || close == std::string::npos || close < open) continue;
          std::istringstream rest(stat.substr(close + 1));
          std::string state;
          long ppid = 0;
          rest >> state >> ppid;
          if (ppid != parent) continue;
          if (pred(stat.substr(open + 1, close - open - 1))) {
            found = static_cast<pid_t>(std::atol(e->d_name));
            break;
          }
        }
        ::closedir(d);
        return found.has_value();
      },
      timeout);
  return found;
}

// ---------------------------------------------------------------------------
// LoopbackConnection

LoopbackConnection::LoopbackConnection() {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener_, 8) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "loopback listener: " << std::strerror(errno);
    return;
  }
  port_ = ntohs(addr.sin_port);
  client_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client_ < 0 || ::connect(client_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ADD_FAILURE() << "loopback connect: " << std::strerror(errno);
    if (client_ >= 0) ::close(client_);
    client_ = -1;
    return;
  }
  accepted_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
}

LoopbackConnection::~LoopbackConnection() {
  for (int fd : {accepted_, client_, listener_}) {
    if (fd >= 0) ::close(fd);
  }
}

// ---------------------------------------------------------------------------
// ProcmondDaemon

ProcmondDaemon::ProcmondDaemon(const std::string& dir, const std::string& db,
                               const std::vector<std::string>& settings, const std::string& log_name)
    : err_(dir + "/" + log_name) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (std::string(*e).rfind("SENTINELD_", 0) != 0) env.emplace_back(*e);
  }
  for (const std::string& s : std::vector<std::string>{
           "HOME=" + dir, "XDG_CONFIG_HOME=" + dir + "/.config", "SENTINELD_DATABASE__PATH=" + db,
           "SENTINELD_DATABASE__AUDIT_PATH=" + db + ".audit", "SENTINELD_IPC__SOCKET_DIR=" + dir + "/ipc",
           "SENTINELD_TELEMETRY__LOG_FORMAT=text"}) {
    env.push_back(s);
  }
  // root is refused as privileges.user; procmond keeps what it needs.
  if (::geteuid() == 0) env.emplace_back("SENTINELD_PRIVILEGES__USER=nobody");
  env.insert(env.end(), settings.begin(), settings.end());
  std::vector<char*> cenv = Pointers(env);
  std::string bin = ProcmondBin();
  char* argv[] = {bin.data(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv, cenv.data()) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&fa);
}

void ProcmondDaemon::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string ProcmondDaemon::Log() const {
  return ReadSmallFile(err_);
}

// ---------------------------------------------------------------------------
// Files

void CopyExecutable(const std::string& src, const std::string& dst, unsigned mode) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(dst).parent_path(), ec);
  std::filesystem::copy_file(src, dst, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) {
    ADD_FAILURE() << "copy " << src << " -> " << dst << ": " << ec.message();
    return;
  }
  if (::chmod(dst.c_str(), mode) != 0) ADD_FAILURE() << "chmod " << dst << ": " << std::strerror(errno);
}

ScratchDir::ScratchDir(const std::string& parent) {
  std::string tmpl = parent + "/sentinel-rules-XXXXXX";
  if (::mkdtemp(tmpl.data())) path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::unique_ptr<TestProcess> StartMemfdReexec(const std::string& bin, const std::string& memfd_name,
                                              bool sealed) {
  std::vector<std::string> env = {"RULE_PROBE_MEMFD_REEXEC=" + memfd_name};
  if (sealed) env.push_back("RULE_PROBE_MEMFD_SEALS=1");
  auto p = TestProcess::Start(bin, {"runc", "--root", "/run/runc", "init"}, {.env = env});
  const std::string prefix = "/memfd:" + memfd_name;
  if (p && !WaitUntil([&] { return ExeLink(p->pid()).rfind(prefix, 0) == 0; })) {
    ADD_FAILURE() << "no re-exec from a memfd: " << ExeLink(p->pid());
    return nullptr;
  }
  return p;
}

std::string InstallRuntimeBinary(const ScratchDir& work, std::string* foreign) {
  if (::mount("none", "/usr/local/sbin", "tmpfs", 0, "mode=0755") != 0) {
    ADD_FAILURE() << "tmpfs on /usr/local/sbin: " << std::strerror(errno);
    return "";
  }
  const std::string runc = "/usr/local/sbin/runc";
  CopyExecutable(ProbeBin(), runc);
  *foreign = work.File("runc");
  CopyExecutable(ProbeBin(), *foreign);
  std::ofstream(*foreign, std::ios::app) << '\n';
  return runc;
}

PrivateMountNamespace::PrivateMountNamespace()
    : original_(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)) {
  if (original_ < 0 || ::unshare(CLONE_NEWNS) != 0 ||
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    error_ = std::string("private mount namespace: ") + std::strerror(errno);
  }
}

PrivateMountNamespace::~PrivateMountNamespace() {
  if (original_ < 0) return;
  // Staying behind in the test's namespace would run every later test there.
  if (::setns(original_, CLONE_NEWNS) != 0) std::abort();
  ::close(original_);
}

// ---------------------------------------------------------------------------
// RuleLiveTest

bool RuleLiveTest::IsRoot() {
  return ::geteuid() == 0;
}

std::string RuleLiveTest::Scan() {
  if (!work_.ok()) {
    ADD_FAILURE() << "no scratch directory under /tmp";
    return "";
  }
  const std::string n = std::to_string(++scans_);
  const std::string db = work_.File("events-" + n + ".db");
  const std::string home = work_.File("home");
  ::mkdir(home.c_str(), 0700);
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string s(*e);
    if (s.rfind("SENTINELD_", 0) == 0) env.push_back(s.substr(0, s.find('=')));
  }
  env.push_back("HOME=" + home);
  env.push_back("XDG_CONFIG_HOME=" + home + "/.config");
  env.push_back("SENTINELD_DATABASE__PATH=" + db);
  env.push_back("SENTINELD_DATABASE__AUDIT_PATH=" + work_.File("audit-" + n + ".db"));
  env.push_back("SENTINELD_COLLECTION__REALTIME_EVENTS=false");
  env.push_back("SENTINELD_TELEMETRY__LOG_LEVEL=warn");
  if (IsRoot()) {
    // There is no `sentineld` account on a test host, and root is refused:
    // procmond drops to nobody (it has written the store by then, from
    // descriptors opened as root, and keeps CAP_SYS_PTRACE and
    // CAP_DAC_READ_SEARCH to read every process).
    env.push_back("SENTINELD_PRIVILEGES__USER=nobody");
  }
  testing::RunResult r = testing::Run({ProcmondBin(), "--once"}, env);
  if (r.exit_code != 0) {
    ADD_FAILURE() << "procmond --once exited " << r.exit_code << ":\n" << r.err;
    return "";
  }
  return db;
}

detection::RuleResult RuleLiveTest::Run(const std::string& id, const std::string& db) {
  detection::RuleResult empty;
  if (db.empty()) return empty;
  auto rule = detection::LoadRuleFile(RuleFile(id), detection::RuleSource::kBuiltin);
  if (!rule.ok()) {
    ADD_FAILURE() << rule.status().ToString();
    return empty;
  }
  auto store = storage::Database::Open(db, storage::OpenMode::kReadOnly);
  if (!store.ok()) {
    ADD_FAILURE() << store.status().ToString();
    return empty;
  }
  detection::RunParams params;
  params.now_ms = NowMs();
  if (Status s = detection::FillScanIds(**store, &params); !s.ok()) {
    ADD_FAILURE() << s.ToString();
    return empty;
  }
  EXPECT_TRUE(params.scan_id.has_value()) << "the store holds no completed scan";
  if (rule->on == detection::RuleTrigger::kExec) return RunExecRule(**store, *rule, params);
  auto result = detection::RunRule(**store, *rule, params, detection::RunLimits{});
  if (!result.ok()) {
    ADD_FAILURE() << id << ": " << result.status().ToString();
    return empty;
  }
  return std::move(*result);
}

// An `on: exec` rule as the agent runs it: over the scan's processes (the
// scan cycle), then over every stored exec event (the real-time batches);
// a process both paths find is one finding, as it is one alert (the dedup
// key of pid and start time).
detection::RuleResult RuleLiveTest::RunExecRule(storage::Database& store, const detection::Rule& rule,
                                                const detection::RunParams& params) {
  detection::RuleResult out;
  if (Status s = detection::PrepareRuleSnapshot(store, params.scan_id); !s.ok()) {
    ADD_FAILURE() << s.ToString();
    return out;
  }
  std::set<std::string> seen;
  auto run = [&](const char* path) {
    auto result = detection::RunRule(store, rule, params, detection::RunLimits{});
    if (!result.ok()) {
      ADD_FAILURE() << rule.id << " (" << path << "): " << result.status().ToString();
      return;
    }
    out.columns = result->columns;
    for (auto& row : result->rows) {
      if (seen.insert(alerting::DedupKey(rule, row)).second) out.rows.push_back(std::move(row));
    }
  };
  run("scan");
  auto max_id = store.QueryInt("SELECT coalesce(max(id), 0) FROM process_events");
  auto loaded = max_id.ok() ? detection::LoadExecBatch(store, 0, max_id->value_or(0)) : max_id.status();
  if (!loaded.ok()) {
    ADD_FAILURE() << loaded.status().ToString();
    return out;
  }
  run("events");
  return out;
}

detection::RuleResult RuleLiveTest::ScanAndRun(const std::string& id) {
  return Run(id, Scan());
}

std::vector<nlohmann::ordered_json> RuleLiveTest::RowsFor(const detection::RuleResult& r, pid_t pid) {
  std::vector<nlohmann::ordered_json> rows;
  for (const auto& row : r.rows) {
    auto it = row.find("pid");
    if (it != row.end() && it->is_number_integer() && it->get<int64_t>() == pid) rows.push_back(row);
  }
  return rows;
}

std::string RuleLiveTest::Describe(const detection::RuleResult& r) {
  std::string out = std::to_string(r.rows.size()) + " row(s)";
  for (const auto& row : r.rows) out += "\n  " + row.dump();
  return out;
}

nlohmann::ordered_json RuleLiveTest::ExpectOneRow(const detection::RuleResult& r, pid_t pid) {
  auto rows = RowsFor(r, pid);
  EXPECT_EQ(rows.size(), 1u) << "rows for pid " << pid << " in " << Describe(r);
  if (rows.size() != 1) return nlohmann::ordered_json::object();
  for (const char* col : {"pid", "name", "exe_path"}) {
    EXPECT_TRUE(rows[0].contains(col)) << "column " << col << " missing from " << rows[0].dump();
  }
  return rows[0];
}

void RuleLiveTest::ExpectNoRows(const detection::RuleResult& r, const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) {
    EXPECT_TRUE(RowsFor(r, pid).empty()) << "benign process " << pid << " reported: " << Describe(r);
  }
}

}  // namespace sentinel::rules_test
