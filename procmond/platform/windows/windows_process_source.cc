#include "procmond/platform/windows/windows_process_source.h"

#include <windows.h>
// windows.h first: these need its types.
#include <psapi.h>
#include <sddl.h>
#include <tlhelp32.h>
#include <winternl.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <utility>

#include "sentinel/base/status.h"
#include "sentinel/base/win32.h"

namespace sentinel::procmond {

using nlohmann::json;

namespace {

constexpr NTSTATUS kStatusInfoLengthMismatch = static_cast<NTSTATUS>(0xC0000004UL);
constexpr NTSTATUS kStatusBufferTooSmall = static_cast<NTSTATUS>(0xC0000023UL);
constexpr NTSTATUS kStatusBufferOverflow = static_cast<NTSTATUS>(0x80000005UL);
constexpr NTSTATUS kStatusNotImplemented = static_cast<NTSTATUS>(0xC0000002UL);
constexpr NTSTATUS kStatusInvalidInfoClass = static_cast<NTSTATUS>(0xC0000003UL);
constexpr NTSTATUS kStatusInvalidParameter = static_cast<NTSTATUS>(0xC000000DUL);
// Windows 8.1 and later; not in mingw-w64's PROCESSINFOCLASS.
constexpr auto kProcessCommandLineInformation = static_cast<PROCESSINFOCLASS>(60);

constexpr size_t kInitialSpiBuffer = 512U << 10;
constexpr size_t kMaxSpiBuffer = 256U << 20;
constexpr int kMaxSpiAttempts = 8;
constexpr size_t kInitialCommandLineBuffer = 2048;
constexpr int kMaxQueryAttempts = 4;
constexpr DWORD kMaxImagePath = 32768;  // UNICODE_STRING's limit, in characters
constexpr int64_t kUnixEpochFiletime = 116444736000000000LL;
constexpr uint32_t kIdlePid = 0;
constexpr uint32_t kSystemPid = 4;
constexpr const char* kListingSpi = "NtQuerySystemInformation";
constexpr const char* kListingToolhelp = "Toolhelp32";

// mingw-w64 names the fields this file reads; check that they sit where the
// documented x64 layout has them (the rest are "Reserved" in the SDK).
static_assert(sizeof(void*) == 8, "SYSTEM_PROCESS_INFORMATION offsets below are x64's");
static_assert(offsetof(SYSTEM_PROCESS_INFORMATION, CreateTime) == 32);
static_assert(offsetof(SYSTEM_PROCESS_INFORMATION, KernelTime) == 48);
static_assert(offsetof(SYSTEM_PROCESS_INFORMATION, ImageName) == 56);
static_assert(offsetof(SYSTEM_PROCESS_INFORMATION, UniqueProcessId) == 80);
static_assert(offsetof(SYSTEM_PROCESS_INFORMATION, InheritedFromUniqueProcessId) == 88);
static_assert(offsetof(SYSTEM_PROCESS_INFORMATION, HandleCount) == 96);
static_assert(offsetof(SYSTEM_PROCESS_INFORMATION, SessionId) == 100);
static_assert(offsetof(SYSTEM_PROCESS_INFORMATION, VirtualMemoryCounters) +
                  offsetof(VM_COUNTERS, WorkingSetSize) ==
              144);
static_assert(offsetof(PEB, ProcessParameters) == 0x20);
static_assert(offsetof(RTL_USER_PROCESS_PARAMETERS, CommandLine) == 0x70);
// An entry must hold at least the fields read (the last one is WorkingSetSize).
constexpr size_t kSpiBytesRead = 152;

using Handle = UniqueHandle;

// Frees what a Windows API allocated with LocalAlloc.
struct LocalFreer {
  void operator()(void* p) const { ::LocalFree(p); }
};

int64_t MonotonicNow100ns() {
  using Ticks = std::chrono::duration<int64_t, std::ratio<1, 10'000'000>>;
  return std::chrono::duration_cast<Ticks>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t EpochMsFromFiletime(int64_t filetime) {
  return filetime <= kUnixEpochFiletime ? 0 : (filetime - kUnixEpochFiletime) / 10'000;
}

uint32_t PidOf(HANDLE h) {
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(h));
}

bool IsKernelProcess(uint32_t pid) {
  return pid == kIdlePid || pid == kSystemPid;
}

// The reason for a failed read as counted and stored: "exe: Access is denied (error 5)".
std::string Reason(const char* field, DWORD code) {
  return Win32Error(code, field).message();
}

void Fail(const char* field, DWORD code, json* errs, ScanErrors* errors) {
  std::string reason = Reason(field, code);
  (*errs)[field] = reason;
  errors->Add(reason);
}

// --- NtQuerySystemInformation(SystemProcessInformation) ---

// The image name of an entry, if its buffer lies inside the listing.
std::wstring ImageNameOf(const UNICODE_STRING& name, const unsigned char* base, size_t len) {
  const auto p = reinterpret_cast<uintptr_t>(name.Buffer);
  const auto begin = reinterpret_cast<uintptr_t>(base);
  const size_t bytes = name.Length & ~1U;
  if (bytes == 0 || p < begin || p - begin > len || len - (p - begin) < bytes) return {};
  std::wstring out(bytes / sizeof(wchar_t), L'\0');
  std::memcpy(out.data(), base + (p - begin), bytes);
  return out;
}

WindowsListedProcess FromSystemInformation(const SYSTEM_PROCESS_INFORMATION& e, const unsigned char* base,
                                           size_t len) {
  WindowsListedProcess l;
  l.pid = PidOf(e.UniqueProcessId);
  l.ppid = PidOf(e.InheritedFromUniqueProcessId);
  l.image_name = ImageNameOf(e.ImageName, base, len);
  l.create_time = e.CreateTime.QuadPart;
  l.cpu_time = static_cast<uint64_t>(e.KernelTime.QuadPart) + static_cast<uint64_t>(e.UserTime.QuadPart);
  l.working_set = e.VirtualMemoryCounters.WorkingSetSize;
  l.session_id = e.SessionId;
  l.threads = e.NumberOfThreads;
  l.handles = e.HandleCount;
  return l;
}

// Walks the listing's chain of entries; a malformed chain ends it.
void ParseSystemInformation(const unsigned char* buf, size_t len, std::vector<WindowsListedProcess>* out) {
  size_t off = 0;
  while (len - off >= kSpiBytesRead) {
    SYSTEM_PROCESS_INFORMATION e{};
    std::memcpy(&e, buf + off, std::min(sizeof e, len - off));
    out->push_back(FromSystemInformation(e, buf, len));
    if (e.NextEntryOffset == 0 || e.NextEntryOffset > len - off) break;
    off += e.NextEntryOffset;
  }
}

// --- The command line ---

bool IsBlank(wchar_t c) {
  return c == L' ' || c == L'\t';
}

// argv[0] into *arg; returns where the rest of the line starts.
size_t ProgramName(std::wstring_view line, std::wstring* arg) {
  if (line.front() == L'"') {
    const size_t close = line.find(L'"', 1);
    if (close == std::wstring_view::npos) {
      arg->assign(line.substr(1));
      return line.size();
    }
    arg->assign(line.substr(1, close - 1));
    return close + 1;
  }
  size_t end = 0;
  while (end < line.size() && !IsBlank(line[end])) ++end;
  arg->assign(line.substr(0, end));
  return end;
}

// The arguments after argv[0].
class ArgumentSplitter {
 public:
  explicit ArgumentSplitter(std::vector<std::string>* out) : out_(out) {}

