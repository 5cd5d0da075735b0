// Test support for procmond.exe's Windows tests (control_pipe_test.cc,
// service_test.cc): where the built procmond.exe is, and a client of its
// control pipe speaking the Linux framing. Test-only; Windows only.
#pragma once

#include <windows.h>

#include <chrono>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "sentinel/base/win32.h"
#include "sentinel/ipc/frame.h"

namespace sentinel::procmond::testing {

// The build gives a Linux path; under Wine the Linux root is drive Z:.
inline std::wstring ProcmondExe() {
  std::string path = SENTINEL_PROCMOND_EXE;
  if (!path.empty() && path[0] == '/') path = "Z:" + path;
  for (char& c : path)
    if (c == '/') c = '\\';
  return Utf8ToWide(path);
}

// A connected client of the pipe.
class PipeClient {
 public:
  // Retries until the server has created the pipe (or timeout_ms passes).
  PipeClient(const std::wstring& path, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      h_ = ::CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING, 0, nullptr);
      if (h_ != INVALID_HANDLE_VALUE) return;
      if (::GetLastError() == ERROR_PIPE_BUSY) ::WaitNamedPipeW(path.c_str(), 1000);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~PipeClient() {
    if (connected()) ::CloseHandle(h_);
  }
  bool connected() const { return h_ != INVALID_HANDLE_VALUE; }

  bool Send(const std::string& bytes) {
    DWORD n = 0;
    return ::WriteFile(h_, bytes.data(), static_cast<DWORD>(bytes.size()), &n, nullptr) && n == bytes.size();
  }
  // The next frame's JSON; null when the pipe closed first.
  nlohmann::json Receive() {
    ipc::FrameDecoder decoder;
    char buf[4096];
    while (true) {
      DWORD n = 0;
      if (!::ReadFile(h_, buf, sizeof buf, &n, nullptr) || n == 0) return nullptr;
      size_t used = 0;
      if (decoder.Feed(std::string_view(buf, n), &used) == ipc::FrameDecoder::State::kFrame)
        return nlohmann::json::parse(decoder.TakePayload());
    }
  }
  nlohmann::json Call(const nlohmann::json& request) {
    Result<std::string> frame = ipc::EncodeJsonFrame(request);
    if (!frame.ok() || !Send(*frame)) return nullptr;
    return Receive();
  }

 private:
  HANDLE h_ = INVALID_HANDLE_VALUE;
};

}  // namespace sentinel::procmond::testing
