#include "sentinel/base/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace sentinel {
namespace {

Result<int> Half(int v) {
  if (v % 2) return InvalidArgumentError("odd: " + std::to_string(v));
  return v / 2;
}

Result<int> Quarter(int v) {
  ASSIGN_OR_RETURN(int h, Half(v));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status Check(int v) {
  RETURN_IF_ERROR(Half(v).status());
  return Status::Ok();
}

TEST(StatusTest, OkAndError) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFoundError("no such rule");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: no such rule");
  EXPECT_EQ(s.WithContext("loading rules").message(), "loading rules: no such rule");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(StatusTest, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_TRUE(Check(2).ok());
  EXPECT_EQ(Check(3).code(), StatusCode::kInvalidArgument);
}

TEST(StatusTest, ErrnoMapping) {
  EXPECT_EQ(ErrnoError(ENOENT, "open x").code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoError(EACCES, "open x").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoError(ENOSPC, "write").code(), StatusCode::kResourceExhausted);
  EXPECT_NE(ErrnoError(ENOENT, "open x").message().find("open x: "), std::string::npos);
}

}  // namespace
}  // namespace sentinel
