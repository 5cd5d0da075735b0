// Issue 14, item 1: the service user owns the data and socket directories,
// and procmond (and the agent, when started as root) must not be steered by
// a link planted there into creating, writing, chmod-ing or chown-ing a file
// of root's. For every path root opens, a symbolic link is planted at it —
// to an existing root-owned file and to one that does not exist yet — and
// the real binary, started as root and told to switch to `nobody`, must exit
// 1 naming the path, with the target unchanged (not created, same owner,
// mode and content). Privileged: skipped without root or the nobody user.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sentinel/base/features.h"
#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

enum class Binary { kProcmondOnce, kProcmondDaemon, kAgentOnce, kAgentDaemon };

struct PlantCase {
  std::string name;     // gtest name
  Binary binary;        // what is started as root
  std::string planted;  // path relative to the sandbox where the link goes
  bool target_exists;   // the link points to an existing root file, or to nothing
};

std::string BinaryName(Binary b) {
  switch (b) {
    case Binary::kProcmondOnce: return "procmond --once";
    case Binary::kProcmondDaemon: return "procmond";
    case Binary::kAgentOnce: return "sentinelagent --once --no-collector";
    case Binary::kAgentDaemon: return "sentinelagent --no-collector";
  }
  return "";
}

void PrintTo(const PlantCase& c, std::ostream* os) {
  *os << BinaryName(c.binary) << ", link at " << c.planted
      << (c.target_exists ? " to a root file" : " to nothing");
}

// A signing key's content: 64 lowercase hex characters.
constexpr char kKeyHex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

class SymlinkTest : public ::testing::TestWithParam<PlantCase> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0)
      GTEST_SKIP() << "privileged test: needs root to start procmond and the agent as root";
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr) GTEST_SKIP() << "needs the nobody user (the service user of this test)";
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    // As installed: the sandbox (standing in for /var/lib and /run) is
    // root's; the data and socket directories belong to the service user.
    ASSERT_EQ(::chmod(sb_.path().c_str(), 0755), 0);
    for (const char* dir : {"data", "run"}) {
      ASSERT_EQ(::mkdir(sb_.File(dir).c_str(), 0750), 0);
      ASSERT_EQ(::chown(sb_.File(dir).c_str(), uid_, gid_), 0);
    }
    ASSERT_EQ(::mkdir(sb_.File("root").c_str(), 0755), 0);
    target_ = sb_.File(GetParam().target_exists ? "root/target" : "root/absent");
    if (GetParam().target_exists) {
      testing::WriteFile(target_, "root's file\n");
      ASSERT_EQ(::chmod(target_.c_str(), 0644), 0);
    }
    // The key the configuration names lives in the data directory (an
    // operator's mistake the service user can exploit); the real one is root's.
    testing::WriteFile(sb_.File("root/real.key"), kKeyHex);
    ASSERT_EQ(::chmod(sb_.File("root/real.key").c_str(), 0600), 0);
  }

  std::vector<std::string> Env() const {
    std::vector<std::string> env{"SENTINELD_DATABASE__PATH=" + sb_.File("data/events.db"),
                                 "SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("data/audit.db"),
                                 "SENTINELD_IPC__SOCKET_DIR=" + sb_.File("run"),
                                 "SENTINELD_PRIVILEGES__USER=nobody",
                                 "SENTINELD_DETECTION__RULES_DIRS=[" + sb_.File("rules.d") + "]",
                                 "SENTINELD_TELEMETRY__HTTP_LISTEN=",
                                 "SENTINELD_TELEMETRY__LOG_FORMAT=text",
                                 "SENTINELD_COLLECTION__INTERVAL_SECS=3600",
                                 "SENTINELD_COLLECTION__REALTIME_EVENTS=false",
                                 "SENTINELD_COLLECTION__SCAN_SOURCE=proc"};
    if (GetParam().planted == "data/audit.key") {
      env.push_back("SENTINELD_DATABASE__AUDIT_SIGNING_KEY=" + sb_.File("data/audit.key"));
    }
    return env;
  }

  // Starts the binary as root; returns its exit code (nullopt: still running
  // after 60 s — then it is killed) and what it wrote to stderr.
  std::optional<int> Start(std::string* err) {
    std::vector<std::string> argv;
    switch (GetParam().binary) {
      case Binary::kProcmondOnce: argv = {ProcmondBin(), "--once"}; break;
      case Binary::kProcmondDaemon: argv = {ProcmondBin()}; break;
      case Binary::kAgentOnce: argv = {AgentBin(), "--once", "--no-collector"}; break;
      case Binary::kAgentDaemon: argv = {AgentBin(), "--no-collector"}; break;
    }
    const std::string err_file = sb_.File("stderr.txt");
    Child child(argv, sb_.ProcmondEnv(Env()), sb_.File("stdout.txt"), err_file);
    auto code = child.Wait(std::chrono::seconds(60));
    *err = testing::ReadFile(err_file);
    return code;
  }

  struct Snapshot {
    bool exists = false;
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t mode = 0;
    std::string content;
    bool operator==(const Snapshot&) const = default;
  };
  Snapshot Snap(const std::string& path) const {
    Snapshot s;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return s;
    s.exists = true;
    s.uid = st.st_uid;
    s.gid = st.st_gid;
    s.mode = st.st_mode;
    s.content = testing::ReadFile(path);
    return s;
  }

  Sandbox sb_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::string target_;
};

