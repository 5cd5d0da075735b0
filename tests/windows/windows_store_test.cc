// procmond.exe under wine64 writes a store that the Linux sentinelcli reads
// (issue 21 "Done when"): the Wine processes alive at that moment are listed,
// among them a child this test started with a known command line, with the
// right pid, parent, image path and SHA-256; a database path that cannot be
// written exits 1 and writes nothing; a bad configuration exits 2.
//
// The Windows programs come from the `windows` preset's build tree
// (SENTINEL_WINDOWS_BUILD_DIR); `make windows-test` builds it and runs this.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/crypto/sha256.h"
#include "sentinel/testing/subprocess.h"
#include "sentinel/testing/temp_dir.h"

extern char** environ;

namespace sentinel {
namespace {

namespace fs = std::filesystem;
using testing::RunResult;

const std::string kBuild = SENTINEL_WINDOWS_BUILD_DIR;
const std::string kWineRun = kBuild + "/wine-run.sh";
const std::string kProcmondExe = kBuild + "/procmond/procmond.exe";
const std::string kTreeExe = kBuild + "/procmond/sentinel_win_tree.exe";

// A Linux path as Windows programs under Wine see it (drive Z: is /).
std::string WinePath(const std::string& linux_path) {
  std::string out = "Z:" + linux_path;
  for (char& c : out)
    if (c == '/') c = '\\';
  return out;
}

RunResult Wine(const std::vector<std::string>& args) {
  std::vector<std::string> argv{kWineRun};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::Run(argv);
}

// Why these tests cannot run here, or "" when they can.
std::string Unavailable() {
  for (const std::string& f : {kWineRun, kProcmondExe, kTreeExe}) {
    if (!fs::exists(f)) return f + " is missing: build the windows preset first (make windows-test)";
  }
  RunResult r = Wine({kTreeExe});  // usage error: exit 2 proves Wine starts programs
  if (r.exit_code == 77) return "Wine cannot start here: " + r.err;
  if (r.exit_code != 2)
    return "Wine did not run a Windows program (exit " + std::to_string(r.exit_code) + "): " + r.err;
  return "";
}

// sentinel_win_tree.exe under Wine, in a process group of its own (ended by the test).
class WineTree {
 public:
  explicit WineTree(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    std::vector<std::string> argv{kWineRun, kTreeExe};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    if (posix_spawn(&pid_, kWineRun.c_str(), &actions, &attr, cargv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
  }
  ~WineTree() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);  // the group this test started
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ != nullptr) std::fclose(out_);
  }
  // The "parent=P child=C" line; false when the tree did not start.
  bool ReadPids(long* parent, long* child) {
    char line[256];
    if (pid_ <= 0 || out_ == nullptr || std::fgets(line, sizeof line, out_) == nullptr) return false;
    return std::sscanf(line, "parent=%ld child=%ld", parent, child) == 2;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

std::string Sha256OfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return crypto::Sha256Hex(bytes);
}

class WindowsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = Unavailable(); !why.empty()) GTEST_SKIP() << why;
  }
  // A configuration with both stores under this test's directory.
  std::string Config(const std::string& db, const std::string& extra = "") {
    const std::string path = dir_.File("config.yaml");
    std::ofstream(path) << "database:\n  path: '" << WinePath(db) << "'\n  audit_path: '"
                        << WinePath(dir_.File("audit.db")) << "'\n"
                        << extra;
    return path;
  }
  RunResult Cli(const std::string& db, const std::string& sql) {
    return testing::Run({SENTINEL_CLI_BIN, "--database", db, "--format", "json", "query", sql});
  }

  testing::TempDir dir_;
};