  void Split(std::wstring_view s) {
    size_t i = 0;
    while (i < s.size()) i = Step(s, i);
    EndArgument();
  }

 private:
  size_t Step(std::wstring_view s, size_t i) {
    const wchar_t c = s[i];
    if (c == L'\\') return Backslashes(s, i);
    if (c == L'"') return Quotes(s, i);
    if (IsBlank(c) && quote_state_ == kOutside) {
      EndArgument();
    } else {
      arg_.push_back(c);
      started_ = true;
    }
    return i + 1;
  }

  // Backslashes are literal unless a quote follows them.
  size_t Backslashes(std::wstring_view s, size_t i) {
    size_t end = i;
    while (end < s.size() && s[end] == L'\\') ++end;
    const size_t n = end - i;
    started_ = true;
    if (end == s.size() || s[end] != L'"') {
      arg_.append(n, L'\\');
      return end;
    }
    arg_.append(n / 2, L'\\');
    if (n % 2 == 0) return end;  // the quote is a delimiter
    arg_.push_back(L'"');
    return end + 1;
  }

  // A run of quotes: the first opens or closes a quoted part, and every
  // third state change (a quote right after a closing one) is a literal quote.
  size_t Quotes(std::wstring_view s, size_t i) {
    started_ = true;
    while (i < s.size() && s[i] == L'"') {
      if (++quote_state_ == kLiteral) {
        arg_.push_back(L'"');
        quote_state_ = kOutside;
      }
      ++i;
    }
    if (quote_state_ == kJustClosed) quote_state_ = kOutside;
    return i;
  }

