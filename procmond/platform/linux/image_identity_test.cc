// CheckExeAgainstHost and RuntimeBinaryWithHash over a directory laid out
// like /proc (PID/root and PID/exe are symlinks to real files and
// directories of this host), so each outcome is produced by real stat()s.
#include "procmond/platform/linux/image_identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond {
namespace {

using ::sentinel::testing::TempDir;
using ::sentinel::testing::WriteFile;

class HostCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(proc_.File("7").c_str(), 0755), 0);
    WriteFile(files_.File("image"), "the image");
    WriteFile(files_.File("other"), "another file");
    auto fs = OpenProcFs(proc_.path());
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(*fs);
    struct stat st {};
    ASSERT_EQ(::stat("/", &st), 0);
    host_root_ = {st.st_dev, st.st_ino, st.st_nlink};
  }
  // The process 7 runs `image` with its root at `root`.
  void Link(const std::string& image, const std::string& root = "/") {
    ::unlink(proc_.File("7/exe").c_str());
    ::unlink(proc_.File("7/root").c_str());
    ASSERT_EQ(::symlink(image.c_str(), proc_.File("7/exe").c_str()), 0);
    ASSERT_EQ(::symlink(root.c_str(), proc_.File("7/root").c_str()), 0);
  }
  HostCheck Check(const std::string& exe_link) {
    return CheckExeAgainstHost(fs_.get(), "7", exe_link, host_root_);
  }

  TempDir proc_, files_;
  std::unique_ptr<ProcFs> fs_;
  ProcFs::FileId host_root_;
};

TEST_F(HostCheckTest, TheImageIsComparedWithTheHostsFileAtItsPath) {
  Link(files_.File("image"));
  struct Case {
    std::string exe_link;
    bool mismatch;
    std::string reason;  // its start
  };
  const Case cases[] = {
      {files_.File("image"), false, ""},
      // What a bind mount over the path in another mount namespace looks
      // like from the host: the link names the path, the image is another file.
      {files_.File("other"), true, "the host's file at this path is "},
      // A tmpfs over a directory in another mount namespace.
      {files_.File("no-such-dir/cron"), true, "no file at this path on the host"},
  };
  for (const Case& k : cases) {
    HostCheck c = Check(k.exe_link);
    ASSERT_TRUE(c.mismatch.has_value()) << k.exe_link << ": " << c.skipped;
    EXPECT_EQ(*c.mismatch, k.mismatch) << k.exe_link;
    EXPECT_EQ(c.reason.substr(0, k.reason.size()), k.reason) << k.exe_link;
    EXPECT_EQ(c.reason.empty(), !k.mismatch) << k.exe_link;
  }
}

TEST_F(HostCheckTest, AProcessWithARootOfItsOwnIsNotCompared) {
  Link(files_.File("image"), files_.path());
  HostCheck c = Check(files_.File("other"));
  EXPECT_FALSE(c.mismatch.has_value());
  EXPECT_EQ(c.skipped, "own_root");
}

TEST_F(HostCheckTest, DeletedMemfdAndRelativeImagesAreNotCompared) {
  Link(files_.File("image"));
  for (const std::string& link : {files_.File("other") + " (deleted)", std::string("/memfd:x (deleted)"),
                                  std::string("relative/x"), std::string()}) {
    HostCheck c = Check(link);
    EXPECT_FALSE(c.mismatch.has_value()) << link;
    EXPECT_EQ(c.skipped, "") << link;
  }
}

TEST(RuntimeBinaryTest, OnlyARootOwnedUnwritableCandidateWithTheHashCounts) {
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  WriteFile(dir.File("runc"), "runtime image");
  ::chmod(dir.File("runc").c_str(), 0755);
  ExeHasher hasher(1 << 20);
  auto h = hasher.Hash(AT_FDCWD, dir.File("runc").c_str());
  ASSERT_TRUE(h.sha256.has_value());
  const std::vector<std::string> candidates = {dir.File("missing"), dir.File("runc")};
  const bool root = ::geteuid() == 0;
  // Owned by whoever runs the test: trusted only when that is root.
  EXPECT_EQ(RuntimeBinaryWithHash(&hasher, *h.sha256, candidates).has_value(), root);
  EXPECT_FALSE(RuntimeBinaryWithHash(&hasher, std::string(64, '0'), candidates).has_value());
  // Writable by others: never trusted.
  ::chmod(dir.File("runc").c_str(), 0757);
  EXPECT_FALSE(RuntimeBinaryWithHash(&hasher, *h.sha256, candidates).has_value());
  ::chmod(dir.File("runc").c_str(), 0755);
  ::chmod(dir.path().c_str(), 0777);
  EXPECT_FALSE(RuntimeBinaryWithHash(&hasher, *h.sha256, candidates).has_value()) << "a writable directory";
}

}  // namespace
}  // namespace sentinel::procmond
