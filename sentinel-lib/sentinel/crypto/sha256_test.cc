#include "sentinel/crypto/sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "sentinel/base/hex.h"

namespace sentinel::crypto {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, FdHashAndCap) {
  char path[] = "/tmp/sentinel_sha_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "abc", 3), 3);
  lseek(fd, 0, SEEK_SET);
  auto r = Sha256HexOfFd(fd, 1024);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, Sha256Hex("abc"));
  lseek(fd, 0, SEEK_SET);
  auto capped = Sha256HexOfFd(fd, 2);
  EXPECT_EQ(capped.status().code(), StatusCode::kResourceExhausted);
  close(fd);
  unlink(path);
}

}  // namespace
}  // namespace sentinel::crypto