  void EndArgument() {
    if (started_) out_->push_back(WideToUtf8(arg_));
    arg_.clear();
    started_ = false;
  }

  static constexpr int kOutside = 0;
  static constexpr int kJustClosed = 2;
  static constexpr int kLiteral = 3;
  std::vector<std::string>* out_;
  std::wstring arg_;
  bool started_ = false;
  int quote_state_ = kOutside;  // 1: inside a quoted part
};

// The command line the process holds (in its PEB), as the kernel reads it
// for ProcessCommandLineInformation: needs only
// PROCESS_QUERY_LIMITED_INFORMATION.
NTSTATUS QueryCommandLine(HANDLE process, std::wstring* line) {
  std::vector<unsigned char> buf(kInitialCommandLineBuffer);
  NTSTATUS st = kStatusInfoLengthMismatch;
  for (int attempt = 0; attempt < kMaxQueryAttempts; ++attempt) {
    ULONG needed = 0;
    st = ::NtQueryInformationProcess(process, kProcessCommandLineInformation, buf.data(),
                                     static_cast<ULONG>(buf.size()), &needed);
    if (st != kStatusInfoLengthMismatch && st != kStatusBufferTooSmall && st != kStatusBufferOverflow) break;
    buf.resize(std::max<size_t>(needed, buf.size() * 2));
  }
  if (!NT_SUCCESS(st)) return st;
  UNICODE_STRING us{};
  std::memcpy(&us, buf.data(), sizeof us);
  *line = ImageNameOf(us, buf.data(), buf.size());
  // An answer whose buffer is not inside it is treated as no answer (the PEB is read instead).
  return line->empty() && us.Length != 0 ? kStatusInvalidInfoClass : st;
}

// Whether an NTSTATUS says the information class is not there (Windows
// before 8.1, Wine): then the PEB is read instead.
bool IsUnsupportedClass(NTSTATUS st) {
  return st == kStatusInvalidInfoClass || st == kStatusNotImplemented || st == kStatusInvalidParameter;
}

// Copies `size` bytes at `address` in the process; false on a failed or short read.
bool ReadRemote(HANDLE process, const void* address, void* out, size_t size) {
  SIZE_T got = 0;
  return ::ReadProcessMemory(process, address, out, size, &got) && got == size;
}

// The command line from the process's PEB (ProcessParameters->CommandLine),
// read with ReadProcessMemory: the fallback where the information class is
// missing. Needs PROCESS_QUERY_INFORMATION | PROCESS_VM_READ.
Result<std::wstring> ReadCommandLineFromPeb(uint32_t pid) {
  Handle process(::OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, FALSE, pid));
  if (!process.valid()) return Win32Error(::GetLastError(), "cmdline");
  PROCESS_BASIC_INFORMATION basic{};
  const NTSTATUS st =
      ::NtQueryInformationProcess(process.get(), ProcessBasicInformation, &basic, sizeof basic, nullptr);
  if (!NT_SUCCESS(st)) return Win32Error(::RtlNtStatusToDosError(st), "cmdline");
  const auto* peb = reinterpret_cast<const unsigned char*>(basic.PebBaseAddress);
  void* params = nullptr;
  UNICODE_STRING us{};
  if (peb == nullptr ||
      !ReadRemote(process.get(), peb + offsetof(PEB, ProcessParameters), &params, sizeof params) ||
      params == nullptr ||
      !ReadRemote(
          process.get(),
          static_cast<const unsigned char*>(params) + offsetof(RTL_USER_PROCESS_PARAMETERS, CommandLine), &us,
          sizeof us)) {
    return Win32Error(::GetLastError(), "cmdline");
  }
  std::wstring line((us.Length & ~1U) / sizeof(wchar_t), L'\0');
  if (!line.empty() && !ReadRemote(process.get(), us.Buffer, line.data(), line.size() * sizeof(wchar_t))) {
    return Win32Error(::GetLastError(), "cmdline");
  }
  return line;
}

// --- Tokens ---

// A variable-size token information class into *buf.
DWORD TokenInformation(HANDLE token, TOKEN_INFORMATION_CLASS cls, std::vector<unsigned char>* buf) {
  DWORD size = 0;
  ::GetTokenInformation(token, cls, nullptr, 0, &size);
  if (size == 0) return ::GetLastError();
  buf->resize(size);
  if (!::GetTokenInformation(token, cls, buf->data(), size, &size)) return ::GetLastError();
  return ERROR_SUCCESS;
}

std::optional<int64_t> LastSubAuthority(PSID sid) {
  if (!::IsValidSid(sid)) return std::nullopt;
  const UCHAR n = *::GetSidSubAuthorityCount(sid);
  if (n == 0) return std::nullopt;
  return static_cast<int64_t>(*::GetSidSubAuthority(sid, n - 1U));
}

std::optional<std::string> SidText(PSID sid) {
  wchar_t* raw = nullptr;
  if (!::ConvertSidToStringSidW(sid, &raw)) return std::nullopt;
  std::unique_ptr<wchar_t, LocalFreer> owned(raw);
  return WideToUtf8(owned.get());
}

const char* IntegrityName(int64_t rid) {
  if (rid < SECURITY_MANDATORY_LOW_RID) return "untrusted";
  if (rid < SECURITY_MANDATORY_MEDIUM_RID) return "low";
  if (rid < SECURITY_MANDATORY_HIGH_RID) return "medium";
  if (rid < SECURITY_MANDATORY_SYSTEM_RID) return "high";
  return "system";
}

const char* ElevationTypeName(TOKEN_ELEVATION_TYPE t) {
  switch (t) {
    case TokenElevationTypeDefault: return "default";
    case TokenElevationTypeFull: return "full";
    case TokenElevationTypeLimited: return "limited";
  }
  return nullptr;
}

}  // namespace

