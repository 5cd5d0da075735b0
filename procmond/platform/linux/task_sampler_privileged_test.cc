// The BPF task iterator on this machine's kernel (root: it is loaded the way
// procmond loads it), checked against /proc, and the process source using it.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <functional>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "procmond/bpf_support.h"
#include "procmond/platform/linux/linux_process_source.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "procmond/platform/linux/task_sampler.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond {
namespace {

namespace lp = linux_proc;
using nlohmann::json;
using ::sentinel::testing::ReadFile;
using ::sentinel::testing::TempDir;
using ::sentinel::testing::WriteFile;

json Pd(const models::ProcessRecord& p) {
  return json::parse(p.platform_data);
}

// ---------------------------------------------------------------------------
// The real iterator (root: it is loaded like procmond loads it).

// The sampler, or a skip with the reason. Root on a build with eBPF must
// have one: that is a failure, not a skip.
std::unique_ptr<TaskSampler> OpenOrSkip(std::string* why) {
  if (::geteuid() != 0) {
    *why = "needs root to load the BPF task iterator";
    return nullptr;
  }
  auto s = OpenBpfTaskSampler();
  if (!s.ok()) {
    if (BpfSupportBuilt())
      ADD_FAILURE() << "root, built with eBPF, and no task iterator: " << s.status().message();
    *why = s.status().message();
    return nullptr;
  }
  return std::move(*s);
}

#define SAMPLER_OR_SKIP(var)         \
  std::string why_##var;             \
  auto var = OpenOrSkip(&why_##var); \
  if (!var) GTEST_SKIP() << why_##var;

const TaskSample* FindSample(const std::vector<TaskSample>& v, int pid) {
  for (const auto& s : v)
    if (s.pid == pid) return &s;
  return nullptr;
}

// A child that waits for a byte on `go`, runs `step` and writes a byte to
// `done`, as many times as asked; killed at destruction.
class Puppet {
 public:
  explicit Puppet(std::vector<std::function<void()>> steps) {
    if (::pipe(go_) != 0 || ::pipe(done_) != 0) ADD_FAILURE() << "pipe";
    pid_ = ::fork();
    if (pid_ == 0) {
      for (auto& step : steps) {
        char c;
        if (::read(go_[0], &c, 1) != 1) _exit(1);
        step();
        if (::write(done_[1], "1", 1) != 1) _exit(3);
      }
      for (;;) ::pause();
    }
  }
  ~Puppet() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    for (int fd : {go_[0], go_[1], done_[0], done_[1]}) ::close(fd);
  }
  void Go() { ASSERT_EQ(::write(go_[1], "x", 1), 1); }
  void Step() {
    Go();
    char c;
    ASSERT_EQ(::read(done_[0], &c, 1), 1);
  }
  pid_t pid() const { return pid_; }

 private:
  int go_[2] = {-1, -1}, done_[2] = {-1, -1};
  pid_t pid_ = -1;
};

// Waits until pid's exe link contains `marker` and it sleeps (the exec is
// complete: argv is laid out only after the new exe is installed).
void WaitForExecOf(pid_t pid, const std::string& marker) {
  const std::string dir = "/proc/" + std::to_string(pid);
  for (int i = 0; i < 1000; ++i) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink((dir + "/exe").c_str(), buf, sizeof buf);
    if (n > 0 && std::string(buf, static_cast<size_t>(n)).find(marker) != std::string::npos) {
      auto st = lp::ParseStat(ReadFile(dir + "/stat"));
      if (st.ok() && st->state == 'S') return;
    }
    usleep(5000);
  }
  ADD_FAILURE() << "pid " << pid << " did not exec " << marker;
}

// Waits until pid sleeps (a puppet that answered is on its way to pause()).
void WaitSleeping(pid_t pid) {
  for (int i = 0; i < 1000; ++i) {
    auto st = lp::ParseStat(ReadFile("/proc/" + std::to_string(pid) + "/stat"));
    if (st.ok() && st->state == 'S') return;
    usleep(2000);
  }
  ADD_FAILURE() << "pid " << pid << " never slept";
}

struct ProcView {
  lp::StatFields stat;
  lp::StatusFields status;
};
ProcView ReadProc(int pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  auto stat = lp::ParseStat(ReadFile(dir + "/stat"));
  auto status = lp::ParseStatus(ReadFile(dir + "/status"));
  EXPECT_TRUE(stat.ok() && status.ok()) << pid;
  return {stat.ok() ? *stat : lp::StatFields{}, status.ok() ? *status : lp::StatusFields{}};
}

