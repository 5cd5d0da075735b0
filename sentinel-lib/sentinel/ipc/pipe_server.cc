#include "sentinel/ipc/pipe_server.h"

#include <windows.h>
// windows.h first: sddl.h needs its types.
#include <sddl.h>

#include <algorithm>
#include <string_view>
#include <utility>

#include "sentinel/base/time.h"
#include "sentinel/base/win32.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::ipc {
namespace {

constexpr const char* kSystemSid = "S-1-5-18";
constexpr const char* kAdministratorsSid = "S-1-5-32-544";
constexpr DWORD kPipeBuffer = 64 * 1024;

using Handle = UniqueHandle;

std::string SidToString(PSID sid) {
  wchar_t* text = nullptr;
  if (!::ConvertSidToStringSidW(sid, &text)) return "";
  std::string out = WideToUtf8(text);
  ::LocalFree(text);
  return out;
}

// The token's TOKEN_INFORMATION_CLASS record, in a buffer of the size it needs.
std::vector<unsigned char> TokenInfo(HANDLE token, TOKEN_INFORMATION_CLASS cls) {
  DWORD size = 0;
  ::GetTokenInformation(token, cls, nullptr, 0, &size);
  std::vector<unsigned char> buf(size);
  if (size == 0 || !::GetTokenInformation(token, cls, buf.data(), size, &size)) return {};
  return buf;
}

std::string TokenUserSid(HANDLE token) {
  std::vector<unsigned char> buf = TokenInfo(token, TokenUser);
  if (buf.empty()) return "";
  return SidToString(reinterpret_cast<TOKEN_USER*>(buf.data())->User.Sid);
}

// Whether the token holds the Administrators group, enabled (an elevated
// administrator; a filtered UAC token has it for deny only).
bool HasEnabledAdministrators(HANDLE token) {
  std::vector<unsigned char> buf = TokenInfo(token, TokenGroups);
  if (buf.empty()) return false;
  const auto* groups = reinterpret_cast<TOKEN_GROUPS*>(buf.data());
  for (DWORD i = 0; i < groups->GroupCount; ++i) {
    const SID_AND_ATTRIBUTES& g = groups->Groups[i];
    if ((g.Attributes & SE_GROUP_ENABLED) != 0 && (g.Attributes & SE_GROUP_USE_FOR_DENY_ONLY) == 0 &&
        SidToString(g.Sid) == kAdministratorsSid) {
      return true;
    }
  }
  return false;
}

Result<std::string> OwnSid() {
  Handle token;
  if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, token.out()))
    return Win32Error(::GetLastError(), "reading procmond's own token");
  std::string sid = TokenUserSid(token.get());
  if (sid.empty()) return InternalError("reading procmond's own token: no user SID");
  return sid;
}

// The client's token: impersonated (what it connected as), or where that is
// not available the token of the process at the other end.
Handle ClientToken(HANDLE pipe, ULONG pid) {
  Handle token;
  if (::ImpersonateNamedPipeClient(pipe)) {
    ::OpenThreadToken(::GetCurrentThread(), TOKEN_QUERY, TRUE, token.out());
    ::RevertToSelf();
  }
  if (!token.valid() && pid != 0) {
    Handle process(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
    if (process.valid()) ::OpenProcessToken(process.get(), TOKEN_QUERY, token.out());
  }
  return token;
}

enum class Io { kOk, kClosed, kTimedOut, kStopped, kFailed };

// Waits for an overlapped operation on `pipe`, or the stop event, or the timeout.
Io Finish(HANDLE pipe, OVERLAPPED* ov, BOOL started, HANDLE stop, int64_t timeout_ms, DWORD* bytes) {
  if (!started) {
    const DWORD err = ::GetLastError();
    if (err == ERROR_BROKEN_PIPE || err == ERROR_NO_DATA || err == ERROR_PIPE_NOT_CONNECTED)
      return Io::kClosed;
    if (err != ERROR_IO_PENDING && err != ERROR_MORE_DATA) return Io::kFailed;
  }
  HANDLE events[2] = {ov->hEvent, stop};
  const DWORD wait = static_cast<DWORD>(std::clamp<int64_t>(timeout_ms, 0, 0x7fffffff));
  const DWORD which = ::WaitForMultipleObjects(2, events, FALSE, wait);
  if (which != WAIT_OBJECT_0) {
    ::CancelIoEx(pipe, ov);
    ::GetOverlappedResult(pipe, ov, bytes, TRUE);  // the cancelled operation ends before ov goes away
    return which == WAIT_OBJECT_0 + 1 ? Io::kStopped : Io::kTimedOut;
  }
  if (!::GetOverlappedResult(pipe, ov, bytes, FALSE)) {
    const DWORD err = ::GetLastError();
    if (err == ERROR_MORE_DATA) return Io::kOk;
    if (err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED) return Io::kClosed;
    return Io::kFailed;
  }
  return Io::kOk;
}

}  // namespace