// --- SplitCommandLine ---

std::vector<std::string> SplitCommandLine(std::wstring_view line) {
  std::vector<std::string> argv;
  if (line.empty()) return argv;
  std::wstring program;
  size_t i = ProgramName(line, &program);
  argv.push_back(WideToUtf8(program));
  while (i < line.size() && IsBlank(line[i])) ++i;
  ArgumentSplitter(&argv).Split(line.substr(i));
  return argv;
}

// --- The once-per-instance reads ---

// Reads, through one process handle, what is read once per instance, into
// the instance and its platform_data keys.
class WindowsProcessSource::OnceReader {
 public:
  OnceReader(WindowsProcessSource* source, Instance* inst, ScanErrors* errors)
      : source_(source), inst_(inst), errors_(errors) {}

  void Read(uint32_t pid) {
    const bool kernel = IsKernelProcess(pid);
    if (kernel) pd_["kernel_process"] = true;
    if (pid != kIdlePid) ReadThroughHandle(pid, kernel);
    if (exited_) {
      errs_.clear();  // what failed failed because the process is gone: not an error
    } else {
      for (const auto& [field, reason] : errs_.items()) errors_->Add(reason.get<std::string>());
    }
    if (!errs_.empty()) pd_["errors"] = std::move(errs_);
    inst_->once = std::move(pd_);
    inst_->read_once = true;
  }