TEST(TaskSamplerTest, RealSampleAgreesWithProc) {
  SAMPLER_OR_SKIP(sampler);
  const uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));

  // A child as nobody (real and effective), one with a controlling pty.
  Puppet nobody({[] {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) _exit(2);
  }});
  nobody.Step();
  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const std::string slave = ::ptsname(master);
  Puppet with_tty({[&slave] {
    if (::setsid() < 0) _exit(2);
    if (::open(slave.c_str(), O_RDWR) < 0) _exit(2);  // a session leader's first tty: its terminal
  }});
  with_tty.Step();
  WaitSleeping(nobody.pid());
  WaitSleeping(with_tty.pid());

  // CPU of this process: a thread that burned ~150 ms and exited (the
  // group's dead-thread time) and one that burned ~150 ms and still lives.
  auto burn = [](std::chrono::milliseconds d) {
    timespec t0{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (;;) {
      timespec t{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= d.count()) return;
    }
  };
  std::thread([&] { burn(std::chrono::milliseconds(150)); }).join();
  std::latch burned(1), release(1);
  std::thread live([&] {
    burn(std::chrono::milliseconds(150));
    burned.count_down();
    release.wait();
  });
  burned.wait();

  std::vector<TaskSample> samples;
  const Status sampled = sampler->Sample(&samples);
  const std::string self_stat = ReadFile("/proc/self/stat");
  release.count_down();
  live.join();
  ASSERT_TRUE(sampled.ok()) << sampled.message();

  // (Not pid 1: on 6.18 the iterator never visits it; the source reads it
  // from /proc, see KernelSampledSourceTest.)
  for (int pid : {static_cast<int>(getppid()), static_cast<int>(getpid()), static_cast<int>(nobody.pid()),
                  static_cast<int>(with_tty.pid())}) {
    SCOPED_TRACE(pid);
    const TaskSample* s = FindSample(samples, pid);
    ASSERT_NE(s, nullptr);
    ProcView p = ReadProc(pid);
    EXPECT_EQ(s->ppid, p.stat.ppid);
    EXPECT_EQ(s->start_boottime_ns / ns_per_tick, p.stat.starttime_ticks);
    EXPECT_EQ(s->comm(), p.stat.comm);
    if (pid != getpid()) {
      EXPECT_EQ(s->threads, p.stat.num_threads);  // ours: one thread joined since
    }
    EXPECT_EQ(s->tty_nr, p.stat.tty_nr);
    EXPECT_EQ(static_cast<int64_t>(s->ruid), p.status.ruid.value_or(-1));
    EXPECT_EQ(static_cast<int64_t>(s->euid), p.status.euid.value_or(-1));
    EXPECT_EQ(static_cast<int64_t>(s->rgid), p.status.rgid.value_or(-1));
    EXPECT_EQ(static_cast<int64_t>(s->egid), p.status.egid.value_or(-1));
    EXPECT_TRUE(s->has_mm);
    EXPECT_TRUE(s->has_exe);
    EXPECT_FALSE(s->exe_unlinked);
    struct stat exe {};
    ASSERT_EQ(::stat(("/proc/" + std::to_string(pid) + "/exe").c_str(), &exe), 0);
    EXPECT_EQ(s->exe_ino, exe.st_ino);
    // The two puppets sleep: the same state and counters. (Not this process
    // nor its parent, ctest, which runs other tests meanwhile and was seen
    // 'R' by the sampler and 'S' by /proc a moment later.)
    if (pid == static_cast<int>(nobody.pid()) || pid == static_cast<int>(with_tty.pid())) {
      EXPECT_EQ(s->state, p.stat.state);
      EXPECT_EQ(s->rss_pages, p.stat.rss_pages);
    }
  }
  EXPECT_EQ(FindSample(samples, nobody.pid())->ruid, 65534u);
  EXPECT_NE(FindSample(samples, with_tty.pid())->tty_nr, 0);
  EXPECT_EQ(lp::TtyName(FindSample(samples, with_tty.pid())->tty_nr), slave.substr(5));  // "pts/N"

  // This process: both burners counted; /proc's utime+stime (ticks) agree
  // within a few ticks.
  auto self = lp::ParseStat(self_stat);
  ASSERT_TRUE(self.ok());
  const TaskSample* me = FindSample(samples, getpid());
  EXPECT_GE(me->cpu_ns, 280'000'000u);
  const double proc_ms = static_cast<double>((self->utime_ticks + self->stime_ticks) * ns_per_tick) / 1e6;
  EXPECT_NEAR(static_cast<double>(me->cpu_ns) / 1e6, proc_ms, 60.0);
  EXPECT_GE(me->threads, 2);

  // Kernel threads: listed, no address space.
  const TaskSample* kthreadd = FindSample(samples, 2);
  ASSERT_NE(kthreadd, nullptr);
  EXPECT_NE(kthreadd->task_flags & 0x00200000u, 0u);
  EXPECT_FALSE(kthreadd->has_mm);
  // Every pid /proc lists now and still lists afterwards was sampled (the
  // iterator sees what /proc sees).
  ::close(master);
}

