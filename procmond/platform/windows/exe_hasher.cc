#include "procmond/platform/windows/exe_hasher.h"

#include <windows.h>

#include <functional>
#include <utility>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/base/win32.h"
#include "sentinel/crypto/sha256.h"

namespace sentinel::procmond {

namespace {

constexpr DWORD kShareAll = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
constexpr size_t kReadChunk = 1 << 20;

using FileHandle = UniqueHandle;

const char* ReasonForError(DWORD err) {
  switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_DELETE_PENDING: return kHashSkipGone;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
    case ERROR_PRIVILEGE_NOT_HELD: return kHashSkipPermissionDenied;
    default: return kHashSkipIoError;
  }
}

// A path CreateFileW opens whatever its length: \\?\ (or \\?\UNC\) before
// an absolute path of MAX_PATH characters or more.
std::wstring OpenablePath(const std::wstring& path) {
  if (path.size() < MAX_PATH || path.starts_with(LR"(\\?\)")) return path;
  if (path.starts_with(LR"(\\)")) return LR"(\\?\UNC\)" + path.substr(2);
  if (path.size() >= 3 && path[1] == L':' && path[2] == L'\\') return LR"(\\?\)" + path;
  return path;
}

int64_t FromLarge(const LARGE_INTEGER& v) {
  return static_cast<int64_t>(v.QuadPart);
}

// What ReadIdentity found: the key, or the failing call's error.
struct IdentityRead {
  WindowsExeHasher::Key key;
  bool regular = false;
  DWORD error = ERROR_SUCCESS;  // set when the identity could not be read
  const char* step = "";
};

// The 128-bit id and 64-bit serial where the file system has them.
void ReadFileId(HANDLE h, const BY_HANDLE_FILE_INFORMATION& info, WindowsExeHasher::Key* key) {
  FILE_ID_INFO id{};
  if (::GetFileInformationByHandleEx(h, FileIdInfo, &id, sizeof id)) {
    uint64_t high = 0;
    uint64_t low = 0;
    for (int i = 0; i < 8; ++i) {
      low |= static_cast<uint64_t>(id.FileId.Identifier[i]) << (8 * i);
      high |= static_cast<uint64_t>(id.FileId.Identifier[8 + i]) << (8 * i);
    }
    key->volume = id.VolumeSerialNumber;
    key->id_high = high;
    key->id_low = low;
    return;
  }
  // Older file systems (FAT) and older Wine: the 64-bit index.
  key->volume = info.dwVolumeSerialNumber;
  key->id_high = 0;
  key->id_low = (static_cast<uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow;
}

IdentityRead ReadIdentity(HANDLE h) {
  IdentityRead r;
  BY_HANDLE_FILE_INFORMATION info{};
  if (!::GetFileInformationByHandle(h, &info)) {
    r.error = ::GetLastError();
    r.step = "GetFileInformationByHandle";
    return r;
  }
  FILE_BASIC_INFO basic{};
  if (!::GetFileInformationByHandleEx(h, FileBasicInfo, &basic, sizeof basic)) {
    r.error = ::GetLastError();
    r.step = "GetFileInformationByHandleEx(FileBasicInfo)";
    return r;
  }
  constexpr DWORD kNotFile = FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE;
  r.regular = (info.dwFileAttributes & kNotFile) == 0 && ::GetFileType(h) == FILE_TYPE_DISK;
  ReadFileId(h, info, &r.key);
  r.key.size = (static_cast<uint64_t>(info.nFileSizeHigh) << 32) | info.nFileSizeLow;
  r.key.write_time = FromLarge(basic.LastWriteTime);
  r.key.change_time = FromLarge(basic.ChangeTime);
  return r;
}

std::string Hex(const crypto::Sha256Digest& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(d.size() * 2);
  for (uint8_t b : d) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

// The digest of `h` from its start to its end, or why not: ReadFile's error,
// or ResourceExhausted past max_bytes (it grew while being read).
Result<std::string> HashHandle(HANDLE h, uint64_t max_bytes) {
  crypto::Sha256 sha;
  std::vector<char> buf(kReadChunk);
  uint64_t total = 0;
  for (;;) {
    DWORD n = 0;
    if (!::ReadFile(h, buf.data(), static_cast<DWORD>(buf.size()), &n, nullptr)) {
      return Win32Error(::GetLastError(), "read");
    }
    if (n == 0) break;
    total += n;
    if (total > max_bytes) return ResourceExhaustedError("grew past max_hash_bytes while hashing");
    sha.Update(buf.data(), n);
  }
  return Hex(sha.Finish());
}

std::string TooLargeDetail(uint64_t size, uint64_t max) {
  return std::to_string(size) + " bytes > max_hash_bytes " + std::to_string(max);
}

}  // namespace

WindowsExeHasher::WindowsExeHasher(uint64_t max_hash_bytes, size_t capacity)
    : max_hash_bytes_(max_hash_bytes), cache_(capacity) {}

size_t WindowsExeHasher::KeyHash::operator()(const Key& k) const {
  size_t h = std::hash<uint64_t>()(k.id_low);
  auto mix = [&h](uint64_t v) {
    h ^= std::hash<uint64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  };
  mix(k.id_high);
  mix(k.volume);
  mix(k.size);
  mix(static_cast<uint64_t>(k.write_time));
  mix(static_cast<uint64_t>(k.change_time));
  return h;
}

WindowsExeHasher::Outcome WindowsExeHasher::Hash(const std::wstring& path) {
  // Attributes only: on a hit the file's content is never opened for reading.
  // Backup semantics lets a directory be opened (then reported as
  // not_regular_file, not as access denied).
  FileHandle attr(::CreateFileW(OpenablePath(path).c_str(), FILE_READ_ATTRIBUTES, kShareAll, nullptr,
                                OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  if (!attr.valid()) {
    const DWORD err = ::GetLastError();
    return Skip(ReasonForError(err), Win32Error(err, "open").message());
  }
  const IdentityRead id = ReadIdentity(attr.get());
  if (id.error != ERROR_SUCCESS)
    return Skip(ReasonForError(id.error), Win32Error(id.error, id.step).message());
  if (!id.regular) return Skip(kHashSkipNotRegular, "not a regular file");
  if (auto hit = cache_.Lookup(id.key)) return *std::move(hit);
  if (id.key.size > max_hash_bytes_) {
    // Not cached: the identity already decides it without reading.
    return Skip(kHashSkipTooLarge, TooLargeDetail(id.key.size, max_hash_bytes_));
  }
  return HashMiss(attr.get(), id.key);
}

WindowsExeHasher::Outcome WindowsExeHasher::HashMiss(void* attr_handle, const Key& key) {
  // The same file object, not whatever the path names by now.
  FileHandle file(::ReOpenFile(static_cast<HANDLE>(attr_handle), GENERIC_READ, kShareAll,
                               FILE_FLAG_SEQUENTIAL_SCAN | FILE_FLAG_BACKUP_SEMANTICS));
  if (!file.valid()) {
    const DWORD err = ::GetLastError();
    std::string reason = ReasonForError(err);
    std::string detail = Win32Error(err, "open for reading").message();
    // It exists but may not be read: remember that for its key so the next
    // process running it does not retry.
    if (err == ERROR_ACCESS_DENIED) return cache_.RememberSkip(key, reason, detail);
    return Skip(std::move(reason), std::move(detail));
  }
  const IdentityRead before = ReadIdentity(file.get());
  if (before.error != ERROR_SUCCESS) {
    return Skip(kHashSkipIoError, Win32Error(before.error, before.step).message());
  }
  if (before.key.size > max_hash_bytes_) {
    return Skip(kHashSkipTooLarge, TooLargeDetail(before.key.size, max_hash_bytes_));
  }
  Result<std::string> digest = HashHandle(file.get(), max_hash_bytes_);
  const IdentityRead after = ReadIdentity(file.get());
  if (!digest.ok()) {
    if (digest.status().code() == StatusCode::kResourceExhausted) {
      return Skip(kHashSkipChanged, digest.status().message());
    }
    return Skip(kHashSkipIoError, digest.status().message());
  }
  if (after.error != ERROR_SUCCESS || !(before.key == after.key)) {
    // Written to while it was read: the digest matches no version of the file.
    return Skip(kHashSkipChanged, "file changed while hashing");
  }
  return cache_.Hashed(before.key, std::move(*digest));
}

}  // namespace sentinel::procmond