 private:
  void ReadThroughHandle(uint32_t pid, bool kernel) {
    Handle process(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
    if (!process.valid()) {
      const DWORD err = ::GetLastError();
      // ERROR_INVALID_PARAMETER: no such process any more.
      if (err == ERROR_INVALID_PARAMETER) return;
      Fail("open", err);
      if (err == ERROR_ACCESS_DENIED && !kernel) SkipHash(kHashSkipPermissionDenied);
      return;
    }
    if (!kernel) {
      ReadImagePath(process.get());
      ReadCommandLine(process.get(), pid);
    }
    ReadToken(process.get());
    if (!kernel) HashImage();
    DWORD code = 0;
    exited_ = !errs_.empty() && ::GetExitCodeProcess(process.get(), &code) && code != STILL_ACTIVE;
  }

  // A failed read, counted at the end unless the process turned out to have exited.
  void Fail(const char* field, DWORD code) { FailWith(field, Reason(field, code)); }
  void FailWith(const char* field, std::string reason) { errs_[field] = std::move(reason); }

  void ReadImagePath(HANDLE process) {
    std::wstring buf(MAX_PATH, L'\0');
    for (;;) {
      auto size = static_cast<DWORD>(buf.size());
      if (::QueryFullProcessImageNameW(process, 0, buf.data(), &size)) {
        buf.resize(size);
        break;
      }
      const DWORD err = ::GetLastError();
      if (err != ERROR_INSUFFICIENT_BUFFER || buf.size() >= kMaxImagePath) {
        Fail("exe", err);
        if (err == ERROR_ACCESS_DENIED) SkipHash(kHashSkipPermissionDenied);
        return;
      }
      buf.resize(std::min<size_t>(buf.size() * 4, kMaxImagePath));
    }
    inst_->exe_path = WideToUtf8(buf);
    image_path_ = std::move(buf);  // kept as UTF-16: a lossy name would not open
  }

  void ReadCommandLine(HANDLE process, uint32_t pid) {
    Result<std::wstring> line = CommandLineOf(process, pid);
    if (!line.ok()) {
      return FailWith("cmdline", line.status().message());
    }
    pd_["command_line_raw"] = WideToUtf8(*line);
    inst_->command_line = SplitCommandLine(*line);
  }

  static Result<std::wstring> CommandLineOf(HANDLE process, uint32_t pid) {
    std::wstring line;
    const NTSTATUS st = QueryCommandLine(process, &line);
    if (NT_SUCCESS(st)) return line;
    if (IsUnsupportedClass(st)) return ReadCommandLineFromPeb(pid);
    return Win32Error(::RtlNtStatusToDosError(st), "cmdline");
  }

  void ReadToken(HANDLE process) {
    HANDLE raw = nullptr;
    if (!::OpenProcessToken(process, TOKEN_QUERY, &raw)) {
      Fail("token", ::GetLastError());
      return;
    }
    Handle token(raw);
    ReadUser(token.get());
    ReadIntegrity(token.get());
    ReadElevation(token.get());
  }

  void ReadUser(HANDLE token) {
    std::vector<unsigned char> buf;
    if (DWORD err = TokenInformation(token, TokenUser, &buf); err != ERROR_SUCCESS) {
      return Fail("user", err);
    }
    PSID sid = reinterpret_cast<const TOKEN_USER*>(buf.data())->User.Sid;
    std::optional<std::string> text = SidText(sid);
    if (!text) return Fail("user", ::GetLastError());
    pd_["sid"] = *text;
    inst_->user_id = LastSubAuthority(sid);
    const Account& account = source_->AccountOf(sid, *text);
    inst_->user_name = account.name;
    if (!account.error.empty()) FailWith("user_name", account.error);
  }

  void ReadIntegrity(HANDLE token) {
    std::vector<unsigned char> buf;
    if (DWORD err = TokenInformation(token, TokenIntegrityLevel, &buf); err != ERROR_SUCCESS) {
      return Fail("integrity_level", err);
    }
    const auto* label = reinterpret_cast<const TOKEN_MANDATORY_LABEL*>(buf.data());
    if (std::optional<int64_t> rid = LastSubAuthority(label->Label.Sid)) {
      pd_["integrity_level"] = IntegrityName(*rid);
    } else {
      Fail("integrity_level", ERROR_INVALID_SID);
    }
  }

  void ReadElevation(HANDLE token) {
    TOKEN_ELEVATION elevation{};
    DWORD size = 0;
    if (::GetTokenInformation(token, TokenElevation, &elevation, sizeof elevation, &size)) {
      pd_["elevated"] = elevation.TokenIsElevated != 0;
    } else {
      Fail("elevation", ::GetLastError());
    }
    TOKEN_ELEVATION_TYPE type{};
    if (!::GetTokenInformation(token, TokenElevationType, &type, sizeof type, &size)) {
      return Fail("elevation_type", ::GetLastError());
    }
    if (const char* name = ElevationTypeName(type)) pd_["elevation_type"] = name;
  }

  void HashImage() {
    if (!source_->options_.hash_executables) return SkipHash(kHashSkipDisabled);
    if (!inst_->exe_path) return;  // why is in errors.exe (and hash_skipped when denied)
    WindowsExeHasher::Outcome o = source_->hasher_.Hash(image_path_);
    if (o.sha256) {
      inst_->exe_hash = std::move(o.sha256);
      return;
    }
    if (o.skipped == kHashSkipGone) return;  // exited (or the image moved) meanwhile
    SkipHash(o.skipped.c_str());
    if (o.skipped == kHashSkipPermissionDenied || o.skipped == kHashSkipIoError) {
      FailWith("exe_hash", "exe hash: " + o.detail);
    }
  }

  void SkipHash(const char* reason) {
    if (!source_->options_.hash_executables) reason = kHashSkipDisabled;
    pd_["hash_skipped"] = reason;
  }

  WindowsProcessSource* source_;
  Instance* inst_;
  ScanErrors* errors_;
  json pd_ = json::object();
  json errs_ = json::object();
  std::wstring image_path_;
  bool exited_ = false;
};

// --- WindowsProcessSource ---

WindowsProcessSource::WindowsProcessSource() : WindowsProcessSource(WindowsProcessSourceOptions{}) {}

WindowsProcessSource::WindowsProcessSource(WindowsProcessSourceOptions options)
    : options_(options), hasher_(options.max_hash_bytes, options.hash_cache_capacity) {}

void WindowsProcessSource::SetHashing(bool enabled, uint64_t max_hash_bytes) {
  options_.hash_executables = enabled;
  options_.max_hash_bytes = max_hash_bytes;
  hasher_.set_max_hash_bytes(max_hash_bytes);
}

WindowsProcessSource::~WindowsProcessSource() = default;

Status WindowsProcessSource::Enumerate(std::vector<models::ProcessRecord>* out, ScanErrors* errors) {
  ++scan_;
  const WindowsExeHasher::Counters before = hasher_.counters();
  RETURN_IF_ERROR(List(errors));
  const int64_t now = MonotonicNow100ns();
  const bool supplement = last_listing_ == kListingToolhelp;
  int64_t reused_hashes = 0;
  out->reserve(out->size() + listed_.size());
  for (WindowsListedProcess& l : listed_) {
    json scan_errs = json::object();
    if (supplement) Supplement(&l, &scan_errs, errors);
    bool fresh = false;
    Instance& inst = Track(l, &fresh);
    if (ShouldReadOnce(l.pid, inst)) {
      inst = Instance{.create_time = inst.create_time,
                      .cpu_time = inst.cpu_time,
                      .cpu_mono_100ns = inst.cpu_mono_100ns,
                      .seen_scan = inst.seen_scan};
      OnceReader(this, &inst, errors).Read(l.pid);
    } else if (inst.exe_hash) {
      ++reused_hashes;  // a hash kept for the instance counts as a cache hit, as on Linux
    }
    const std::optional<double> cpu = CpuPercent(l, fresh, now, &inst);
    out->push_back(MakeRecord(l, inst, cpu, scan_errs));
  }
  Forget();
  last_hash_counters_ = {hasher_.counters().hits - before.hits + reused_hashes,
                         hasher_.counters().misses - before.misses};
  return Status::Ok();
}

Status WindowsProcessSource::List(ScanErrors* errors) {
  listed_.clear();
  if (!options_.force_toolhelp) {
    Status spi = ListSystemInformation();
    if (spi.ok()) {
      last_listing_ = kListingSpi;
      return Status::Ok();
    }
    errors->Add("process list: " + spi.message());
    listed_.clear();
  }
  Status toolhelp = ListToolhelp();
  if (!toolhelp.ok()) return toolhelp.WithContext("listing processes");
  last_listing_ = kListingToolhelp;
  return Status::Ok();
}

Status WindowsProcessSource::ListSystemInformation() {
  if (spi_buffer_.size() < kInitialSpiBuffer) spi_buffer_.resize(kInitialSpiBuffer);
  ULONG returned = 0;
  NTSTATUS st = kStatusInfoLengthMismatch;
  for (int attempt = 0; attempt < kMaxSpiAttempts && st == kStatusInfoLengthMismatch; ++attempt) {
    returned = 0;
    st = ::NtQuerySystemInformation(SystemProcessInformation, spi_buffer_.data(),
                                    static_cast<ULONG>(spi_buffer_.size()), &returned);
    if (st != kStatusInfoLengthMismatch) break;
    // The table can grow between the calls: ask for more than was needed.
    const size_t next = std::max<size_t>(static_cast<size_t>(returned) + (64U << 10), spi_buffer_.size() * 2);
    if (next > kMaxSpiBuffer) break;
    spi_buffer_.resize(next);
  }
  if (!NT_SUCCESS(st)) {
    return Win32Error(::RtlNtStatusToDosError(st), "NtQuerySystemInformation(SystemProcessInformation)");
  }
  const size_t len = returned > 0 && returned <= spi_buffer_.size() ? returned : spi_buffer_.size();
  ParseSystemInformation(spi_buffer_.data(), len, &listed_);
  if (listed_.empty()) return InternalError("NtQuerySystemInformation(SystemProcessInformation): no process");
  return Status::Ok();
}

Status WindowsProcessSource::ListToolhelp() {
  Handle snapshot(::CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0));
  if (!snapshot.valid()) return Win32Error(::GetLastError(), "CreateToolhelp32Snapshot");
  PROCESSENTRY32W pe{};
  pe.dwSize = sizeof pe;
  if (!::Process32FirstW(snapshot.get(), &pe)) return Win32Error(::GetLastError(), "Process32FirstW");
  do {
    WindowsListedProcess l;
    l.pid = pe.th32ProcessID;
    l.ppid = pe.th32ParentProcessID;
    l.image_name.assign(pe.szExeFile, ::wcsnlen(pe.szExeFile, MAX_PATH));
    l.threads = pe.cntThreads;
    listed_.push_back(std::move(l));
  } while (::Process32NextW(snapshot.get(), &pe));
  return Status::Ok();
}