TEST(TaskSamplerTest, RealExecAndDeletionMoveTheirMarkers) {
  SAMPLER_OR_SKIP(sampler);
  TempDir dir;
  const std::string copy = dir.File("sleepcopy");
  WriteFile(copy, ReadFile("/bin/sleep"));
  ASSERT_EQ(::chmod(copy.c_str(), 0755), 0);
  Puppet child({[&copy] {
    char a0[] = "sleepcopy", a1[] = "60";
    char* args[] = {a0, a1, nullptr};
    ::execv(copy.c_str(), args);
    _exit(127);
  }});
  std::vector<TaskSample> before, after, deleted;
  ASSERT_TRUE(sampler->Sample(&before).ok());
  child.Go();  // the exec'd sleep never answers: wait for the exec through /proc
  WaitForExecOf(child.pid(), "sleepcopy");
  ASSERT_TRUE(sampler->Sample(&after).ok());
  ASSERT_EQ(::unlink(copy.c_str()), 0);
  ASSERT_TRUE(sampler->Sample(&deleted).ok());

  const TaskSample* b = FindSample(before, child.pid());
  const TaskSample* a = FindSample(after, child.pid());
  const TaskSample* d = FindSample(deleted, child.pid());
  ASSERT_TRUE(b && a && d);
  EXPECT_EQ(a->exec_id, b->exec_id + 1);
  EXPECT_EQ(a->start_boottime_ns, b->start_boottime_ns) << "an exec is the same process";
  EXPECT_NE(a->exe_ino, b->exe_ino);
  EXPECT_FALSE(a->exe_unlinked);
  EXPECT_TRUE(d->exe_unlinked);
  EXPECT_EQ(d->exe_ino, a->exe_ino);
  EXPECT_EQ(d->exec_id, a->exec_id);
}

}  // namespace
}  // namespace sentinel::procmond

// ---------------------------------------------------------------------------
// LinuxProcessSource taking its scans from the iterator.

namespace sentinel::procmond {
namespace {

std::vector<models::ProcessRecord> ScanWith(LinuxProcessSource& src) {
  std::vector<models::ProcessRecord> procs;
  ScanErrors errors;
  Status s = src.Enumerate(&procs, &errors);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return procs;
}

bool SameMountNamespace(int64_t pid) {
  char mine[64] = {}, theirs[64] = {};
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/mnt";
  return ::readlink("/proc/self/ns/mnt", mine, sizeof mine - 1) > 0 &&
         ::readlink(path.c_str(), theirs, sizeof theirs - 1) > 0 && std::string(mine) == theirs;
}

const models::ProcessRecord* FindRecord(const std::vector<models::ProcessRecord>& v, int64_t pid) {
  for (const auto& p : v)
    if (p.pid == pid) return &p;
  return nullptr;
}

TEST(KernelSampledSourceTest, RecordsMatchAProcScan) {
  SAMPLER_OR_SKIP(sampler);
  Puppet nobody({[] {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) _exit(2);
  }});
  nobody.Step();
  WaitSleeping(nobody.pid());
  // /proc before and after the kernel's scan: other tests run beside this
  // one, and a field they change meanwhile (an exec, a setuid, a reparent)
  // is compared only where both /proc scans agree on it.
  LinuxProcessSource from_kernel, from_proc;
  from_kernel.SetTaskSampler(std::move(sampler));
  auto p = ScanWith(from_proc);
  auto k = ScanWith(from_kernel);
  auto p2 = ScanWith(from_proc);
  EXPECT_TRUE(from_kernel.sampling_from_kernel());
  EXPECT_GT(from_kernel.last_read_counters().sampled, 0);
  // Only what /proc listed and the sample lacked is read from /proc.
  const auto& kc = from_kernel.last_read_counters();
  EXPECT_EQ(kc.stat, kc.unsampled);
  EXPECT_LE(kc.status, kc.unsampled) << "ids come from the kernel";
  // ... so nothing is missed (on 6.18 the iterator never visits pid 1).
  ASSERT_NE(FindRecord(k, 1), nullptr);
  EXPECT_EQ(FindRecord(k, 1)->exe_path, FindRecord(p, 1)->exe_path);

