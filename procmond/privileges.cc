#include "procmond/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"

namespace sentinel::procmond {
namespace {

Result<cap_value_t> ParseCap(const std::string& name) {
  cap_value_t v;
  std::string lower = ToLower(name);
  if (cap_from_name(lower.c_str(), &v) != 0) {
    return InvalidArgumentError("privileges.keep_capabilities: unknown capability " + QuoteForMessage(name));
  }
  return v;
}

std::string CapName(cap_value_t v) {
  char* n = cap_to_name(v);
  std::string out = n ? n : std::to_string(v);
  cap_free(n);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Result<std::pair<uid_t, gid_t>> LookupUser(const std::string& user) {
  struct passwd pw {};
  struct passwd* result = nullptr;
  std::vector<char> buf(16384);
  int rc = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &result);
  if (rc != 0) return ErrnoError(rc, "looking up user " + QuoteForMessage(user));
  if (!result) {
    return NotFoundError("privileges.user: user " + QuoteForMessage(user) +
                         " does not exist (create it, e.g. useradd --system " + user +
                         ", or set privileges.user)");
  }
  return std::make_pair(pw.pw_uid, pw.pw_gid);
}

namespace {

// The paths may lie in a directory the user already owns: given away
// through a descriptor that never follows a link, and never a file with
// other hard links (base/files.h).
Status HandOverPaths(const PrivilegeOptions& options, uid_t uid, gid_t gid) {
  for (const auto& path : options.chown_paths) {
    Status st = ChownNoFollow(path, 0, uid, gid);
    if (st.ok() || st.code() == StatusCode::kNotFound) continue;
    if (IsRefusedPath(st)) return st;
    return st.WithContext("giving " + path + " to user " + options.user);
  }
  return Status::Ok();
}

// Bounding set first: dropping from it needs CAP_SETPCAP, which we still have.
Status DropBoundingSet(const std::vector<cap_value_t>& keep) {
  for (cap_value_t c = 0; c <= CAP_LAST_CAP; ++c) {
    const bool kept = std::find(keep.begin(), keep.end(), c) != keep.end();
    if (!kept && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
      return ErrnoError(errno, "dropping " + CapName(c) + " from the bounding set");
    }
  }
  return Status::Ok();
}

// Becomes uid:gid (and only gid as a group), keeping the permitted set for
// SetCapabilities.
Status SwitchIds(uid_t uid, gid_t gid) {
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return ErrnoError(errno, "PR_SET_KEEPCAPS");
  if (setgroups(1, &gid) != 0) return ErrnoError(errno, "setgroups");
  if (setresgid(gid, gid, gid) != 0) return ErrnoError(errno, "setresgid");
  if (setresuid(uid, uid, uid) != 0) return ErrnoError(errno, "setresuid");
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return ErrnoError(errno, "PR_SET_KEEPCAPS");
  return Status::Ok();
}

// Exactly `keep` permitted and effective; nothing ambient; no new privileges.
Status SetCapabilities(std::vector<cap_value_t> keep) {
  cap_t caps = cap_init();  // all sets empty
  if (!caps) return ErrnoError(errno, "cap_init");
  if (!keep.empty() &&
      (cap_set_flag(caps, CAP_PERMITTED, static_cast<int>(keep.size()), keep.data(), CAP_SET) != 0 ||
       cap_set_flag(caps, CAP_EFFECTIVE, static_cast<int>(keep.size()), keep.data(), CAP_SET) != 0)) {
    cap_free(caps);
    return ErrnoError(errno, "cap_set_flag");
  }
  int rc = cap_set_proc(caps);
  int err = errno;
  cap_free(caps);
  if (rc != 0) return ErrnoError(err, "cap_set_proc");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return ErrnoError(errno, "clearing ambient capabilities");
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoError(errno, "PR_SET_NO_NEW_PRIVS");
  return Status::Ok();
}

// Verify rather than trust: root must be gone for good.
Status CheckRootGone(uid_t uid) {
  uid_t r, e, s;
  if (getresuid(&r, &e, &s) != 0 || r != uid || e != uid || s != uid) {
    return InternalError("privilege drop did not take effect");
  }
  if (uid != 0 && setresuid(0, 0, 0) == 0)
    return InternalError("could regain root after dropping privileges");
  return Status::Ok();
}

}  // namespace

Result<PrivilegeReport> DropPrivileges(const PrivilegeOptions& options) {
  PrivilegeReport report;
  report.was_root = geteuid() == 0;
  if (!report.was_root) {
    report.uid = getuid();
    report.gid = getgid();
    report.missing = {"exe paths, hashes, environments and fds of other users' processes",
                      "processes whose /proc entries are restricted (hidepid)"};
    return report;
  }
  std::vector<cap_value_t> keep;
  for (const auto& name : options.keep_capabilities) {
    ASSIGN_OR_RETURN(cap_value_t v, ParseCap(name));
    keep.push_back(v);
  }
  ASSIGN_OR_RETURN(auto ids, LookupUser(options.user));
  auto [uid, gid] = ids;
  report.user = options.user;
  RETURN_IF_ERROR(HandOverPaths(options, uid, gid));
  RETURN_IF_ERROR(DropBoundingSet(keep));
  RETURN_IF_ERROR(SwitchIds(uid, gid));
  RETURN_IF_ERROR(SetCapabilities(keep));
  RETURN_IF_ERROR(CheckRootGone(uid));
  report.dropped = true;
  report.uid = uid;
  report.gid = gid;
  for (cap_value_t k : keep) report.kept.push_back(CapName(k));
  return report;
}

Result<CapabilityState> ReadCapabilityState(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  if (!f) return NotFoundError("no such process " + std::to_string(pid));
  CapabilityState st;
  std::string line;
  auto hex = [](const std::string& v) { return std::stoull(std::string(Trim(v)), nullptr, 16); };
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon), val = line.substr(colon + 1);
    if (key == "CapEff")
      st.effective = hex(val);
    else if (key == "CapPrm")
      st.permitted = hex(val);
    else if (key == "CapInh")
      st.inheritable = hex(val);
    else if (key == "CapBnd")
      st.bounding = hex(val);
    else if (key == "CapAmb")
      st.ambient = hex(val);
    else if (key == "NoNewPrivs")
      st.no_new_privs = Trim(val) == "1";
  }
  return st;
}

bool WatchSupervisor() {
  const char* value = std::getenv("SENTINELD_SUPERVISOR_PID");
  if (value == nullptr || *value == '\0') return true;
  char* end = nullptr;
  const long supervisor = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || supervisor <= 1) return true;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  // The supervisor may have died before the signal was armed.
  return getppid() == static_cast<pid_t>(supervisor);
}

bool Supervised() {
  const char* value = std::getenv("SENTINELD_SUPERVISOR_PID");  // NOLINT(concurrency-mt-unsafe): main thread
  return value != nullptr && *value != '\0';
}

}  // namespace sentinel::procmond
