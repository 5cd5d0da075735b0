// Test helpers: a temporary directory removed on destruction, and small
// file utilities. Test-only; not thread-safe.
#pragma once

#include <string>

namespace sentinel::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);
bool FileExists(const std::string& path);
bool IsRoot();

}  // namespace sentinel::testing