void WindowsProcessSource::Supplement(WindowsListedProcess* l, json* errs, ScanErrors* errors) const {
  if (l->pid == kIdlePid) return;
  if (DWORD session = 0; ::ProcessIdToSessionId(l->pid, &session)) {
    l->session_id = session;
  }
  Handle process(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, l->pid));
  if (!process.valid()) {
    const DWORD err = ::GetLastError();
    if (err != ERROR_INVALID_PARAMETER) Fail("open", err, errs, errors);
    return;
  }
  FILETIME create{}, exited{}, kernel{}, user{};
  if (::GetProcessTimes(process.get(), &create, &exited, &kernel, &user)) {
    auto u64 = [](const FILETIME& f) {
      return (static_cast<uint64_t>(f.dwHighDateTime) << 32) | f.dwLowDateTime;
    };
    l->create_time = static_cast<int64_t>(u64(create));
    l->cpu_time = u64(kernel) + u64(user);
  } else {
    Fail("times", ::GetLastError(), errs, errors);
  }
  PROCESS_MEMORY_COUNTERS memory{};
  if (::GetProcessMemoryInfo(process.get(), &memory, sizeof memory)) {
    l->working_set = memory.WorkingSetSize;
  } else {
    Fail("memory", ::GetLastError(), errs, errors);
  }
  if (DWORD handles = 0; ::GetProcessHandleCount(process.get(), &handles)) {
    l->handles = handles;
  } else {
    Fail("handles", ::GetLastError(), errs, errors);
  }
}