TEST_P(SymlinkTest, RootRefusesALinkPlantedByTheServiceUser) {
  const PlantCase& c = GetParam();
  const std::string planted = sb_.File(c.planted);
  // The link is the service user's, as it would be.
  const std::string link_target =
      c.planted == "data/audit.key" && c.target_exists ? sb_.File("root/real.key") : target_;
  ASSERT_EQ(::symlink(link_target.c_str(), planted.c_str()), 0);
  ASSERT_EQ(::lchown(planted.c_str(), uid_, gid_), 0);
  const Snapshot before = Snap(link_target);

  std::string err;
  auto code = Start(&err);
  ASSERT_TRUE(code.has_value()) << BinaryName(c.binary) << " did not stop\n" << err;
  EXPECT_EQ(*code, 1) << err;
  EXPECT_NE(err.find("refusing " + planted + ":"), std::string::npos)
      << "the message does not name " << planted << ":\n"
      << err;

  const Snapshot after = Snap(link_target);
  EXPECT_EQ(after.exists, before.exists) << link_target << (before.exists ? " was removed" : " was created");
  EXPECT_EQ(after.uid, before.uid) << link_target << " changed owner";
  EXPECT_EQ(after.gid, before.gid) << link_target << " changed group";
  EXPECT_EQ(after.mode, before.mode) << link_target << " changed mode";
  EXPECT_EQ(after.content, before.content) << link_target << " changed content";
  struct stat st {};
  ASSERT_EQ(::lstat(planted.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the planted link was replaced";
}

std::vector<PlantCase> Cases() {
  struct Path {
    std::string tag;
    Binary binary;
    std::string planted;
  };
  const std::vector<Path> paths{
      // procmond: both stores and their side files, the signing key (read
      // as root), the control socket (bound, chmod-ed and chown-ed as root).
      {"ProcmondEvents", Binary::kProcmondOnce, "data/events.db"},
      {"ProcmondEventsWal", Binary::kProcmondOnce, "data/events.db-wal"},
      {"ProcmondEventsShm", Binary::kProcmondOnce, "data/events.db-shm"},
      {"ProcmondEventsJournal", Binary::kProcmondOnce, "data/events.db-journal"},
      {"ProcmondAudit", Binary::kProcmondOnce, "data/audit.db"},
      {"ProcmondAuditWal", Binary::kProcmondOnce, "data/audit.db-wal"},
      {"ProcmondAuditShm", Binary::kProcmondOnce, "data/audit.db-shm"},
      {"ProcmondSigningKey", Binary::kProcmondOnce, "data/audit.key"},
      {"ProcmondSocket", Binary::kProcmondDaemon, "run/procmond.sock"},
      // The agent started as root: its lock file, stores, key and socket.
      {"AgentLock", Binary::kAgentOnce, "data/sentinelagent.lock"},
      {"AgentEvents", Binary::kAgentOnce, "data/events.db"},
      {"AgentEventsWal", Binary::kAgentOnce, "data/events.db-wal"},
      {"AgentEventsShm", Binary::kAgentOnce, "data/events.db-shm"},
      {"AgentAudit", Binary::kAgentOnce, "data/audit.db"},
      {"AgentAuditWal", Binary::kAgentOnce, "data/audit.db-wal"},
      {"AgentSigningKey", Binary::kAgentOnce, "data/audit.key"},
      {"AgentSocket", Binary::kAgentDaemon, "run/agent.sock"},
  };
  std::vector<PlantCase> out;
  for (const Path& p : paths) {
    // A signing key is configuration a build without audit signing refuses (features_test.cc).
    if (p.planted == "data/audit.key" && !Built(Feature::kAuditSigning)) continue;
    out.push_back({p.tag + "ToRootFile", p.binary, p.planted, true});
    out.push_back({p.tag + "ToNothing", p.binary, p.planted, false});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryRootPath, SymlinkTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<PlantCase>& p) { return p.param.name; });

}  // namespace
}  // namespace sentinel::itest