  // Every process all three saw (same pid and start): the same identity and image.
  int compared = 0;
  for (const auto& kr : k) {
    const models::ProcessRecord* pr = FindRecord(p, kr.pid);
    const models::ProcessRecord* pr2 = FindRecord(p2, kr.pid);
    if (!pr || !pr2 || pr->start_time_ms != kr.start_time_ms || pr2->start_time_ms != kr.start_time_ms)
      continue;  // came or went meanwhile
    SCOPED_TRACE(kr.pid);
    ++compared;
#define EXPECT_SAME_WHERE_STABLE(field)       \
  if (pr->field == pr2->field) {              \
    EXPECT_EQ(kr.field, pr->field) << #field; \
  }
    EXPECT_SAME_WHERE_STABLE(ppid);
    const bool kthread = Pd(kr).contains("kernel_thread");
    EXPECT_EQ(kthread, Pd(*pr).contains("kernel_thread"));
    if (!kthread) {
      EXPECT_SAME_WHERE_STABLE(name);  // kernel workers: /proc adds the workqueue
    }
    EXPECT_SAME_WHERE_STABLE(user_id);
    EXPECT_SAME_WHERE_STABLE(effective_uid);
    EXPECT_SAME_WHERE_STABLE(user_name);
    if (kr.pid == getpid()) continue;  // this process allocates and runs between the scans
    // A path is text relative to a mount namespace: the kernel's d_path and
    // /proc's link may spell the image of a process in another one (tests
    // running beside this one bind-mount and overlay their images) apart.
    if (!SameMountNamespace(kr.pid)) continue;
    EXPECT_SAME_WHERE_STABLE(exe_path);
    EXPECT_SAME_WHERE_STABLE(command_line);
    EXPECT_SAME_WHERE_STABLE(exe_hash);
#undef EXPECT_SAME_WHERE_STABLE
  }
  EXPECT_GT(compared, 10);
  const models::ProcessRecord* n = FindRecord(k, nobody.pid());
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->user_id, 65534);
  EXPECT_EQ(n->user_name, "nobody");
  EXPECT_EQ(Pd(*n)["uid"], json({{"real", 65534}, {"effective", 65534}}));
  EXPECT_EQ(n->memory_bytes, FindRecord(p, nobody.pid())->memory_bytes);
  EXPECT_EQ(n->status, "sleeping");
}

// The /proc blind spot: only the REAL uid changes (a setuid-root program
// calling setuid(0) the other way round: ruid 0 -> nobody while euid stays
// root). The owner of /proc/PID does not move; the kernel's ids do.
TEST(KernelSampledSourceTest, RealUidOnlyChangeIsSeenAtTheNextScan) {
  SAMPLER_OR_SKIP(sampler);
  Puppet child({[] {
    if (::setresuid(65534, 0, 0) != 0) _exit(2);
  }});
  LinuxProcessSource src({.refresh_every_scans = 0});
  src.SetTaskSampler(std::move(sampler));
  auto s1 = ScanWith(src);
  ASSERT_NE(FindRecord(s1, child.pid()), nullptr);
  EXPECT_EQ(FindRecord(s1, child.pid())->user_id, 0);
  child.Step();
  auto s2 = ScanWith(src);
  const models::ProcessRecord* r = FindRecord(s2, child.pid());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->user_id, 65534);
  EXPECT_EQ(r->effective_uid, 0);
  EXPECT_EQ(r->user_name, "nobody");
  EXPECT_EQ(Pd(*r)["uid"], json({{"real", 65534}, {"effective", 0}}));
  // (Other tests' processes may change ids too: at least this one.)
  EXPECT_GE(src.last_read_counters().owner_changes, 1);
  EXPECT_LE(src.last_read_counters().status, src.last_read_counters().unsampled) << "no status read for it";
}

