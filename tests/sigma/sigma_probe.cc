// sigma_probe: replays processes for the Sigma scenario tests
// (sigma_process_harness.h) as real execs, without touching the host's files.
// Statically linked: it runs under any path, whatever the mount namespace
// hides. Its role comes from SENTINEL_SIGMA_PROBE:
//
// - unset: a replayed process (the exec the rule must or must not match):
//   exits 0 at once. Every image and parent image of a scenario is this file.
// - "stage": reads a plan on stdin. In a private mount namespace
//   (unshare(CLONE_NEWNS), / made a slave so nothing propagates back) it
//   bind-mounts itself over every image and parent image path; a path or
//   directory that does not exist is created in an overlay (lower = the
//   nearest existing directory, upper = a tmpfs) mounted over that directory,
//   so nothing is hidden and nothing on the host changes. Then, for each
//   process in turn, it starts the parent: execve(parent_image, parent_argv)
//   with role "parent". Prints one line per process on stdout:
//   "<index> <parent pid> ok <pid> <exit code>" or "<index> <parent pid> error
//   <what>"; exits 1 with the reason on stderr when the namespace cannot be
//   prepared (nothing was run then).
// - "parent": reads its child's spec on fd 3, forks, and in the child writes
//   /proc/self/loginuid (when given), chdir(cwd), drops to the uid/gid/groups,
//   execve(image, argv); waits for it and writes "ok <pid> <exit code>" or
//   "error <step>: <reason>" on fd 4.
//
// The plan and the child spec are NUL-separated tokens (sigma_plan.h).
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/sigma/sigma_plan.h"

namespace {

constexpr const char* kRoleVar = "SENTINEL_SIGMA_PROBE";
constexpr const char* kPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int kSpecFd = 3;
constexpr int kReportFd = 4;

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      return out;
    }
  }
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// NUL-terminated tokens, read in order; a missing or malformed one sets `bad`.
class Tokens {
 public:
  explicit Tokens(std::string data) : data_(std::move(data)) {}
  std::string Next() {
    const size_t end = data_.find('\0', pos_);
    if (end == std::string::npos) {
      bad = true;
      return {};
    }
    std::string t = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return t;
  }
  long Number() {
    const std::string t = Next();
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0' || errno != 0 || v < 0) bad = true;
    return v;
  }
  std::vector<std::string> List() {
    const long n = Number();
    std::vector<std::string> out;
    for (long i = 0; i < n && !bad; ++i) out.push_back(Next());
    return out;
  }
  bool bad = false;

 private:
  std::string data_;
  size_t pos_ = 0;
};

using sentinel::sigma_test::ChildSpec;

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::optional<ChildSpec> DecodeChild(Tokens& t) {
  ChildSpec c;
  c.image = t.Next();
  c.argv = t.List();
  c.cwd = t.Next();
  c.uid = static_cast<uid_t>(t.Number());
  c.gid = static_cast<gid_t>(t.Number());
  for (const auto& g : t.List()) c.groups.push_back(static_cast<gid_t>(std::strtoul(g.c_str(), nullptr, 10)));
  c.login_uid = t.Next();
  if (t.bad) return std::nullopt;
  return c;
}

// ---- role "parent" ---------------------------------------------------------

// In the forked child: the steps before the exec; returns only on failure,
// with what failed.
std::string BecomeChild(ChildSpec& c) {
  if (!c.login_uid.empty()) {
    const int fd = ::open("/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || !WriteAll(fd, c.login_uid)) return Errno("write /proc/self/loginuid " + c.login_uid);
    ::close(fd);
  }
  if (::chdir(c.cwd.c_str()) != 0) return Errno("chdir " + c.cwd);
  if (::setgroups(c.groups.size(), c.groups.data()) != 0) return Errno("setgroups");
  if (::setresgid(c.gid, c.gid, c.gid) != 0) return Errno("setresgid " + std::to_string(c.gid));
  if (::setresuid(c.uid, c.uid, c.uid) != 0) return Errno("setresuid " + std::to_string(c.uid));
  std::vector<std::string> env{kPath};
  auto argv = CStrings(c.argv);
  auto envp = CStrings(env);
  ::execve(c.image.c_str(), argv.data(), envp.data());
  return Errno("execve " + c.image);
}

int RunParent() {
  Tokens t(ReadAll(kSpecFd));
  ::close(kSpecFd);
  auto spec = DecodeChild(t);
  if (!spec) {
    WriteAll(kReportFd, "error bad child spec on fd 3");
    return 2;
  }
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) {
    WriteAll(kReportFd, "error " + Errno("pipe2"));
    return 2;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(err[0]);
    ::close(kReportFd);
    WriteAll(err[1], BecomeChild(*spec));
    ::_exit(127);
  }
  ::close(err[1]);
  if (pid < 0) {
    WriteAll(kReportFd, "error " + Errno("fork"));
    return 2;
  }
  const std::string failure = ReadAll(err[0]);  // EOF at the exec
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  WriteAll(kReportFd,
           failure.empty() ? "ok " + std::to_string(pid) + " " + std::to_string(code) : "error " + failure);
  return 0;
}