struct PipeServer::Impl {
  Handle pipe;
  Handle stop;     // manual-reset: Stop() sets it
  Handle io_done;  // the overlapped operations' event
  std::string own_sid;

  OVERLAPPED Overlapped() const {
    OVERLAPPED ov{};
    ::ResetEvent(io_done.get());
    ov.hEvent = io_done.get();
    return ov;
  }
  Io Read(char* buf, DWORD size, int64_t timeout_ms, DWORD* got) {
    OVERLAPPED ov = Overlapped();
    *got = 0;
    const BOOL ok = ::ReadFile(pipe.get(), buf, size, nullptr, &ov);
    return Finish(pipe.get(), &ov, ok, stop.get(), timeout_ms, got);
  }
  Io Write(const std::string& data, int64_t timeout_ms) {
    size_t sent = 0;
    while (sent < data.size()) {
      OVERLAPPED ov = Overlapped();
      DWORD n = 0;
      const BOOL ok =
          ::WriteFile(pipe.get(), data.data() + sent, static_cast<DWORD>(data.size() - sent), nullptr, &ov);
      const Io r = Finish(pipe.get(), &ov, ok, stop.get(), timeout_ms, &n);
      if (r != Io::kOk) return r;
      sent += n;
    }
    return Io::kOk;
  }
  Io Connect() {
    OVERLAPPED ov = Overlapped();
    if (::ConnectNamedPipe(pipe.get(), &ov)) return Io::kOk;
    const DWORD err = ::GetLastError();
    if (err == ERROR_PIPE_CONNECTED) return Io::kOk;  // connected between create and connect
    if (err != ERROR_IO_PENDING) return Io::kFailed;
    DWORD unused = 0;
    return Finish(pipe.get(), &ov, FALSE, stop.get(), INFINITE, &unused);
  }
  bool Stopping() const { return ::WaitForSingleObject(stop.get(), 0) == WAIT_OBJECT_0; }
  // After a last frame (a refusal, a bad frame): DisconnectNamedPipe would
  // discard what the client has not read yet, so wait (at most timeout_ms,
  // reading and dropping anything more it sends) until it closes its end.
  void Linger(int64_t timeout_ms) {
    const int64_t deadline = MonotonicMs() + timeout_ms;
    char sink[512];
    DWORD got = 0;
    while (Read(sink, sizeof sink, deadline - MonotonicMs(), &got) == Io::kOk) {
    }
  }
};

std::string PipePath(const std::string& name) {
  return "\\\\.\\pipe\\" + name;
}

PipeServer::PipeServer(PipeServerOptions options, Handlers handlers)
    : options_(std::move(options)), handlers_(std::move(handlers)), impl_(std::make_unique<Impl>()) {
  path_ = PipePath(options_.pipe_name);
}

PipeServer::~PipeServer() {
  Stop();
}

Result<std::unique_ptr<PipeServer>> PipeServer::Listen(PipeServerOptions options, Handlers handlers) {
  const std::string& name = options.pipe_name;
  if (name.empty() || name.size() > 200 || name.find_first_of("\\/:") != std::string::npos)
    return InvalidArgumentError("pipe name \"" + name + "\" is empty, too long or holds \\ / :");
  for (const std::string& sid : options.allowed_sids) {
    PSID parsed = nullptr;
    if (!::ConvertStringSidToSidW(Utf8ToWide(sid).c_str(), &parsed))
      return InvalidArgumentError("allowed SID \"" + sid + "\" is not a SID (S-1-5-...)");
    ::LocalFree(parsed);
  }
  std::unique_ptr<PipeServer> server(new PipeServer(std::move(options), std::move(handlers)));
  Impl& impl = *server->impl_;
  ASSIGN_OR_RETURN(impl.own_sid, OwnSid());

  // Only LocalSystem, Administrators, procmond's own user and the allowed SIDs may open it.
  std::string sddl = "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;" + impl.own_sid + ")";
  for (const std::string& sid : server->options_.allowed_sids) sddl += "(A;;GRGW;;;" + sid + ")";
  PSECURITY_DESCRIPTOR sd = nullptr;
  if (!::ConvertStringSecurityDescriptorToSecurityDescriptorW(Utf8ToWide(sddl).c_str(), SDDL_REVISION_1, &sd,
                                                              nullptr))
    return Win32Error(::GetLastError(), "building the security descriptor of " + server->path_);
  SECURITY_ATTRIBUTES sa{sizeof(SECURITY_ATTRIBUTES), sd, FALSE};
  *impl.pipe.out() =
      ::CreateNamedPipeW(Utf8ToWide(server->path_).c_str(),
                         PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE | FILE_FLAG_OVERLAPPED,
                         PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
                         kPipeBuffer, kPipeBuffer, 0, &sa);
  const DWORD err = ::GetLastError();
  ::LocalFree(sd);
  if (!impl.pipe.valid()) {
    if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY)
      return AlreadyExistsError(server->path_ + ": another process already serves this pipe");
    return Win32Error(err, "creating " + server->path_);
  }
  *impl.stop.out() = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
  *impl.io_done.out() = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
  if (!impl.stop.valid() || !impl.io_done.valid()) return Win32Error(::GetLastError(), "CreateEvent");
  return server;
}

