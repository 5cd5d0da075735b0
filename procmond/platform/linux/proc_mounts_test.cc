#include "procmond/platform/linux/proc_mounts.h"

#include <gtest/gtest.h>

namespace sentinel::procmond {
namespace {

TEST(ProcMountsTest, MountsOverAProcessEntryOrBelowItAreFoundByPid) {
  const std::string mountinfo =
      "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
      "23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
      "24 23 0:22 / /proc/sys/fs/binfmt_misc rw shared:13 - autofs systemd-1 rw\n"
      "60 23 0:21 /977 /proc/1234 rw,nosuid shared:12 - proc proc rw\n"
      "61 23 0:40 / /proc/55 rw - tmpfs none rw\n"
      "62 23 254:0 /tmp/fake /proc/77/cmdline rw - ext4 /dev/vda rw\n"
      "63 22 254:0 /x /srv/proc/88 rw - ext4 /dev/vda rw\n"
      "64 22 254:0 /x /proc2/99 rw - ext4 /dev/vda rw\n"
      "65 23 254:0 /x /proc/self/x rw - ext4 /dev/vda rw\n"
      "66 23 254:0 /x /proc/12ab rw - ext4 /dev/vda rw\n"
      "67 22 254:0 /x /mnt/with\\040space rw - ext4 /dev/vda rw\n"
      "short line\n";
  auto m = ParseProcMounts(mountinfo, "/proc");
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m[1234], "/proc/1234");
  EXPECT_EQ(m[55], "/proc/55");
  EXPECT_EQ(m[77], "/proc/77/cmdline");
}

TEST(ProcMountsTest, EscapedMountPointsAreUnescaped) {
  auto m = ParseProcMounts("70 23 0:40 / /proc/42/a\\040b rw - tmpfs none rw", "/proc");
  EXPECT_EQ(m[42], "/proc/42/a b");
}

}  // namespace
}  // namespace sentinel::procmond
