#include "sentinel/base/files.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "sentinel/testing/temp_dir.h"

namespace sentinel {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

void ExpectRefused(const Status& s, const std::string& path, const std::string& why) {
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.message();
  EXPECT_TRUE(IsRefusedPath(s)) << s.message();
  EXPECT_NE(s.message().find("refusing " + path + ": " + why), std::string::npos) << s.message();
}

TEST(RefuseSymlinkTest, AcceptsFilesAndAbsenceRefusesLinks) {
  TempDir tmp;
  WriteFile(tmp.File("f"), "x");
  EXPECT_TRUE(RefuseSymlink(tmp.File("f")).ok());
  EXPECT_TRUE(RefuseSymlink(tmp.File("missing")).ok());
  ASSERT_EQ(::symlink("missing-target", tmp.File("dangling").c_str()), 0);
  ExpectRefused(RefuseSymlink(tmp.File("dangling")), tmp.File("dangling"), "it is a symbolic link");
  EXPECT_FALSE(IsRefusedPath(NotFoundError("refusing nothing")));
}

TEST(OpenDirectoryNoFollowTest, OpensDirectoriesOnly) {
  TempDir tmp;
  ASSERT_EQ(::mkdir(tmp.File("d").c_str(), 0700), 0);
  auto d = OpenDirectoryNoFollow(tmp.File("d"));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_GE(d->get(), 0);
  ASSERT_EQ(::symlink(tmp.File("d").c_str(), tmp.File("link").c_str()), 0);
  ExpectRefused(OpenDirectoryNoFollow(tmp.File("link")).status(), tmp.File("link"), "it is a symbolic link");
  WriteFile(tmp.File("f"), "x");
  ExpectRefused(OpenDirectoryNoFollow(tmp.File("f")).status(), tmp.File("f"), "it is not a directory");
  EXPECT_EQ(OpenDirectoryNoFollow(tmp.File("none")).status().code(), StatusCode::kNotFound);
}

TEST(OpenRegularNoFollowTest, CreatesAndOpensRegularFiles) {
  TempDir tmp;
  auto fd = OpenRegularNoFollow(tmp.File("new"), O_RDWR | O_CREAT, 0640);
  ASSERT_TRUE(fd.ok()) << fd.status().message();
  ASSERT_EQ(::write(fd->get(), "abc", 3), 3);
  EXPECT_EQ(ReadFile(tmp.File("new")), "abc");
  EXPECT_EQ(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0);  // cleared after the checks
  EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(OpenRegularNoFollowTest, RefusesALinkToAnExistingFileAndLeavesItAlone) {
  TempDir tmp;
  WriteFile(tmp.File("target"), "precious");
  ASSERT_EQ(::chmod(tmp.File("target").c_str(), 0644), 0);
  ASSERT_EQ(::symlink(tmp.File("target").c_str(), tmp.File("link").c_str()), 0);
  auto fd = OpenRegularNoFollow(tmp.File("link"), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ExpectRefused(fd.status(), tmp.File("link"), "it is a symbolic link");
  EXPECT_EQ(ReadFile(tmp.File("target")), "precious");
  EXPECT_EQ(Lstat(tmp.File("target")).st_mode & 07777, 0644u);
}

TEST(OpenRegularNoFollowTest, RefusesADanglingLinkWithoutCreatingItsTarget) {
  TempDir tmp;
  ASSERT_EQ(::symlink(tmp.File("created-by-root").c_str(), tmp.File("link").c_str()), 0);
  ExpectRefused(OpenRegularNoFollow(tmp.File("link"), O_RDWR | O_CREAT, 0600).status(), tmp.File("link"),
                "it is a symbolic link");
  EXPECT_FALSE(testing::FileExists(tmp.File("created-by-root")));
}

TEST(OpenRegularNoFollowTest, RefusesHardLinksAndFifos) {
  TempDir tmp;
  WriteFile(tmp.File("target"), "precious");
  ASSERT_EQ(::link(tmp.File("target").c_str(), tmp.File("hard").c_str()), 0);
  ExpectRefused(OpenRegularNoFollow(tmp.File("hard"), O_RDWR).status(), tmp.File("hard"),
                "it has 2 hard links");
  EXPECT_EQ(ReadFile(tmp.File("target")), "precious");
  ASSERT_EQ(::mkfifo(tmp.File("fifo").c_str(), 0600), 0);
  // Would block forever without a reader if the open were blocking.
  auto fifo = OpenRegularNoFollow(tmp.File("fifo"), O_WRONLY);
  ExpectRefused(fifo.status(), tmp.File("fifo"), "it is not a regular file");
}

TEST(ChownNoFollowTest, ChangesTheNodeButRefusesLinks) {
  TempDir tmp;
  // Root may give files away; anyone may "give" a file to themselves.
  const uid_t uid = ::geteuid() == 0 ? 65534 : ::geteuid();
  const gid_t gid = ::geteuid() == 0 ? 65534 : ::getegid();
  WriteFile(tmp.File("f"), "x");
  ASSERT_TRUE(ChownNoFollow(tmp.File("f"), S_IFREG, uid, gid).ok());
  EXPECT_EQ(Lstat(tmp.File("f")).st_uid, uid);
  EXPECT_EQ(Lstat(tmp.File("f")).st_gid, gid);

  WriteFile(tmp.File("target"), "precious");
  const struct stat before = Lstat(tmp.File("target"));
  ASSERT_EQ(::symlink(tmp.File("target").c_str(), tmp.File("link").c_str()), 0);
  ExpectRefused(ChownNoFollow(tmp.File("link"), S_IFREG, uid, gid), tmp.File("link"),
                "it is a symbolic link");
  ExpectRefused(ChmodNoFollow(tmp.File("link"), S_IFREG, 0666), tmp.File("link"), "it is a symbolic link");
  ASSERT_EQ(::link(tmp.File("target").c_str(), tmp.File("hard").c_str()), 0);
  ExpectRefused(ChownNoFollow(tmp.File("hard"), S_IFREG, uid, gid), tmp.File("hard"), "it has 2 hard links");
  ExpectRefused(ChmodNoFollow(tmp.File("hard"), S_IFREG, 0666), tmp.File("hard"), "it has 2 hard links");
  const struct stat after = Lstat(tmp.File("target"));
  EXPECT_EQ(after.st_uid, before.st_uid);
  EXPECT_EQ(after.st_gid, before.st_gid);
  EXPECT_EQ(after.st_mode, before.st_mode);

  ExpectRefused(ChownNoFollow(tmp.File("f"), S_IFDIR, uid, gid), tmp.File("f"),
                "it is a regular file, not a directory");
  EXPECT_EQ(ChownNoFollow(tmp.File("none"), S_IFREG, uid, gid).code(), StatusCode::kNotFound);
}

TEST(ChmodNoFollowTest, SetsTheModeOfASocketAndADirectory) {
  TempDir tmp;
  const std::string path = tmp.File("s.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  Status s = ChmodNoFollow(path, S_IFSOCK, 0660);
  ::close(fd);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Lstat(path).st_mode & 07777, 0660u);
  ASSERT_EQ(::mkdir(tmp.File("d").c_str(), 0700), 0);
  ASSERT_TRUE(ChmodNoFollow(tmp.File("d"), S_IFDIR, 0750).ok());
  EXPECT_EQ(Lstat(tmp.File("d")).st_mode & 07777, 0750u);
}

TEST(CreateDirectoriesTest, ReportsTheLevelsItCreated) {
  TempDir tmp;
  auto created = CreateDirectories(tmp.File("a/b/c"), 0750);
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_EQ(*created, (std::vector<std::string>{tmp.File("a"), tmp.File("a/b"), tmp.File("a/b/c")}));
  auto again = CreateDirectories(tmp.File("a/b/c/"), 0750);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  ASSERT_EQ(::symlink(tmp.File("a").c_str(), tmp.File("link").c_str()), 0);
  ExpectRefused(CreateDirectories(tmp.File("link"), 0750).status(), tmp.File("link"),
                "it is a symbolic link");
  WriteFile(tmp.File("f"), "x");
  ExpectRefused(CreateDirectories(tmp.File("f"), 0750).status(), tmp.File("f"), "it is not a directory");
}

}  // namespace
}  // namespace sentinel
