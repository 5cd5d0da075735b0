// The agent's privilege boundary (issue 14, items 7 and 8; docs/decisions.md
// #18): started as root it runs as privileges.user with no capability at all,
// and only the launcher — whose only child is procmond — stays root. Root as
// privileges.user, or capabilities procmond has no use for, are refused as
// configuration errors by every entry point.
//
// Privileged (label `privileged`): the boundary only exists when started as
// root. The configuration refusals run unprivileged too.
#include <dirent.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

// "Key:\tvalue" of /proc/PID/status, without the tab.
std::string Status(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      while (!v.empty() && (v.front() == '\t' || v.front() == ' ')) v.erase(v.begin());
      while (!v.empty() && (v.back() == '\t' || v.back() == ' ')) v.pop_back();
      return v;
    }
  }
  return "";
}

uint64_t Mask(pid_t pid, const std::string& key) {
  const std::string v = Status(pid, key);
  return v.empty() ? ~0ULL : std::stoull(v, nullptr, 16);
}

class AgentPrivilegesTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = sb_.File("events.db"); }
  // The test's settings, then `extra` (later edits win).
  std::vector<std::string> Env(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> env{"SENTINELD_DATABASE__PATH=" + db_,
                                 "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("audit.db"),
                                 "SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]",
                                 "SENTINELD_TELEMETRY__LOG_FORMAT=text",
                                 "SENTINELD_IPC__SOCKET_DIR=" + sb_.File("run"),
                                 "SENTINELD_COLLECTION__INTERVAL_SECS=1",
                                 "SENTINELD_DETECTION__INTERVAL_SECS=1"};
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  }
  std::unique_ptr<Child> StartAgent() {
    return std::make_unique<Child>(std::vector<std::string>{AgentBin()}, sb_.ProcmondEnv(Env()),
                                   sb_.File("agent.out"), sb_.File("agent.err"));
  }
  std::string AgentErr() const { return testing::ReadFile(sb_.File("agent.err")); }

  // The launcher (the agent's one child) and procmond (the launcher's), once both run.
  bool WaitForTree(pid_t agent, pid_t* launcher, pid_t* procmond) {
    return WaitFor(
        [&] {
          auto kids = LiveChildren(agent);
          if (kids.size() != 1 || kids[0].second != "sentinel-launch") return false;
          *launcher = kids[0].first;
          auto grandkids = LiveChildren(*launcher);
          if (grandkids.size() != 1 || grandkids[0].second != "procmond") return false;
          *procmond = grandkids[0].first;
          return true;
        },
        std::chrono::seconds(30));
  }

  Sandbox sb_;
  std::string db_;
};