Status PipeServer::Start() {
  if (thread_.joinable()) return FailedPreconditionError(path_ + ": already serving");
  thread_ = std::thread([this] { Serve(); });
  return Status::Ok();
}

void PipeServer::Stop() {
  if (impl_ && impl_->stop.valid()) ::SetEvent(impl_->stop.get());
  if (thread_.joinable()) thread_.join();
  if (impl_) impl_->pipe.Reset();
}

PipeServerStats PipeServer::stats() const {
  return {accepted_.load(),   requests_.load(),     refused_.load(),
          bad_frames_.load(), bad_requests_.load(), timeouts_.load()};
}

void PipeServer::Serve() {
  Impl& impl = *impl_;
  while (!impl.Stopping()) {
    const Io connected = impl.Connect();
    if (connected == Io::kStopped) break;
    if (connected != Io::kOk) {
      telemetry::LogWarn("control pipe: accepting a client failed",
                         {{"component", options_.component}, {"error", ::GetLastError()}});
      ::DisconnectNamedPipe(impl.pipe.get());
      ::WaitForSingleObject(impl.stop.get(), 100);
      continue;
    }
    ++accepted_;
    ServeClient();
    ::DisconnectNamedPipe(impl.pipe.get());
  }
}

std::optional<std::string> PipeServer::RefusedClient() {
  Impl& impl = *impl_;
  ULONG pid = 0;
  ::GetNamedPipeClientProcessId(impl.pipe.get(), &pid);
  client_pid_ = static_cast<int64_t>(pid);
  Handle token = ClientToken(impl.pipe.get(), pid);
  if (!token.valid()) return "permission denied: the caller's token could not be read";
  const std::string sid = TokenUserSid(token.get());
  const auto& allowed = options_.allowed_sids;
  if (sid == impl.own_sid || sid == kSystemSid || HasEnabledAdministrators(token.get()) ||
      std::find(allowed.begin(), allowed.end(), sid) != allowed.end()) {
    return std::nullopt;
  }
  telemetry::LogWarn("control connection refused: caller not allowed",
                     {{"component", options_.component}, {"sid", sid}, {"pid", pid}});
  return "permission denied: " + (sid.empty() ? std::string("an unknown user") : sid) + " may not use " +
         path_;
}

void PipeServer::ServeClient() {
  Impl& impl = *impl_;
  if (std::optional<std::string> why = RefusedClient()) {
    ++refused_;
    if (Result<std::string> frame = EncodeJsonFrame(MakeError(nullptr, *why)); frame.ok())
      impl.Write(*frame, options_.request_timeout_ms);
    impl.Linger(options_.request_timeout_ms);
    return;
  }
  FrameDecoder decoder;
  char buf[4096];
  int64_t deadline = MonotonicMs() + options_.request_timeout_ms;
  while (true) {
    DWORD got = 0;
    const Io r = impl.Read(buf, sizeof buf, deadline - MonotonicMs(), &got);
    if (r == Io::kTimedOut) ++timeouts_;
    if (r != Io::kOk) return;
    std::string_view data(buf, got);
    while (!data.empty()) {
      size_t used = 0;
      const FrameDecoder::State state = decoder.Feed(data, &used);
      data.remove_prefix(used);
      if (state == FrameDecoder::State::kError) {
        ++bad_frames_;
        if (Result<std::string> frame = EncodeJsonFrame(MakeError(nullptr, "bad frame: " + decoder.error()));
            frame.ok())
          impl.Write(*frame, options_.request_timeout_ms);
        impl.Linger(options_.request_timeout_ms);
        return;
      }
      if (state == FrameDecoder::State::kFrame) {
        if (impl.Write(Reply(decoder.TakePayload()), options_.request_timeout_ms) != Io::kOk) return;
        deadline = MonotonicMs() + options_.request_timeout_ms;
      }
    }
  }
}

std::string PipeServer::Reply(const std::string& payload) {
  ++requests_;
  nlohmann::json reply;
  Result<Request> req = ParseRequest(payload);
  if (!req.ok()) {
    ++bad_requests_;
    reply = MakeError(nullptr, "bad request: " + req.status().message());
  } else {
    req->peer_pid = client_pid_;
    bool unknown = false;
    reply = Answer(handlers_, *req, &unknown);
    if (unknown) ++bad_requests_;
  }
  Result<std::string> frame = EncodeJsonFrame(reply);
  if (!frame.ok()) frame = EncodeJsonFrame(MakeError(reply.value("id", nlohmann::json()), "reply too large"));
  return frame.ok() ? *frame : std::string();
}

}  // namespace sentinel::ipc