TEST(KernelSampledSourceTest, ExecAndDeletionAreSeenAtTheNextScanWithoutReadlinks) {
  SAMPLER_OR_SKIP(sampler);
  const std::string comm = [] {
    std::string c = ReadFile("/proc/self/comm");
    while (!c.empty() && c.back() == '\n') c.pop_back();
    return c;
  }();
  TempDir dir;
  const std::string impostor = dir.File(comm);  // keeps our comm across the exec
  WriteFile(impostor, ReadFile("/bin/sleep"));
  ASSERT_EQ(::chmod(impostor.c_str(), 0755), 0);
  Puppet child({[&impostor, &comm] {
    std::string a0 = comm, a1 = "60";
    char* args[] = {a0.data(), a1.data(), nullptr};
    ::execv(impostor.c_str(), args);
    _exit(127);
  }});
  LinuxProcessSource src({.refresh_every_scans = 0, .exe_link_every_scans = 1});
  src.SetTaskSampler(std::move(sampler));
  auto s1 = ScanWith(src);
  auto s2 = ScanWith(src);  // warm: nothing read per sampled process
  const auto& c = src.last_read_counters();
  EXPECT_GT(c.sampled, 10);
  // exe_link_every_scans = 1 would read every process's link from /proc;
  // from the sample only new processes and those /proc alone listed.
  EXPECT_LE(c.exe_link, c.full_reads + c.unsampled) << "no staggered readlink from the kernel's sample";
  EXPECT_EQ(c.stat, c.unsampled);
  EXPECT_EQ(c.owner, c.unsampled);

  child.Go();
  WaitForExecOf(child.pid(), dir.path());
  auto s3 = ScanWith(src);
  const models::ProcessRecord* r3 = FindRecord(s3, child.pid());
  ASSERT_NE(r3, nullptr);
  EXPECT_EQ(r3->name, FindRecord(s1, child.pid())->name) << "same comm";
  char real[PATH_MAX];
  ASSERT_NE(::realpath(impostor.c_str(), real), nullptr);
  EXPECT_EQ(r3->exe_path, std::string(real));
  EXPECT_EQ(r3->command_line, (std::vector<std::string>{comm, "60"}));

  ASSERT_EQ(::unlink(impostor.c_str()), 0);
  auto s4 = ScanWith(src);
  const models::ProcessRecord* r4 = FindRecord(s4, child.pid());
  ASSERT_NE(r4, nullptr);
  EXPECT_EQ(r4->exe_path, std::string(real) + " (deleted)");
  EXPECT_EQ(Pd(*r4)["exe_deleted"], true);
  EXPECT_EQ(r4->exe_hash, r3->exe_hash) << "hashed as it runs";
}

// A sampler that stops working: that scan and the next come from /proc,
// and the reason is handed out once.
class FailingAfter final : public TaskSampler {
 public:
  FailingAfter(std::unique_ptr<TaskSampler> real, int ok_calls) : real_(std::move(real)), left_(ok_calls) {}
  Status Sample(std::vector<TaskSample>* out) override {
    if (left_-- <= 0) return UnavailableError("iterator gone (test)");
    return real_->Sample(out);
  }

 private:
  std::unique_ptr<TaskSampler> real_;
  int left_;
};

TEST(KernelSampledSourceTest, AFailingSamplerFallsBackToProcForGood) {
  SAMPLER_OR_SKIP(sampler);
  LinuxProcessSource src;
  src.SetTaskSampler(std::make_unique<FailingAfter>(std::move(sampler), 1));
  auto s1 = ScanWith(src);
  EXPECT_GT(src.last_read_counters().sampled, 0);
  EXPECT_FALSE(src.TakeSamplerFailure().has_value());
  std::vector<models::ProcessRecord> s2;
  ScanErrors errors;
  ASSERT_TRUE(src.Enumerate(&s2, &errors).ok());
  EXPECT_EQ(src.last_read_counters().sampled, 0);
  EXPECT_GT(src.last_read_counters().stat, 0);
  EXPECT_EQ(errors.by_reason["task sampler: iterator gone (test)"], 1);
  EXPECT_FALSE(src.sampling_from_kernel());
  EXPECT_EQ(src.TakeSamplerFailure(), "iterator gone (test)");
  EXPECT_FALSE(src.TakeSamplerFailure().has_value());
  // The same processes, found again by /proc.
  ASSERT_NE(FindRecord(s2, getpid()), nullptr);
  EXPECT_EQ(FindRecord(s2, getpid())->start_time_ms, FindRecord(s1, getpid())->start_time_ms);
  EXPECT_EQ(FindRecord(s2, 1)->exe_path, FindRecord(s1, 1)->exe_path);
}

