// files.h on Windows. A "link" is any reparse point (symbolic link,
// junction, mount point): nodes are opened with FILE_FLAG_OPEN_REPARSE_POINT,
// so the node itself is opened rather than what it points at, and checked
// through the handle (GetFileInformationByHandle) before use. Access rights
// come from the ACLs the directory passes on: the POSIX mode is not applied,
// and owners are not numbers (ChownNoFollow, ChmodNoFollow: Unimplemented).
#include "sentinel/base/files.h"

#include <fcntl.h>
#include <io.h>
#include <windows.h>

#include <filesystem>

#include "sentinel/base/win32.h"

namespace sentinel {
namespace {

using Handle = UniqueHandle;

bool IsReparsePoint(DWORD attributes) {
  return (attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0;
}

// The CreateFileW disposition for open(2)'s creation flags.
DWORD Disposition(int flags) {
  if ((flags & O_CREAT) != 0 && (flags & O_EXCL) != 0) return CREATE_NEW;
  if ((flags & O_CREAT) != 0 && (flags & O_TRUNC) != 0) return CREATE_ALWAYS;
  if ((flags & O_CREAT) != 0) return OPEN_ALWAYS;
  if ((flags & O_TRUNC) != 0) return TRUNCATE_EXISTING;
  return OPEN_EXISTING;
}

DWORD Access(int flags) {
  switch (flags & (O_RDONLY | O_WRONLY | O_RDWR)) {
    case O_WRONLY: return GENERIC_WRITE;
    case O_RDWR: return GENERIC_READ | GENERIC_WRITE;
    default: return GENERIC_READ;
  }
}

}  // namespace

Status RefuseSymlink(const std::string& path) {
  const DWORD attributes = ::GetFileAttributesW(Utf8ToWide(path).c_str());
  if (attributes == INVALID_FILE_ATTRIBUTES) return Status::Ok();  // nothing there (or not ours to judge)
  if (IsReparsePoint(attributes)) return RefusedPathError(path, "it is a symbolic link or junction");
  return Status::Ok();
}

Result<UniqueFd> OpenDirectoryNoFollow(const std::string& path) {
  Handle h(::CreateFileW(Utf8ToWide(path).c_str(), GENERIC_READ,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, OPEN_EXISTING,
                         FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, nullptr));
  if (h.get() == INVALID_HANDLE_VALUE) {
    const DWORD err = ::GetLastError();
    if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND)
      return NotFoundError(path + ": directory not found");
    return Win32Error(err, "opening directory " + path);
  }
  BY_HANDLE_FILE_INFORMATION info{};
  if (!::GetFileInformationByHandle(h.get(), &info)) return Win32Error(::GetLastError(), "stat " + path);
  if (IsReparsePoint(info.dwFileAttributes))
    return RefusedPathError(path, "it is a symbolic link or junction");
  if ((info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) == 0)
    return RefusedPathError(path, "it is not a directory");
  const int fd = ::_open_osfhandle(reinterpret_cast<intptr_t>(h.get()), _O_RDONLY);
  if (fd < 0) return InternalError("opening directory " + path + ": no descriptor for its handle");
  h.release();
  return UniqueFd(fd);
}

Result<UniqueFd> OpenRegularNoFollow(const std::string& path, int flags, mode_t /*mode*/) {
  Handle h(::CreateFileW(Utf8ToWide(path).c_str(), Access(flags),
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr, Disposition(flags),
                         FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, nullptr));
  if (h.get() == INVALID_HANDLE_VALUE) {
    const DWORD err = ::GetLastError();
    if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND)
      return NotFoundError(path + ": not found");
    if (err == ERROR_ACCESS_DENIED) {
      // CreateFileW cannot open a directory as a file: say what it is.
      const DWORD attributes = ::GetFileAttributesW(Utf8ToWide(path).c_str());
      if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0)
        return RefusedPathError(path, "it is a directory, not a regular file");
      return PermissionDeniedError("opening " + path + ": permission denied");
    }
    return Win32Error(err, "opening " + path);
  }
  BY_HANDLE_FILE_INFORMATION info{};
  if (!::GetFileInformationByHandle(h.get(), &info)) return Win32Error(::GetLastError(), "stat " + path);
  if (IsReparsePoint(info.dwFileAttributes))
    return RefusedPathError(path, "it is a symbolic link or junction");
  if ((info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0)
    return RefusedPathError(path, "it is a directory, not a regular file");
  if (::GetFileType(h.get()) != FILE_TYPE_DISK) return RefusedPathError(path, "it is not a regular file");
  if (info.nNumberOfLinks > 1)
    return RefusedPathError(path, "it has " + std::to_string(info.nNumberOfLinks) + " hard links");
  int crt_flags = _O_BINARY | (flags & (O_RDONLY | O_WRONLY | O_RDWR | O_APPEND));
  const int fd = ::_open_osfhandle(reinterpret_cast<intptr_t>(h.get()), crt_flags);
  if (fd < 0) return InternalError("opening " + path + ": no descriptor for its handle");
  h.release();
  return UniqueFd(fd);
}

Status ChownNoFollow(const std::string& path, mode_t /*type*/, uid_t /*uid*/, gid_t /*gid*/) {
  return UnimplementedError("chown " + path + ": Windows has no numeric owners (access comes from ACLs)");
}

Status ChmodNoFollow(const std::string& path, mode_t /*type*/, mode_t /*mode*/) {
  return UnimplementedError("chmod " + path + ": Windows has no POSIX modes (access comes from ACLs)");
}

Result<std::vector<std::string>> CreateDirectories(const std::string& dir, mode_t /*mode*/) {
  std::vector<std::string> created;
  if (dir.empty()) return created;
  std::filesystem::path cur;
  for (const auto& part : std::filesystem::u8path(dir)) {
    if (part.empty()) continue;  // a trailing separator
    cur /= part;
    if (!cur.has_relative_path()) continue;  // a drive or root: "C:", "\\"
    if (::CreateDirectoryW(cur.c_str(), nullptr)) {
      created.push_back(WideToUtf8(cur.native()));
    } else if (::GetLastError() != ERROR_ALREADY_EXISTS) {
      return Win32Error(::GetLastError(), "creating directory " + WideToUtf8(cur.native()));
    }
  }
  // The last level must be a real directory, not a link or junction to one.
  const std::string last = WideToUtf8(cur.native());
  const DWORD attributes = ::GetFileAttributesW(cur.c_str());
  if (attributes == INVALID_FILE_ATTRIBUTES) return Win32Error(::GetLastError(), "stat " + last);
  if (IsReparsePoint(attributes)) return RefusedPathError(last, "it is a symbolic link or junction");
  if ((attributes & FILE_ATTRIBUTE_DIRECTORY) == 0) return RefusedPathError(last, "it is not a directory");
  return created;
}

}  // namespace sentinel
