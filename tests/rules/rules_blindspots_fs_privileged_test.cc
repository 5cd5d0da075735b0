// Live tests of issue 17, case 8, that need root (label "privileged"; each
// skips with the reason otherwise):
// - a world-writable directory that is not one of the well-known ones (a
//   misconfigured upload directory of root's), found by procmond's walk at
//   its start: a payload run from it is proc-exec-from-tmp's;
// - a payload dropped in /tmp by another user and hard-linked elsewhere on
//   the same file system, run from there: proc-exec-hardlinked-binary.
// See rules_blindspots_fs_test.cc for the unprivileged cases.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

constexpr uid_t kNobody = 65534;

#define SKIP_UNLESS_ROOT(why)                               \
  do {                                                      \
    if (!IsRoot()) GTEST_SKIP() << "needs root: " << (why); \
  } while (0)

std::string Sleep() {
  return SystemBinary("sleep");
}

// A scratch directory two levels below / (where procmond's walk at its start
// looks), on the same file system as /tmp when `same_fs_as_tmp`; "" when
// there is none.
std::string ShallowParent(bool same_fs_as_tmp) {
  struct stat tmp {};
  if (::stat("/tmp", &tmp) != 0) return "";
  for (const char* p : {"/srv", "/opt", "/mnt", "/var"}) {
    struct stat st {};
    if (::lstat(p, &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & S_IWOTH)) continue;
    if (same_fs_as_tmp && st.st_dev != tmp.st_dev) continue;
    return p;
  }
  return "";
}

// ---------------------------------------------------------------------------
// proc-exec-from-tmp: a world-writable directory found at start

TEST_F(RuleLiveTest, ProcExecFromTmp_AWorldWritableDirectoryFoundAtStart) {
  SKIP_UNLESS_ROOT("a world-writable directory of root's outside /tmp");
  const std::string parent = ShallowParent(false);
  if (parent.empty()) GTEST_SKIP() << "no /srv, /opt, /mnt or /var to make a directory in";
  ScratchDir uploads(parent);  // e.g. /srv/sentinel-rules-XXXXXX, chmod 0777 as a careless admin would
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(::chmod(uploads.path().c_str(), 0777), 0) << std::strerror(errno);
  const std::string bin = uploads.File("kinsing");
  CopyExecutable(Sleep(), bin);
  ASSERT_EQ(::chown(bin.c_str(), kNobody, kNobody), 0) << std::strerror(errno);
  auto p = TestProcess::Start(bin, {"kinsing", "1000"}, {.uid = kNobody});
  ASSERT_NE(p, nullptr);
  auto row = ExpectOneRow(ScanAndRun("proc-exec-from-tmp"), p->pid());
  EXPECT_EQ(row.value("exe_path", ""), bin);
}

TEST_F(RuleLiveTest, ProcExecFromTmp_ADirectoryOnlyRootMayWrite) {
  SKIP_UNLESS_ROOT("a directory of root's outside /tmp");
  const std::string parent = ShallowParent(false);
  if (parent.empty()) GTEST_SKIP() << "no /srv, /opt, /mnt or /var to make a directory in";
  ScratchDir app(parent);
  ASSERT_TRUE(app.ok());
  ASSERT_EQ(::chmod(app.path().c_str(), 0755), 0) << std::strerror(errno);
  const std::string bin = app.File("daemon");
  CopyExecutable(Sleep(), bin);
  auto p = TestProcess::Start(bin, {"daemon", "1000"}, {.uid = kNobody});
  ASSERT_NE(p, nullptr);
  ExpectNoRows(ScanAndRun("proc-exec-from-tmp"), {p->pid()});
}

// ---------------------------------------------------------------------------
// proc-exec-hardlinked-binary

TEST_F(RuleLiveTest, ProcExecHardlinkedBinary_Positive) {
  SKIP_UNLESS_ROOT("a file of another user's hard-linked outside /tmp");
  const std::string parent = ShallowParent(true);
  if (parent.empty()) GTEST_SKIP() << "no directory on /tmp's file system outside /tmp";
  // nobody drops /tmp/.../payload; a hard link of it sits in a directory
  // elsewhere and is what runs: the exe path is not under /tmp.
  ::chmod(work().path().c_str(), 0755);
  const std::string payload = work().File("drop/payload");
  CopyExecutable(Sleep(), payload);
  ::chmod(work().File("drop").c_str(), 0755);
  ASSERT_EQ(::chown(payload.c_str(), kNobody, kNobody), 0) << std::strerror(errno);
  ScratchDir elsewhere(parent);
  ASSERT_TRUE(elsewhere.ok());
  ::chmod(elsewhere.path().c_str(), 0755);
  const std::string linked = elsewhere.File("dbus-helper");
  ASSERT_EQ(::link(payload.c_str(), linked.c_str()), 0) << std::strerror(errno);
  auto p = TestProcess::Start(linked, {"dbus-helper", "1000"}, {.uid = kNobody});
  ASSERT_NE(p, nullptr);
  const std::string db = Scan();
  ExpectNoRows(Run("proc-exec-from-tmp", db), {p->pid()});  // the blind spot this rule closes
  auto row = ExpectOneRow(Run("proc-exec-hardlinked-binary", db), p->pid());
  EXPECT_EQ(row.value("exe_path", ""), linked);
  EXPECT_EQ(row.value("exe_nlink", int64_t{0}), 2);
  EXPECT_EQ(row.value("exe_owner_uid", int64_t{-1}), kNobody);
}

TEST_F(RuleLiveTest, ProcExecHardlinkedBinary_Negative) {
  SKIP_UNLESS_ROOT("files of root's and of another user's");
  const std::string parent = ShallowParent(true);
  if (parent.empty()) GTEST_SKIP() << "no directory on /tmp's file system outside /tmp";
  ScratchDir dir(parent);
  ASSERT_TRUE(dir.ok());
  ::chmod(dir.path().c_str(), 0755);
  // A program of root's with two names (as perl and perl5.36.0 are), and a
  // program of nobody's with one.
  const std::string tool = dir.File("tool");
  CopyExecutable(Sleep(), tool);
  ASSERT_EQ(::link(tool.c_str(), dir.File("tool-1.0").c_str()), 0) << std::strerror(errno);
  const std::string own = dir.File("own");
  CopyExecutable(Sleep(), own);
  ASSERT_EQ(::chown(own.c_str(), kNobody, kNobody), 0) << std::strerror(errno);
  auto root_tool = TestProcess::Start(dir.File("tool-1.0"), {"tool-1.0", "1000"}, {.uid = kNobody});
  auto user_tool = TestProcess::Start(own, {"own", "1000"}, {.uid = kNobody});
  ASSERT_TRUE(root_tool && user_tool);
  ExpectNoRows(ScanAndRun("proc-exec-hardlinked-binary"), {root_tool->pid(), user_tool->pid()});
}

}  // namespace
}  // namespace sentinel::rules_test
