// Checks of a process's executable image that /proc alone cannot answer
// (issue 17, cases 1 and 4). No caching of its own beyond the host's root
// and the hasher's: it runs on the once-per-instance reads only.
//
// Host view (platform_data exe_host_mismatch): procmond runs in the root
// mount namespace, so a stat() of the exe link's path here is the host's
// file at that path. A process in another mount namespace can have mounted
// something else over that path (an unprivileged user namespace is enough:
// `unshare -Urm`, then a bind mount over /usr/bin/sleep or a tmpfs over
// /usr/local/sbin); its image then differs from the host's file by device
// and inode. Compared only when the process's root directory is the host's
// (same device and inode): in a container or chroot with its own root the
// path names a file under that root, not the host's, and nothing is said.
//
// Memfd images (platform_data exe_memfd_seals, exe_memfd_runtime): the
// seals of the memfd, and, for a memfd named like runc's re-exec copy
// ("runc_cloned:"), the installed container runtime binary whose SHA-256 is
// the image's (a root-owned file, not writable by group or others, under a
// system directory), if any.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "procmond/hashing/exe_hasher.h"
#include "procmond/platform/linux/proc_fs.h"

namespace sentinel::procmond {

// The outcome of comparing an image with the host's file at its path.
struct HostCheck {
  std::optional<bool> mismatch;  // null: not compared (see `skipped`)
  std::string reason;            // why it is a mismatch
  std::string skipped;           // why it was not compared ("" when it was)
};

// The host-path check for the process at `pid_dir` whose exe link reads
// `exe_link`. `host_root`: procmond's own root directory. Only absolute
// paths of linked files are compared (not deleted images, memfds or
// anonymous mappings).
HostCheck CheckExeAgainstHost(ProcFs* fs, const char* pid_dir, std::string_view exe_link,
                              const ProcFs::FileId& host_root);

// The memfd name runc gives the sealed copy of its own binary it re-executes.
inline constexpr std::string_view kRuncClonePrefix = "/memfd:runc_cloned:";
// Every F_SEAL_* runc sets on that copy (SEAL | SHRINK | GROW | WRITE).
inline constexpr uint32_t kRuntimeCloneSeals = 0xf;

// The installed container runtime binaries (runc, crun, ... in the system
// directories) that could be cloned into a memfd and re-executed.
std::vector<std::string> RuntimeBinaryCandidates();

// The candidate (root-owned, not writable by group or others, in a directory
// with the same properties) whose SHA-256 is `sha256`; nullopt when none.
std::optional<std::string> RuntimeBinaryWithHash(ExeHasher* hasher, const std::string& sha256,
                                                 const std::vector<std::string>& candidates);

}  // namespace sentinel::procmond