// Processes hidden by a mount over their /proc entry (issue 17, case 7):
// one shows another task's entry, one an empty tmpfs. Run in a forked child
// with a private mount namespace, so nothing reaches the host's mounts; the
// child's exit code names the check that failed.
int CheckHiddenProcesses(std::unique_ptr<TaskSampler> sampler, pid_t hidden, pid_t emptied, pid_t decoy,
                         pid_t late) {
  const std::string target = "/proc/" + std::to_string(hidden), empty = "/proc/" + std::to_string(emptied);
  const std::string source = "/proc/" + std::to_string(decoy);
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return 2;
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) return 3;
  if (::mount("none", empty.c_str(), "tmpfs", 0, nullptr) != 0) return 4;
  LinuxProcessSource from_kernel, from_proc;
  from_kernel.SetTaskSampler(std::move(sampler));
  std::vector<models::ProcessRecord> procs;
  ScanErrors errors;
  // The kernel's view: both recorded from the sample alone, flagged, counted.
  if (!from_kernel.Enumerate(&procs, &errors).ok()) return 5;
  for (const auto& [pid, reason] :
       {std::pair{hidden, "shows another task"}, std::pair{emptied, "missing or empty"}}) {
    const models::ProcessRecord* p = FindRecord(procs, pid);
    if (!p || p->exe_path || p->command_line || p->exe_hash) return 6;
    json pd = json::parse(p->platform_data);
    if (!pd.value("proc_hidden", false) ||
        pd.value("proc_hidden_reason", "").find(reason) == std::string::npos)
      return 7;
  }
  if (errors.count < 2 || from_kernel.last_read_counters().hidden != 2) return 8;
  // /proc alone: counted as errors; the decoy is not recorded twice.
  ScanErrors proc_errors;
  procs.clear();
  if (!from_proc.Enumerate(&procs, &proc_errors).ok()) return 9;
  if (FindRecord(procs, hidden) || FindRecord(procs, emptied)) return 10;
  if (std::count_if(procs.begin(), procs.end(), [&](const auto& p) { return p.pid == decoy; }) != 1)
    return 11;
  if (proc_errors.by_reason.count(target + " shows another task (pid " + std::to_string(decoy) + ")") != 1 ||
      proc_errors.by_reason.count(empty + " is missing or empty while the task runs") != 1) {
    return 12;
  }
  // A file mounted over the command line of a process already read: seen at
  // the next scan (the mount table changed), not at its refresh.
  const std::string fake = "/proc/" + std::to_string(decoy) + "/comm";
  const std::string late_cmdline = "/proc/" + std::to_string(late) + "/cmdline";
  procs.clear();
  if (!from_kernel.Enumerate(&procs, &errors).ok() || !FindRecord(procs, late) ||
      FindRecord(procs, late)->platform_data.find("proc_hidden") != std::string::npos) {
    return 15;
  }
  if (::mount(fake.c_str(), late_cmdline.c_str(), nullptr, MS_BIND, nullptr) != 0) return 16;
  procs.clear();
  if (!from_kernel.Enumerate(&procs, &errors).ok() || !FindRecord(procs, late)) return 17;
  if (json::parse(FindRecord(procs, late)->platform_data).value("proc_hidden_reason", "") !=
      "something is mounted over " + late_cmdline) {
    return 18;
  }
  ::umount2(late_cmdline.c_str(), MNT_DETACH);
  // Unmounted: their own entries again, read as new instances.
  ::umount2(target.c_str(), MNT_DETACH);
  ::umount2(empty.c_str(), MNT_DETACH);
  errors = {};
  procs.clear();
  if (!from_kernel.Enumerate(&procs, &errors).ok()) return 13;
  for (pid_t pid : {hidden, emptied, late}) {
    const models::ProcessRecord* p = FindRecord(procs, pid);
    if (!p || !p->exe_path || p->platform_data.find("proc_hidden") != std::string::npos) return 14;
  }
  return 0;
}

TEST(KernelSampledSourceTest, ProcessesHiddenByAMountOverTheirProcEntryAreFlagged) {
  SAMPLER_OR_SKIP(sampler);
  Puppet hidden({}), emptied({}), decoy({}), late({});
  for (pid_t pid : {hidden.pid(), emptied.pid(), decoy.pid(), late.pid()}) WaitSleeping(pid);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    _exit(CheckHiddenProcesses(std::move(sampler), hidden.pid(), emptied.pid(), decoy.pid(), late.pid()));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed check " << WEXITSTATUS(status);
}

}  // namespace
}  // namespace sentinel::procmond