TEST_F(AgentPrivilegesTest, RootAgentRunsAsServiceUserWithNoCapabilityBesideARootLauncher) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "privileged test: the agent only drops privileges when started as root";
  const passwd* pw = ::getpwnam(kServiceUser);
  ASSERT_NE(pw, nullptr);
  const std::string uid = std::to_string(pw->pw_uid), gid = std::to_string(pw->pw_gid);
  // A process this test owns, which a user rule reports: detection still works.
  Child marker({"/bin/sleep", "600"}, {});
  ::mkdir(sb_.File("rules.d").c_str(), 0755);
  testing::WriteFile(sb_.File("rules.d/marker.yaml"),
                     "id: marker\nname: Marker\nseverity: low\ndedup_keys: [pid]\nquery: |\n"
                     "  SELECT pid, name FROM processes WHERE pid = " +
                         std::to_string(marker.pid()) + "\n");

  auto agent = StartAgent();
  pid_t launcher = -1, procmond = -1;
  ASSERT_TRUE(WaitForTree(agent->pid(), &launcher, &procmond)) << AgentErr();
  ASSERT_TRUE(WaitFor(
      [&] {
        return TryQueryInt(db_, "SELECT count(*) FROM alerts WHERE rule_id = 'marker'").value_or(0) >= 1;
      },
      std::chrono::seconds(30)))
      << "no alert from the user rule\n"
      << AgentErr();

  // The agent: privileges.user, no capability in any set, no way back.
  const pid_t a = agent->pid();
  EXPECT_EQ(Status(a, "Uid"), uid + "\t" + uid + "\t" + uid + "\t" + uid);
  EXPECT_EQ(Status(a, "Gid"), gid + "\t" + gid + "\t" + gid + "\t" + gid);
  EXPECT_EQ(Status(a, "Groups"), gid);
  for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(Mask(a, set), 0u) << set << " of the agent: " << Status(a, set);
  }
  EXPECT_EQ(Status(a, "NoNewPrivs"), "1");

  // The launcher: root, and its only child is procmond.
  EXPECT_EQ(Status(launcher, "Uid"), "0\t0\t0\t0");
  auto kids = LiveChildren(launcher);
  ASSERT_EQ(kids.size(), 1u);
  EXPECT_EQ(kids[0].first, procmond);
  EXPECT_EQ(kids[0].second, "procmond");

  // procmond drops as before.
  EXPECT_EQ(Status(procmond, "Uid"), uid + "\t" + uid + "\t" + uid + "\t" + uid);
  const uint64_t kept = (1ULL << CAP_SYS_PTRACE) | (1ULL << CAP_DAC_READ_SEARCH);
  EXPECT_EQ(Mask(procmond, "CapEff"), kept);
  EXPECT_EQ(Mask(procmond, "CapBnd"), kept);
  EXPECT_EQ(Status(procmond, "NoNewPrivs"), "1");

  // The files the agent made are its user's.
  for (const std::string& f : {sb_.File("sentinelagent.lock"), sb_.File("run/agent.sock")}) {
    struct stat st {};
    ASSERT_EQ(::lstat(f.c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_uid, pw->pw_uid) << f;
  }
  EXPECT_TRUE(Contains(AgentErr(), "sentinelagent: privileges dropped")) << AgentErr();

  // SIGTERM: every process ends, cleanly.
  agent->Signal(SIGTERM);
  auto code = agent->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << AgentErr();
  EXPECT_FALSE(Alive(launcher)) << "the launcher outlived the agent";
  EXPECT_FALSE(Alive(procmond)) << "procmond outlived the agent";
  EXPECT_TRUE(Contains(AgentErr(), "procmond stopped how=exit code 0")) << AgentErr();

  // The drop is in the audit trail.
  auto list = sb_.Cli({"audit", "list", "--limit", "1000"}, Env());
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(Contains(list.out, "privileges_dropped")) << list.out;
}

TEST_F(AgentPrivilegesTest, SigkilledRootAgentTakesLauncherAndProcmondWithIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "privileged test: the launcher exists only when started as root";
  // Become the subreaper of the orphans, to see them end (and reap them).
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  auto agent = StartAgent();
  pid_t launcher = -1, procmond = -1;
  ASSERT_TRUE(WaitForTree(agent->pid(), &launcher, &procmond)) << AgentErr();
  agent->Signal(SIGKILL);
  ASSERT_TRUE(agent->Wait(std::chrono::seconds(10)).has_value());
  const bool gone = WaitFor(
      [&] {
        int status = 0;
        ::waitpid(launcher, &status, WNOHANG);
        ::waitpid(procmond, &status, WNOHANG);
        return !Alive(launcher) && !Alive(procmond);
      },
      std::chrono::seconds(30));
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  if (!gone) {  // our own orphans: never leave them running
    ::kill(procmond, SIGKILL);
    ::kill(launcher, SIGKILL);
  }
  EXPECT_TRUE(gone) << "launcher " << launcher << " or procmond " << procmond << " survived the agent";
}

