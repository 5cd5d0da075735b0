// Windows API helpers (Windows build only): UTF-8 <-> UTF-16 for its W
// functions (the rest of SentinelD, the store included, speaks UTF-8), and
// a Status from a Windows error code, and an owned kernel handle.
//
// Invalid input never fails: an unpaired surrogate or a bad UTF-8 byte
// becomes U+FFFD, so a name an attacker chose cannot make a process vanish
// from a scan; the store escapes what it displays anyway.
//
// Thread-safety: pure functions; a UniqueHandle belongs to one owner.
#pragma once

#include <windows.h>

#include <string>
#include <string_view>
#include <utility>

#include "sentinel/base/status.h"

namespace sentinel {

std::wstring Utf8ToWide(std::string_view utf8);
std::string WideToUtf8(std::wstring_view wide);

// "<what>: <the system's message> (error <code>)", its StatusCode from the
// code: not found, permission denied, already exists, ... (like ErrnoError).
Status Win32Error(unsigned long code, std::string_view what);

// A kernel handle, closed when it goes out of scope. Null and
// INVALID_HANDLE_VALUE both mean "none" (Windows APIs fail with either).
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(HANDLE h) : h_(h) {}
  ~UniqueHandle() { Reset(); }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  UniqueHandle(UniqueHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}

  HANDLE get() const { return h_; }
  bool valid() const { return h_ != nullptr && h_ != INVALID_HANDLE_VALUE; }
  // For an API that writes a new handle through a pointer: closes the old one.
  HANDLE* out() {
    Reset();
    return &h_;
  }
  // Gives the handle up without closing it.
  HANDLE release() { return std::exchange(h_, nullptr); }
  void Reset() {
    if (valid()) ::CloseHandle(h_);
    h_ = nullptr;
  }

 private:
  HANDLE h_ = nullptr;
};

}  // namespace sentinel
