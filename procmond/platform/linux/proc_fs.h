// The /proc I/O LinuxProcessSource does, behind a small interface (in the
// manner of LevelDB's Env): the real one reads a procfs mount (or any
// directory laid out like one); a test's fake tree implements it too.
//
// Paths are relative to the root of the tree: "stat", "123/status",
// "123/ns/pid". A process that is gone (ENOENT, ESRCH) reads as NotFound;
// other errors name what failed by its path below the PID directory
// ("status", "ns/pid", "exe"), as platform_data.errors shows them.
//
// Not thread-safe: one instance per LinuxProcessSource.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "procmond/hashing/exe_hasher.h"
#include "sentinel/base/files.h"
#include "sentinel/base/status.h"

namespace sentinel::procmond {

class ProcFs {
 public:
  virtual ~ProcFs() = default;

  // Reads `rel` whole into *out. `seq_file`: the file is produced in one
  // piece (stat, status), so a short read is the end of it. `keep`: on
  // success the file is left open there, for Reread().
  virtual Status ReadFile(const char* rel, std::string* out, bool seq_file = false,
                          UniqueFd* keep = nullptr) = 0;
  // Reads a file kept open by ReadFile() again from its start; false when
  // its task is gone (procfs: ESRCH, never a new process reusing the pid).
  virtual bool Reread(int fd, std::string* out) = 0;
  // The target of the link `rel` into *out (its storage reused).
  virtual Status ReadLink(const char* rel, std::string* out) = 0;
  // The numeric entries of the root, in directory order.
  virtual Status ListPids(std::vector<int32_t>* pids) = 0;
  // The owner of the directory `pid_dir`: on Linux the task's effective
  // uid:gid (root for kernel threads).
  struct Owner {
    uint32_t uid = 0;
    uint32_t gid = 0;
  };
  virtual Result<Owner> OwnerOf(const char* pid_dir) = 0;
  // Hashes the executable behind the link `rel` ("123/exe").
  virtual ExeHasher::Outcome HashExe(ExeHasher* hasher, const char* rel) = 0;
  // The identity of the file `rel` resolves to, links followed ("123/exe":
  // the image the process runs; "123/root": its root directory).
  struct FileId {
    uint64_t dev = 0;
    uint64_t ino = 0;
    uint64_t nlink = 0;
    bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino; }
  };
  virtual Result<FileId> StatFollow(const char* rel) = 0;
  // The F_SEAL_* bits of the memfd `rel` resolves to ("123/exe").
  virtual Result<uint32_t> MemfdSeals(const char* rel) = 0;
  // The link count and owner of the file behind the link `rel` ("123/exe").
  struct FileLinks {
    uint64_t nlink = 0;
    uint32_t uid = 0;
  };
  virtual Result<FileLinks> LinksOf(const char* rel) = 0;
  // Whether a file kept open follows its task (procfs): regenerated at each
  // read, ESRCH once the task is gone. Otherwise nothing is kept open.
  virtual bool KeepsFilesLive() const = 0;
};

// The real /proc (or a directory laid out like it) at `root`.
Result<std::unique_ptr<ProcFs>> OpenProcFs(const std::string& root);

}  // namespace sentinel::procmond