// ---- role "stage" ----------------------------------------------------------

struct Process {
  ChildSpec child;
  std::string parent_image;
  std::vector<std::string> parent_argv;
};

struct Plan {
  std::string scratch;
  std::vector<Process> processes;
};

std::optional<Plan> DecodePlan(Tokens& t) {
  if (t.Next() != sentinel::sigma_test::kPlanTag) return std::nullopt;
  Plan plan;
  plan.scratch = t.Next();
  const long n = t.Number();
  for (long i = 0; i < n && !t.bad; ++i) {
    Process p;
    p.parent_image = t.Next();
    p.parent_argv = t.List();
    auto child = DecodeChild(t);
    if (!child) return std::nullopt;
    p.child = std::move(*child);
    plan.processes.push_back(std::move(p));
  }
  if (t.bad) return std::nullopt;
  return plan;
}

// An absolute path without empty, "." or ".." components (and not "/"
// followed by nothing else unless it is "/").
bool CleanAbsolute(const std::string& p) {
  if (p.empty() || p[0] != '/') return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    const std::string c = p.substr(start, end - start);
    if (c.empty() || c == "." || c == "..") return false;
    start = end + 1;
  }
  return true;
}

std::string Dirname(const std::string& p) {
  const size_t slash = p.rfind('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}

bool IsUnder(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir ||
         (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

std::optional<std::string> RealPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

// What the namespace needs: files to cover with the probe, directories to
// create, and the existing directories to lay an overlay over.
struct Layout {
  std::set<std::string> files;         // image paths, as given
  std::set<std::string> dirs;          // working directories, as given
  std::set<std::string> missing_dirs;  // to create (inside an overlay)
  std::set<std::string> missing_files;
  std::set<std::string> overlay_roots;  // real paths, none under another
};

// The nearest existing ancestor of `p` (p itself when it is a directory).
std::optional<std::string> NearestDir(std::string p) {
  while (true) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return std::nullopt;
      return p;
    }
    if (p == "/") return std::nullopt;
    p = Dirname(p);
  }
}

// Refuses directories that must never be laid over, even privately.
bool Overlayable(const std::string& real) {
  if (real == "/") return false;
  for (const char* bad : {"/proc", "/sys", "/dev"}) {
    if (IsUnder(real, bad)) return false;
  }
  return real.find_first_of(",:\\") == std::string::npos;  // overlay option syntax
}

std::string NeedDir(const std::string& dir, Layout* l) {
  const auto near = NearestDir(dir);
  if (!near) return "no existing directory above " + dir;
  if (*near == dir) return {};
  for (std::string d = dir; d != *near; d = Dirname(d)) l->missing_dirs.insert(d);
  const auto real = RealPath(*near);
  if (!real || !Overlayable(*real)) return "cannot lay an overlay over " + *near + " to create " + dir;
  l->overlay_roots.insert(*real);
  return {};
}

std::string NeedFile(const std::string& file, Layout* l) {
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return file + " exists and is not a regular file";
    return {};
  }
  l->missing_files.insert(file);
  const std::string parent = Dirname(file);
  if (std::string e = NeedDir(parent, l); !e.empty()) return e;
  if (l->missing_dirs.count(parent) == 0) {  // the file goes into an existing directory
    const auto real = RealPath(parent);
    if (!real || !Overlayable(*real)) return "cannot lay an overlay over " + parent + " to create " + file;
    l->overlay_roots.insert(*real);
  }
  return {};
}

std::string PlanLayout(const Plan& plan, Layout* l) {
  for (const auto& p : plan.processes) {
    l->files.insert(p.child.image);
    l->files.insert(p.parent_image);
    l->dirs.insert(p.child.cwd);
  }
  for (const auto& f : l->files) {
    if (!CleanAbsolute(f) || f == "/") return "not a clean absolute file path: '" + f + "'";
    if (std::string e = NeedFile(f, l); !e.empty()) return e;
  }
  for (const auto& d : l->dirs) {
    if (!CleanAbsolute(d)) return "not a clean absolute directory path: '" + d + "'";
    if (std::string e = NeedDir(d, l); !e.empty()) return e;
  }
  // Keep only the outermost roots: a root under another is covered by it.
  std::set<std::string> outer;
  for (const auto& r : l->overlay_roots) {
    bool covered = false;
    for (const auto& o : l->overlay_roots) covered = covered || (o != r && IsUnder(r, o));
    if (!covered) outer.insert(r);
  }
  l->overlay_roots = outer;
  return {};
}

std::string MountNamespace() {
  char buf[64] = {};
  const ssize_t n = ::readlink("/proc/self/ns/mnt", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// A private mount namespace whose mounts never propagate to the host.
std::string EnterPrivateNamespace() {
  const std::string before = MountNamespace();
  if (before.empty()) return Errno("readlink /proc/self/ns/mnt");
  if (::unshare(CLONE_NEWNS) != 0) return Errno("unshare(CLONE_NEWNS)");
  if (MountNamespace() == before) return "unshare(CLONE_NEWNS) left the host's mount namespace";
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) return Errno("make / rslave");
  return {};
}

// Overlays over every root; the scratch tmpfs holds their upper layers. A
// root above the scratch directory is mounted last, since it would hide the
// scratch path from the later ones.
std::string MountOverlays(const Plan& plan, const Layout& l, std::set<dev_t>* ours) {
  if (l.overlay_roots.empty()) return {};
  if (plan.scratch.find_first_of(",:\\") != std::string::npos || !CleanAbsolute(plan.scratch)) {
    return "unusable scratch directory '" + plan.scratch + "'";
  }
  if (::mount("sigma-scratch", plan.scratch.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0) {
    return Errno("mount tmpfs on " + plan.scratch);
  }
  std::vector<std::string> roots(l.overlay_roots.begin(), l.overlay_roots.end());
  std::stable_partition(roots.begin(), roots.end(),
                        [&](const std::string& r) { return !IsUnder(plan.scratch, r); });
  int i = 0;
  for (const auto& root : roots) {
    const std::string base = plan.scratch + "/" + std::to_string(i++);
    const std::string upper = base + "/upper", work = base + "/work";
    if (::mkdir(base.c_str(), 0700) != 0 || ::mkdir(upper.c_str(), 0755) != 0 ||
        ::mkdir(work.c_str(), 0700) != 0) {
      return Errno("mkdir " + base);
    }
    struct stat lower {};
    if (::stat(root.c_str(), &lower) != 0) return Errno("stat " + root);
    // The upper root takes the lower directory's owner and mode.
    if (::chown(upper.c_str(), lower.st_uid, lower.st_gid) != 0 ||
        ::chmod(upper.c_str(), lower.st_mode & 07777) != 0) {
      return Errno("chown/chmod " + upper);
    }
    const std::string opts = "lowerdir=" + root + ",upperdir=" + upper + ",workdir=" + work;
    if (::mount("sigma-overlay", root.c_str(), "overlay", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      return Errno("mount overlay on " + root + " (" + opts + ")");
    }
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0) return Errno("stat " + root);
    ours->insert(st.st_dev);
  }
  return {};
}

// Creating anything is allowed only inside an overlay this stage mounted.
std::string CheckOurs(const std::string& parent, const std::set<dev_t>& ours) {
  struct stat st {};
  if (::stat(parent.c_str(), &st) != 0) return Errno("stat " + parent);
  if (ours.count(st.st_dev) == 0)
    return "refusing to create in " + parent + ": not inside this stage's overlays";
  return {};
}

std::string CreateMissing(const Layout& l, const std::set<dev_t>& ours) {
  // std::set orders a parent before its children.
  for (const auto& d : l.missing_dirs) {
    if (std::string e = CheckOurs(Dirname(d), ours); !e.empty()) return e;
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir " + d);
  }
  for (const auto& f : l.missing_files) {
    if (std::string e = CheckOurs(Dirname(f), ours); !e.empty()) return e;
    struct stat st {};
    if (::lstat(f.c_str(), &st) == 0 && ::unlink(f.c_str()) != 0) return Errno("unlink dangling " + f);
    const int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    if (fd < 0) return Errno("create " + f);
    ::close(fd);
  }
  return {};
}

// This program, opened by path inside the namespace (a bind mount's source
// must be a mount of this namespace; /proc/self/exe names the host's).
std::string OpenSelf(int* fd) {
  char buf[PATH_MAX] = {};
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return Errno("readlink /proc/self/exe");
  struct stat exe {
  }, opened{};
  *fd = ::open(buf, O_PATH | O_CLOEXEC);
  if (*fd < 0) return Errno(std::string("open ") + buf);
  if (::stat("/proc/self/exe", &exe) != 0 || ::fstat(*fd, &opened) != 0 || exe.st_dev != opened.st_dev ||
      exe.st_ino != opened.st_ino) {
    return std::string("cannot open this program by its path ") + buf;
  }
  return {};
}

// The probe over every file path (read-only bind mounts of `self`).
std::string BindProbe(const Layout& l, int self) {
  struct stat probe {};
  if (::fstat(self, &probe) != 0) return Errno("fstat probe");
  const std::string source = "/proc/self/fd/" + std::to_string(self);
  std::set<std::string> done;  // real paths: /usr/bin/sh and /usr/bin/dash are one file
  for (const auto& f : l.files) {
    const auto real = RealPath(f);
    if (!real) return Errno("realpath " + f);
    if (done.insert(*real).second) {
      if (::mount(source.c_str(), real->c_str(), nullptr, MS_BIND, nullptr) != 0)
        return Errno("bind probe on " + *real);
      if (::mount(nullptr, real->c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                  nullptr) != 0) {
        return Errno("remount read-only " + *real);
      }
    }
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0 || st.st_dev != probe.st_dev || st.st_ino != probe.st_ino) {
      return "after the bind mount, " + f + " is not the probe";
    }
  }
  return {};
}

std::string PrepareNamespace(const Plan& plan) {
  ::umask(022);
  Layout l;
  if (std::string e = PlanLayout(plan, &l); !e.empty()) return e;
  if (std::string e = EnterPrivateNamespace(); !e.empty()) return e;
  int self = -1;  // opened before any overlay can hide its directory
  if (std::string e = OpenSelf(&self); !e.empty()) return e;
  std::set<dev_t> ours;
  if (std::string e = MountOverlays(plan, l, &ours); !e.empty()) return e;
  if (std::string e = CreateMissing(l, ours); !e.empty()) return e;
  if (std::string e = BindProbe(l, self); !e.empty()) return e;
  ::close(self);
  for (const auto& d : l.dirs) {
    struct stat st {};
    if (::stat(d.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "working directory " + d + " is missing";
  }
  return {};
}

// Starts one parent and waits for it; returns its result line.
std::string RunProcess(size_t index, Process& p) {
  const std::string prefix = std::to_string(index) + " ";
  std::string spec_bytes;
  sentinel::sigma_test::PutChild(&spec_bytes, p.child);
  if (spec_bytes.size() > 60000) return prefix + "0 error the child spec does not fit a pipe";
  int spec[2], report[2];
  if (::pipe(spec) != 0 || ::pipe(report) != 0) return prefix + "0 error " + Errno("pipe");
  // Written before the fork: the pipe holds it, and a parent that fails to
  // start cannot leave this write blocked.
  const bool written = WriteAll(spec[1], spec_bytes);
  ::close(spec[1]);
  if (!written) return prefix + "0 error " + Errno("write child spec");
  std::vector<std::string> env{kPath, std::string(kRoleVar) + "=parent"};
  auto argv = CStrings(p.parent_argv);
  auto envp = CStrings(env);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(report[0]);
    // Through spare numbers first, so the dups never clobber each other.
    const int s = ::fcntl(spec[0], F_DUPFD, 10), r = ::fcntl(report[1], F_DUPFD, 10);
    ::close(spec[0]);
    ::close(report[1]);
    if (s < 0 || r < 0 || ::dup2(s, kSpecFd) < 0 || ::dup2(r, kReportFd) < 0) ::_exit(126);
    ::close(s);
    ::close(r);
    ::execve(p.parent_image.c_str(), argv.data(), envp.data());
    WriteAll(kReportFd, "error " + Errno("execve parent " + p.parent_image));
    ::_exit(127);
  }
  ::close(spec[0]);
  ::close(report[1]);
  std::string result = pid > 0 ? ReadAll(report[0]) : "error " + Errno("fork");
  ::close(report[0]);
  int status = 0;
  while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (result.empty())
    result = "error the parent reported nothing (wait status " + std::to_string(status) + ")";
  std::replace(result.begin(), result.end(), '\n', ' ');
  return prefix + std::to_string(pid) + " " + result;
}

int RunStage() {
  Tokens t(ReadAll(0));
  auto plan = DecodePlan(t);
  if (!plan) {
    std::fprintf(stderr, "sigma_probe stage: malformed plan on stdin\n");
    return 2;
  }
  if (std::string e = PrepareNamespace(*plan); !e.empty()) {
    std::fprintf(stderr, "sigma_probe stage: %s\n", e.c_str());
    return 1;
  }
  for (size_t i = 0; i < plan->processes.size(); ++i) {
    const std::string line = RunProcess(i, plan->processes[i]) + "\n";
    if (!WriteAll(1, line)) return 1;
  }
  return 0;
}

}  // namespace

int main() {
  const char* role = std::getenv(kRoleVar);
  if (role == nullptr) return 0;  // a replayed process: its exec is all that counts
  if (std::strcmp(role, "parent") == 0) return RunParent();
  if (std::strcmp(role, "stage") == 0) return RunStage();
  std::fprintf(stderr, "sigma_probe: unknown %s=%s\n", kRoleVar, role);
  return 2;
}
