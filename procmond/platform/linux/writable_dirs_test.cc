#include "procmond/platform/linux/writable_dirs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond {
namespace {

using ::sentinel::testing::TempDir;

void MakeDir(const std::string& path, mode_t mode) {
  std::filesystem::create_directories(path);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

std::vector<std::string> Paths(const WritableDirScan& scan) {
  std::vector<std::string> out;
  for (const auto& d : scan.dirs) out.push_back(d.path);
  return out;
}

// A tree laid out like a host: o+w directories at several depths, one
// inside another, one beyond the depth bound, one reached only through a
// symbolic link, one in a skipped directory.
TEST(WritableDirsTest, FindsWorldWritableDirectoriesWithinTheBounds) {
  TempDir dir;
  const std::string root = dir.path();
  ::chmod(root.c_str(), 0755);
  MakeDir(root + "/tmp", 01777);
  MakeDir(root + "/tmp/inner", 0777);  // under a recorded one: not entered
  MakeDir(root + "/var/lib/php/sessions", 0755);
  ASSERT_EQ(::chmod((root + "/var/lib/php/sessions").c_str(), 01733), 0);
  MakeDir(root + "/srv/a/b/c/d", 0755);
  ASSERT_EQ(::chmod((root + "/srv/a/b/c/d").c_str(), 0777), 0);  // depth 5: beyond max_depth 4
  MakeDir(root + "/opt/app/uploads", 0755);
  ASSERT_EQ(::chmod((root + "/opt/app/uploads").c_str(), 0777), 0);
  MakeDir(root + "/elsewhere/open", 0777);
  ASSERT_EQ(::chmod((root + "/elsewhere").c_str(), 0755), 0);
  ASSERT_EQ(::symlink((root + "/elsewhere").c_str(), (root + "/opt/link").c_str()), 0);  // not followed
  MakeDir(root + "/proc/open", 0777);                                                    // skipped
  ASSERT_EQ(::chmod((root + "/proc").c_str(), 0755), 0);
  MakeDir(root + "/run/lock", 01777);

  WritableDirOptions o;
  o.root = root;
  o.well_known = {root + "/run/lock", root + "/missing"};
  WritableDirScan scan = FindWritableDirs(o);
  EXPECT_EQ(Paths(scan),
            (std::vector<std::string>{root + "/elsewhere/open", root + "/opt/app/uploads", root + "/run/lock",
                                      root + "/tmp", root + "/var/lib/php/sessions"}));
  EXPECT_FALSE(scan.truncated);
  for (const auto& d : scan.dirs) {
    if (d.path == root + "/tmp") {
      EXPECT_EQ(d.mode, 01777);
    } else if (d.path == root + "/var/lib/php/sessions") {
      EXPECT_EQ(d.mode, 01733);
    }
    EXPECT_EQ(d.owner_uid, static_cast<int64_t>(::geteuid())) << d.path;
  }
}

TEST(WritableDirsTest, BoundsAreReported) {
  TempDir dir;
  const std::string root = dir.path();
  for (int i = 0; i < 20; ++i) MakeDir(root + "/d" + std::to_string(i) + "/x", 0755);
  WritableDirOptions o;
  o.root = root;
  o.well_known = {};
  o.max_visited = 5;
  WritableDirScan scan = FindWritableDirs(o);
  EXPECT_TRUE(scan.truncated);
  EXPECT_EQ(scan.visited, 5u);
}

TEST(WritableDirsTest, OutermostOnlyDropsNestedPathsWhateverSortsBetween) {
  std::vector<storage::WritableDir> dirs = {{"/run/lock/sub", 0777, 0}, {"/run/lock-x", 0777, 0},
                                            {"/run/lock", 01777, 0},    {"/tmp", 01777, 0},
                                            {"/tmp", 01777, 0},         {"/run/lock.d", 0777, 0}};
  std::vector<std::string> kept;
  for (const auto& d : OutermostOnly(dirs)) kept.push_back(d.path);
  EXPECT_EQ(kept, (std::vector<std::string>{"/run/lock", "/run/lock-x", "/run/lock.d", "/tmp"}));
}

}  // namespace
}  // namespace sentinel::procmond
