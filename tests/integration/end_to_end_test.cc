// End to end: a real process with hostile arguments is seen by `procmond
// --once` and read back exactly through `sentinelcli query` (SPEC §4, §5, §9).
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace sentinel::itest {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string JoinNul(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += a + '\0';
  return s;
}

TEST(EndToEnd, OnceScanRecordsHostileCommandLineExactly) {
  Sandbox sb;
  // The largest single argument the kernel accepts (MAX_ARG_STRLEN = 128 KiB
  // including the NUL), with a distinct last byte so truncation shows.
  std::string big(128 * 1024 - 1, 'A');
  for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + (i / 7) % 26);
  big.back() = 'Z';
  const std::vector<std::string> argv = {"/bin/sh",  "-c",        "while :; do sleep 1; done", "sh",
                                         "quote\"d", "new\nline", "tab\there \\ back",         big};
  Child child(argv, sb.Env());
  ASSERT_GT(child.pid(), 0);
  const std::string proc_cmdline = "/proc/" + std::to_string(child.pid()) + "/cmdline";
  ASSERT_TRUE(WaitFor([&] { return testing::ReadFile(proc_cmdline) == JoinNul(argv); }, 5s))
      << "the child never showed its argv in " << proc_cmdline;

  const std::string db = sb.File("events.db");
  RunResult scan = sb.Procmond({"--once", "--database", db});
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  EXPECT_TRUE(Contains(scan.err, "scan written")) << scan.err;
  ASSERT_TRUE(testing::FileExists(db));

  RunResult q =
      sb.Cli({"--database", db, "--json", "query",
              "SELECT pid, ppid, name, exe_path, command_line, user_id FROM processes WHERE pid = :pid",
              "--param", "pid=" + std::to_string(child.pid())});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  json rows = json::parse(q.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(rows.is_array()) << q.out.substr(0, 2000);
  ASSERT_EQ(rows.size(), 1u) << q.out.substr(0, 2000);
  const json& row = rows[0];
  EXPECT_EQ(row["pid"], child.pid());
  EXPECT_EQ(row["ppid"], getpid());
  EXPECT_EQ(row["name"], "sh");
  char real[PATH_MAX];
  ASSERT_NE(::realpath("/bin/sh", real), nullptr);
  EXPECT_EQ(row["exe_path"], std::string(real));
  EXPECT_EQ(row["user_id"], getuid());
  ASSERT_TRUE(row["command_line"].is_string()) << row.dump().substr(0, 500);
  json cmd = json::parse(row["command_line"].get<std::string>(), nullptr, false);
  ASSERT_TRUE(cmd.is_array()) << row["command_line"].get<std::string>().substr(0, 500);
  ASSERT_EQ(cmd.size(), argv.size());
  for (size_t i = 0; i < argv.size(); ++i) {
    EXPECT_EQ(cmd[i].get<std::string>(), argv[i]) << "argument " << i << " differs";
  }

  // The child is ended by its pid, never by name.
  child.Signal(SIGKILL);
  EXPECT_EQ(child.Wait(5s), 128 + SIGKILL);
}

}  // namespace
}  // namespace sentinel::itest