WindowsProcessSource::Instance& WindowsProcessSource::Track(const WindowsListedProcess& l, bool* fresh) {
  const int64_t create_time = l.create_time.value_or(0);
  auto [it, inserted] = instances_.try_emplace(l.pid);
  if (!inserted && it->second.create_time != create_time) {
    it->second = Instance{};  // the pid was reused
    inserted = true;
  }
  it->second.create_time = create_time;
  it->second.seen_scan = scan_;
  *fresh = inserted;
  return it->second;
}

std::optional<double> WindowsProcessSource::CpuPercent(const WindowsListedProcess& l, bool fresh,
                                                       int64_t now_mono, Instance* inst) {
  std::optional<double> percent;
  if (l.cpu_time) {
    percent = 0.0;  // first sight
    if (!fresh && inst->cpu_time && *l.cpu_time >= *inst->cpu_time && now_mono > inst->cpu_mono_100ns) {
      // Both in 100 ns units: CPU time over wall time is the share of one core.
      percent = static_cast<double>(*l.cpu_time - *inst->cpu_time) /
                static_cast<double>(now_mono - inst->cpu_mono_100ns) * 100.0;
    }
  }
  inst->cpu_time = l.cpu_time;
  inst->cpu_mono_100ns = now_mono;
  return percent;
}