TEST_F(WindowsStoreTest, OnceWritesAStoreTheLinuxCliReadsWithTheWineProcesses) {
  const std::string marker = "sentineld-marker-" + std::to_string(::getpid());
  WineTree tree({"120", marker, "two words"});
  long parent = 0, child = 0;
  ASSERT_TRUE(tree.ReadPids(&parent, &child)) << "sentinel_win_tree.exe did not start under Wine";

  const std::string db = dir_.File("events.db");
  RunResult once = Wine({kProcmondExe, "--once", "--config", WinePath(Config(db))});
  ASSERT_EQ(once.exit_code, 0) << once.err;

  RunResult scan = Cli(db, "SELECT COUNT(*) AS n, MIN(hostname) AS host FROM scan_metadata");
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  EXPECT_EQ(nlohmann::json::parse(scan.out)[0]["n"], 1) << scan.out;

  RunResult rows = Cli(db,
                       "SELECT pid, ppid, name, exe_path, command_line, exe_hash, user_name, platform_data "
                       "FROM processes ORDER BY pid");
  ASSERT_EQ(rows.exit_code, 0) << rows.err;
  const nlohmann::json processes = nlohmann::json::parse(rows.out);
  // Wine's own processes (services.exe, winedevice.exe, ...) and the tree.
  ASSERT_GE(processes.size(), 3u) << rows.out;
  bool saw_services = false;
  nlohmann::json found;
  for (const nlohmann::json& p : processes) {
    if (p["name"].is_string() && p["name"] == "services.exe") saw_services = true;
    if (p["pid"] == child) found = p;
  }
  EXPECT_TRUE(saw_services) << "Wine's services.exe is not in the scan: " << rows.out;
  ASSERT_TRUE(found.is_object()) << "child pid " << child << " not in the scan: " << rows.out;
  EXPECT_EQ(found["ppid"], parent);
  EXPECT_EQ(found["name"], "sentinel_win_tree.exe");
  const std::string exe_path = found["exe_path"].get<std::string>();
  EXPECT_EQ(exe_path, WinePath(fs::canonical(kTreeExe).string())) << found.dump();
  const nlohmann::json argv = nlohmann::json::parse(found["command_line"].get<std::string>());
  ASSERT_EQ(argv.size(), 5u) << found["command_line"];
  EXPECT_EQ(argv[1], "child");
  EXPECT_EQ(argv[2], "120");
  EXPECT_EQ(argv[3], marker);
  EXPECT_EQ(argv[4], "two words");
  EXPECT_EQ(found["exe_hash"], Sha256OfFile(kTreeExe));
  EXPECT_NE(found["user_name"].get<std::string>().find('\\'), std::string::npos) << found.dump();
  const nlohmann::json platform = nlohmann::json::parse(found["platform_data"].get<std::string>());
  EXPECT_EQ(platform["sid"].get<std::string>().rfind("S-1-5-", 0), 0u) << platform.dump();
  EXPECT_TRUE(platform.contains("session_id")) << platform.dump();
  EXPECT_TRUE(platform.contains("integrity_level")) << platform.dump();
}

TEST_F(WindowsStoreTest, AnUnwritableDatabaseExitsOneAndWritesNothing) {
  // A directory where the database file should be: SQLite cannot create it.
  const std::string db = dir_.File("taken");
  fs::create_directories(db);
  RunResult once = Wine({kProcmondExe, "--once", "--config", WinePath(Config(db))});
  EXPECT_EQ(once.exit_code, 1) << once.err;
  EXPECT_NE(once.err.find("procmond: "), std::string::npos) << once.err;
  EXPECT_NE(once.err.find("taken"), std::string::npos) << "the message does not name the path: " << once.err;
  EXPECT_TRUE(fs::is_empty(db));
  EXPECT_FALSE(fs::exists(dir_.File("audit.db"))) << "the ledger was written although the scan could not be";
}

TEST_F(WindowsStoreTest, ABadConfigurationExitsTwoNamingTheKey) {
  const std::string db = dir_.File("events.db");
  RunResult once =
      Wine({kProcmondExe, "--once", "--config", WinePath(Config(db, "collection:\n  interval_secs: -5\n"))});
  EXPECT_EQ(once.exit_code, 2) << once.err;
  EXPECT_NE(once.err.find("collection.interval_secs"), std::string::npos) << once.err;
  EXPECT_FALSE(fs::exists(db)) << "a store was created for a configuration that was refused";
}

TEST_F(WindowsStoreTest, VersionSaysWindowsAndListsTheFeatures) {
  RunResult v = Wine({kProcmondExe, "--version"});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("(windows)"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("features: -ebpf"), std::string::npos) << v.out;
}

}  // namespace
}  // namespace sentinel