// The agent makes the directories it needs for its user; what exists is left alone.
TEST_F(AgentPrivilegesTest, RootAgentCreatesItsDirectoriesForItsUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "privileged test: directories are handed over only by root";
  const passwd* pw = ::getpwnam(kServiceUser);
  ASSERT_NE(pw, nullptr);
  const std::string data = sb_.File("var/lib/data");
  auto r = sb_.Agent({"--once", "--no-collector"},
                     Env({"SENTINELD_DATABASE__PATH=" + data + "/events.db",
                          "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("var/ledger") + "/audit.db"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& d : {sb_.File("var"), data, sb_.File("var/ledger")}) {
    struct stat st {};
    ASSERT_EQ(::lstat(d.c_str(), &st), 0) << d;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << d;
    EXPECT_EQ(st.st_uid, pw->pw_uid) << d;
    EXPECT_EQ(st.st_mode & 0777, 0750u) << d;
  }
  struct stat st {};
  ASSERT_EQ(::stat((data + "/events.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, pw->pw_uid);
  // A directory that exists keeps its owner.
  ASSERT_EQ(::stat(sb_.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, pw->pw_uid);
  const std::string rootdir = sb_.File("rootdir");
  ASSERT_EQ(::mkdir(rootdir.c_str(), 0755), 0);
  r = sb_.Agent({"--once", "--no-collector"}, Env({"SENTINELD_DATABASE__PATH=" + rootdir + "/events.db"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;  // the agent's user cannot write there: it says so
  ASSERT_EQ(::stat(rootdir.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
}

// Root creates missing directories on descriptors and never through a link
// its user (or anyone but root) planted: no directory of the user's appears
// where the link points.
TEST_F(AgentPrivilegesTest, RootAgentRefusesALinkItsUserPlantedOnTheWayToItsData) {
  if (::geteuid() != 0) GTEST_SKIP() << "privileged test: directories are created by root only when root";
  const passwd* pw = ::getpwnam(kServiceUser);
  ASSERT_NE(pw, nullptr);
  testing::TempDir target;  // root's, 0700
  const std::string link = sb_.File("planted");
  ASSERT_EQ(::symlink(target.path().c_str(), link.c_str()), 0);
  ASSERT_EQ(::lchown(link.c_str(), pw->pw_uid, pw->pw_gid), 0);
  auto r =
      sb_.Agent({"--once", "--no-collector"}, Env({"SENTINELD_DATABASE__PATH=" + link + "/data/events.db"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "refusing to follow " + link)) << r.err;
  EXPECT_FALSE(testing::FileExists(target.File("data")));
  // A link root owns is not refused by the directory walk (/var/run ->
  // /run), but a store is never opened through any link (decisions: "Root
  // never follows a name the service user can change"): refused, naming it,
  // and nothing of the user's appears behind it.
  ASSERT_EQ(::lchown(link.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(target.path().c_str(), 0755), 0);
  r = sb_.Agent({"--once", "--no-collector"}, Env({"SENTINELD_DATABASE__PATH=" + link + "/data/events.db"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "refusing " + link + "/data/events.db")) << r.err;
  EXPECT_FALSE(testing::FileExists(target.File("data/events.db")));
}

// Issue 14 item 8: root as privileges.user and capabilities beyond what
// procmond may keep are configuration errors (exit 2, naming the key) for
// `config validate`, procmond and the agent alike, before anything is written.
TEST_F(AgentPrivilegesTest, RootUserAndExtraCapabilitiesAreConfigurationErrors) {
  struct Case {
    std::string yaml, key, expect;
  };
  const std::vector<Case> cases = {
      {"privileges: {user: root}\n", "privileges.user", "expected an unprivileged user name, not root"},
      {"privileges: {keep_capabilities: [CAP_SYS_PTRACE, CAP_SYS_ADMIN]}\n",
       "privileges.keep_capabilities[1]", "expected CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    const std::string cfg = sb_.File("bad.yaml");
    testing::WriteFile(cfg, c.yaml);
    const std::string db = sb_.File("never.db");
    RunResult v = sb_.Cli({"--config", cfg, "config", "validate"});
    EXPECT_EQ(v.exit_code, 2) << v.out << v.err;
    EXPECT_TRUE(Contains(v.err, c.key + ": " + c.expect)) << v.err;
    // (the harness names a user for root runs in the environment, which would win over the file)
    RunResult p = sb_.Procmond({"--once", "--config", cfg, "--database", db}, {"SENTINELD_PRIVILEGES__USER"});
    EXPECT_EQ(p.exit_code, 2) << p.err;
    EXPECT_TRUE(Contains(p.err, c.key + ": " + c.expect)) << p.err;
    RunResult a = sb_.Agent({"--config", cfg, "--database", db}, {"SENTINELD_PRIVILEGES__USER"});
    EXPECT_EQ(a.exit_code, 2) << a.err;
    EXPECT_TRUE(Contains(a.err, c.key + ": " + c.expect)) << a.err;
    EXPECT_FALSE(testing::FileExists(db));
  }
  // The same through the environment.
  RunResult v = sb_.Cli({"config", "validate"}, {"SENTINELD_PRIVILEGES__USER=root"});
  EXPECT_EQ(v.exit_code, 2) << v.err;
  EXPECT_TRUE(Contains(v.err, "SENTINELD_PRIVILEGES__USER: privileges.user")) << v.err;
}

}  // namespace
}  // namespace sentinel::itest