bool WindowsProcessSource::ShouldReadOnce(uint32_t pid, const Instance& inst) const {
  if (!inst.read_once) return true;
  // Windows pids are multiples of 4: spread the refreshes by pid / 4.
  const uint32_t every = options_.refresh_every_scans;
  return every != 0 && (scan_ + pid / 4) % every == 0;
}

models::ProcessRecord WindowsProcessSource::MakeRecord(const WindowsListedProcess& l, const Instance& inst,
                                                       std::optional<double> cpu_percent,
                                                       const json& scan_errors) {
  models::ProcessRecord p;
  p.pid = l.pid;
  p.ppid = l.ppid;
  p.name = l.pid == kIdlePid && l.image_name.empty() ? "Idle" : WideToUtf8(l.image_name);
  p.start_time_ms = EpochMsFromFiletime(inst.create_time);
  p.cpu_percent = cpu_percent;
  if (l.working_set) p.memory_bytes = static_cast<int64_t>(*l.working_set);
  p.status = "running";
  p.exe_path = inst.exe_path;
  p.command_line = inst.command_line;
  p.user_id = inst.user_id;
  p.user_name = inst.user_name;
  p.exe_hash = inst.exe_hash;
  json pd = inst.once;
  if (l.session_id) pd["session_id"] = *l.session_id;
  if (l.threads) pd["threads"] = *l.threads;
  if (l.handles) pd["handles"] = *l.handles;
  for (const auto& [field, reason] : scan_errors.items()) pd["errors"][field] = reason;
  p.platform_data = pd.dump(-1, ' ', false, json::error_handler_t::replace);
  return p;
}

void WindowsProcessSource::Forget() {
  std::erase_if(instances_, [this](const auto& kv) { return kv.second.seen_scan != scan_; });
}

const WindowsProcessSource::Account& WindowsProcessSource::AccountOf(void* sid, const std::string& sid_text) {
  if (auto it = accounts_.find(sid_text); it != accounts_.end()) return it->second;
  Account account;
  DWORD name_len = 0;
  DWORD domain_len = 0;
  SID_NAME_USE use{};
  ::LookupAccountSidW(nullptr, sid, nullptr, &name_len, nullptr, &domain_len, &use);
  std::wstring name(name_len, L'\0');
  std::wstring domain(domain_len, L'\0');
  if (name_len > 0 && ::LookupAccountSidW(nullptr, sid, name.data(), &name_len,
                                          domain_len > 0 ? domain.data() : nullptr, &domain_len, &use)) {
    name.resize(name_len);
    domain.resize(domain_len);
    account.name = domain.empty() ? WideToUtf8(name) : WideToUtf8(domain) + "\\" + WideToUtf8(name);
  } else if (const DWORD err = ::GetLastError(); err != ERROR_NONE_MAPPED) {
    account.error = Reason("user_name", err);
  }
  return accounts_[sid_text] = std::move(account);
}

}  // namespace sentinel::procmond
