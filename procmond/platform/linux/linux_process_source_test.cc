#include "procmond/platform/linux/linux_process_source.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "procmond/platform/linux/fake_proc_for_test.h"
#include "procmond/platform/linux/linux_process_source_test_util.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "sentinel/crypto/sha256.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond {
namespace {

using fakeproc::FakeProc;
using fakeproc::FakeProcess;
using nlohmann::json;
using ::sentinel::testing::ReadFile;
using ::sentinel::testing::TempDir;
using ::sentinel::testing::WriteFile;

std::string ReadLinkOrEmpty(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string RealPath(const std::string& p) {
  char real[PATH_MAX];
  return ::realpath(p.c_str(), real) ? std::string(real) : p;
}

// Waits until `pid` has exec'd (its exe is no longer ours) and gone to sleep.
void WaitForExec(pid_t pid) {
  const std::string self = ReadLinkOrEmpty("/proc/self/exe");
  const std::string dir = "/proc/" + std::to_string(pid);
  for (int i = 0; i < 1000; ++i) {
    std::string exe = ReadLinkOrEmpty(dir + "/exe");
    if (!exe.empty() && exe != self) {
      std::string stat = ReadFile(dir + "/stat");
      size_t close = stat.rfind(')');
      if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'S') return;
    }
    usleep(5000);
  }
  ADD_FAILURE() << "pid " << pid << " did not exec";
}

struct SpawnOptions {
  std::vector<std::string> argv;
  std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;  // -1: inherit
  int exec_fd = -1;                                   // fexecve this fd instead of argv[0]
};

// A real child process, killed and reaped on destruction.
class Child {
 public:
  explicit Child(SpawnOptions o) {
    std::vector<char*> argv, envp;
    for (auto& s : o.argv) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : o.env) envp.push_back(s.data());
    envp.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      if (o.stdin_fd >= 0) ::dup2(o.stdin_fd, 0);
      if (o.stdout_fd >= 0) ::dup2(o.stdout_fd, 1);
      if (o.stderr_fd >= 0) ::dup2(o.stderr_fd, 2);
      if (o.exec_fd >= 0) {
        ::fexecve(o.exec_fd, argv.data(), envp.data());
      } else {
        ::execve(argv[0], argv.data(), envp.data());
      }
      _exit(127);
    }
    WaitForExec(pid_);
  }
  ~Child() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

std::string SleepSha() {
  return crypto::Sha256Hex(ReadFile("/bin/sleep"));
}

// ---------------------------------------------------------------------------
// Real processes.

TEST(LinuxProcessSourceTest, SeesRealChildWithItsArguments) {
  Child child({.argv = {"/bin/sh", "-c", "while :; do sleep 1; done", "quote\"d arg", "new\nline"}});
  LinuxProcessSource src;
  auto procs = Scan(src);
  const models::ProcessRecord* found = Find(procs, child.pid());
  const models::ProcessRecord* self = Find(procs, getpid());
  ASSERT_NE(found, nullptr);
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(found->name, "sh");
  EXPECT_EQ(found->ppid, getpid());
  // /bin may be a symlink to /usr/bin (merged /usr): the kernel reports the real path.
  EXPECT_EQ(found->exe_path, RealPath("/bin/sh"));
  EXPECT_EQ(found->exe_hash, crypto::Sha256Hex(ReadFile("/bin/sh")));
  ASSERT_TRUE(found->command_line.has_value());
  EXPECT_EQ(*found->command_line, (std::vector<std::string>{"/bin/sh", "-c", "while :; do sleep 1; done",
                                                            "quote\"d arg", "new\nline"}));
  EXPECT_EQ(found->user_id, static_cast<int64_t>(getuid()));
  EXPECT_EQ(found->effective_uid, static_cast<int64_t>(geteuid()));
  EXPECT_TRUE(found->status == "sleeping" || found->status == "running") << *found->status;
  EXPECT_GT(found->start_time_ms, self->start_time_ms - 1000);
  EXPECT_GT(*found->memory_bytes, 0);
  EXPECT_GT(procs.size(), 2u);

  json pd = Pd(*found);
  char cwd[PATH_MAX];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_EQ(pd["cwd"], cwd);
  auto our_cgroup = linux_proc::ParseCgroup(ReadFile("/proc/self/cgroup"));
  ASSERT_TRUE(our_cgroup.ok());
  EXPECT_EQ(pd["cgroup"], *our_cgroup);
  for (const char* ns : {"pid", "mnt", "net"}) {
    auto ours = linux_proc::ParseNsLink(ReadLinkOrEmpty(std::string("/proc/self/ns/") + ns), ns);
    ASSERT_TRUE(ours.ok()) << ns;
    EXPECT_EQ(pd["ns"][ns], *ours) << ns;
  }
  EXPECT_EQ(pd["uid"], json({{"real", getuid()}, {"effective", geteuid()}}));
  EXPECT_EQ(pd["gid"], json({{"real", getgid()}, {"effective", getegid()}}));
  EXPECT_EQ(pd["threads"], 1);
  EXPECT_EQ(pd["loader_env"], json::array());
  EXPECT_FALSE(pd.contains("exe_deleted"));
  EXPECT_FALSE(pd.contains("hash_skipped"));
  EXPECT_FALSE(pd.contains("errors")) << pd.dump();
}

TEST(LinuxProcessSourceTest, ClassifiesWhatFdsZeroToTwoPointAt) {
  TempDir dir;
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const std::string out_path = dir.File("out.log");
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(out, 0);
  struct stat pipe_st {
  }, sock_st{};
  ASSERT_EQ(::fstat(pipefd[0], &pipe_st), 0);
  ASSERT_EQ(::fstat(sv[1], &sock_st), 0);
  {
    Child child({.argv = {"/bin/sleep", "60"}, .stdin_fd = pipefd[0], .stdout_fd = out, .stderr_fd = sv[1]});
    LinuxProcessSource src;
    auto procs = Scan(src);
    const models::ProcessRecord* p = Find(procs, child.pid());
    ASSERT_NE(p, nullptr);
    json fds = Pd(*p)["fds"];
    EXPECT_EQ(fds["0"], json({{"type", "pipe"}, {"inode", pipe_st.st_ino}})) << fds.dump();
    EXPECT_EQ(fds["1"], json({{"type", "file"}, {"path", RealPath(out_path)}})) << fds.dump();
    EXPECT_EQ(fds["2"], json({{"type", "socket"}, {"inode", sock_st.st_ino}})) << fds.dump();
  }
  for (int fd : {pipefd[0], pipefd[1], sv[0], sv[1], out}) ::close(fd);
}

TEST(LinuxProcessSourceTest, RecordsLoaderVariableNamesNeverValues) {
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  // The loader warns about the missing preload (stderr is /dev/null) and runs sleep anyway.
  Child child({.argv = {"/bin/sleep", "60"},
               .env = {"PATH=/usr/bin:/bin", "LD_PRELOAD=/nonexistent/SECRETVALUE-preload.so",
                       "LD_LIBRARY_PATH=/nonexistent/SECRETVALUE-libdir", "NOT_LD_AUDIT=SECRETVALUE",
                       "LD_AUDITX=SECRETVALUE"},
               .stdin_fd = devnull,
               .stderr_fd = devnull});
  LinuxProcessSource src;
  auto procs = Scan(src);
  const models::ProcessRecord* p = Find(procs, child.pid());
  ASSERT_NE(p, nullptr);
  json pd = Pd(*p);
  EXPECT_EQ(pd["loader_env"], json({"LD_PRELOAD", "LD_LIBRARY_PATH"}));
  EXPECT_EQ(p->platform_data.find("SECRETVALUE"), std::string::npos) << p->platform_data;
  EXPECT_EQ(p->platform_data.find("nonexistent"), std::string::npos) << p->platform_data;
  EXPECT_EQ(pd["fds"]["0"], json({{"type", "null"}}));
  EXPECT_EQ(pd["fds"]["2"], json({{"type", "null"}}));
  ::close(devnull);
}

TEST(LinuxProcessSourceTest, DeletedBinaryIsHashedAsItRuns) {
  TempDir dir;
  const std::string bin = dir.File("sleepcopy");
  const std::string bytes = ReadFile("/bin/sleep");
  WriteFile(bin, bytes);
  ASSERT_EQ(::chmod(bin.c_str(), 0755), 0);
  const std::string want_hash = crypto::Sha256Hex(bytes);
  const std::string real_bin = RealPath(bin);
  Child child({.argv = {bin, "60"}});
  ASSERT_EQ(::unlink(bin.c_str()), 0);

  LinuxProcessSource src;
  auto procs = Scan(src);
  const models::ProcessRecord* p = Find(procs, child.pid());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "sleepcopy");
  EXPECT_EQ(p->exe_path, real_bin + " (deleted)");
  EXPECT_EQ(p->exe_hash, want_hash);
  json pd = Pd(*p);
  EXPECT_EQ(pd["exe_deleted"], true);
  EXPECT_FALSE(pd.contains("exe_memfd"));
}

TEST(LinuxProcessSourceTest, MemfdBinaryIsHashed) {
  const std::string bytes = ReadFile("/bin/sleep");
  int mfd = ::memfd_create("sentinel-test", MFD_CLOEXEC);
  ASSERT_GE(mfd, 0);
  ASSERT_EQ(::write(mfd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  {
    Child child({.argv = {"sleep", "60"}, .exec_fd = mfd});
    LinuxProcessSource src;
    auto procs = Scan(src);
    const models::ProcessRecord* p = Find(procs, child.pid());
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(p->exe_path.has_value());
    EXPECT_EQ(p->exe_path->rfind("/memfd:sentinel-test", 0), 0u) << *p->exe_path;
    EXPECT_EQ(p->exe_hash, crypto::Sha256Hex(bytes));
    json pd = Pd(*p);
    EXPECT_EQ(pd["exe_memfd"], true);
    EXPECT_FALSE(pd.contains("hash_skipped"));
  }
  ::close(mfd);
}

// A cold scan hashes each distinct executable once; the next one re-hashes
// nothing it has seen (only processes new since then can cost a miss).
TEST(LinuxProcessSourceTest, ColdScanHashesEachExecutableOnceSteadyScanNone) {
  std::vector<std::unique_ptr<Child>> kids;
  for (int i = 0; i < 20; ++i)
    kids.push_back(std::make_unique<Child>(SpawnOptions{.argv = {"/bin/sleep", "60"}}));
  const std::string want = SleepSha();

  LinuxProcessSource src;
  auto first = Scan(src);
  const HashCounters c1 = src.LastHashCounters();
  // Distinct files behind the hashed processes (a process that exited since
  // counts as one more file: an upper bound).
  std::set<std::pair<dev_t, ino_t>> files;
  size_t gone = 0;
  for (const auto& p : first) {
    if (!p.exe_hash) continue;
    struct stat st {};
    if (::stat(("/proc/" + std::to_string(p.pid) + "/exe").c_str(), &st) == 0) {
      files.insert({st.st_dev, st.st_ino});
    } else {
      ++gone;
    }
  }
  for (const auto& k : kids) {
    const models::ProcessRecord* p = Find(first, k->pid());
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->exe_hash, want);
  }
  EXPECT_GE(c1.misses, 1);
  EXPECT_LE(static_cast<size_t>(c1.misses), files.size() + gone);  // never twice the same file
  EXPECT_GE(c1.hits, 19);
  EXPECT_EQ(src.hasher_counters().misses, c1.misses);

  auto second = Scan(src);
  const HashCounters c2 = src.LastHashCounters();
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const auto& p : first) seen.insert({p.pid, p.start_time_ms});
  int64_t new_instances = 0;
  for (const auto& p : second) new_instances += seen.count({p.pid, p.start_time_ms}) ? 0 : 1;
  EXPECT_LE(c2.misses, new_instances);
  EXPECT_GE(c2.hits, 20);
  for (const auto& k : kids) {
    const models::ProcessRecord* p = Find(second, k->pid());
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->exe_hash, want);
  }
}

TEST(LinuxProcessSourceTest, ZombieIsRecordedNotFatal) {
  pid_t pid = fork();
  if (pid == 0) _exit(3);
  // Let it become a zombie (not reaped yet).
  for (int i = 0; i < 200; ++i) {
    std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    if (stat.find(") Z ") != std::string::npos) break;
    usleep(5000);
  }
  LinuxProcessSource src;
  ScanErrors errors;
  auto procs = Scan(src, &errors);
  const models::ProcessRecord* p = Find(procs, pid);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->status, "zombie");
  EXPECT_FALSE(p->exe_path.has_value());
  EXPECT_FALSE(p->exe_hash.has_value());
  EXPECT_TRUE(p->command_line->empty());
  json pd = Pd(*p);
  EXPECT_FALSE(pd.contains("errors")) << pd.dump();
  EXPECT_FALSE(pd.contains("cwd"));
  waitpid(pid, nullptr, 0);
}

TEST(LinuxProcessSourceTest, MissingProcRootIsAnError) {
  LinuxProcessSource src(LinuxProcessSourceOptions{.proc_root = "/nonexistent-proc"});
  std::vector<models::ProcessRecord> procs;
  ScanErrors errors;
  Status s = src.Enumerate(&procs, &errors);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent-proc"), std::string::npos);
}

// ---------------------------------------------------------------------------
// A fake /proc tree: exact, deterministic platform_data.

TEST(LinuxProcessSourceFakeTest, PlatformDataHasEveryKey) {
  FakeProc proc;
  WriteFile(proc.File("image"), "the image");
  FakeProcess f;
  f.pid = 321;
  f.tty_nr = (136 << 8) | 3;
  f.threads = 4;
  f.ruid = 1000;
  f.euid = 0;
  f.exe = proc.File("image");
  f.environ = std::string("A=1\0LD_AUDIT=/x.so\0LD_PRELOAD=/evil.so\0", 39);
  proc.Write(f);
  LinuxProcessSource src({.fs = &proc});
  ScanErrors errors;
  auto procs = Scan(src, &errors);
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(errors.count, 0) << json(errors.by_reason).dump();
  const auto& p = procs[0];
  EXPECT_EQ(p.exe_path, proc.File("image"));
  EXPECT_EQ(p.exe_hash, crypto::Sha256Hex("the image"));
  EXPECT_EQ(p.command_line, (std::vector<std::string>{"fake", "--flag"}));
  EXPECT_EQ(p.user_id, 1000);
  json expected = json::parse(R"({
    "uid": {"real": 1000, "effective": 0},
    "gid": {"real": 1000, "effective": 1000},
    "threads": 4,
    "tty": "pts/3",
    "cwd": "/srv/app",
    "cgroup": "/system.slice/fake.service",
    "ns": {"pid": 4026531836, "mnt": 4026531841, "net": 4026531840},
    "fds": {"0": {"type": "pipe", "inode": 1001}, "1": {"type": "socket", "inode": 1002}, "2": {"type": "null"}},
    "loader_env": ["LD_PRELOAD", "LD_AUDIT"],
    "exe_nlink": 1
  })");
  expected["exe_owner_uid"] = ::geteuid();  // the test made the image
  EXPECT_EQ(Pd(p), expected);
  EXPECT_EQ(p.platform_data.find("evil"), std::string::npos);
}

TEST(LinuxProcessSourceFakeTest, UnreadableAndHostileEntriesAreReasonsNeverFatal) {
  FakeProc proc;
  FakeProcess f;
  f.pid = 77;
  f.comm = "a) S 1 (b\nc";
  f.exe = proc.File("missing-image");  // dangling: readlink works, hashing finds nothing
  f.cwd = "/dir with\nnewline";
  f.cgroup = "garbage without colons\n";
  f.ns_net = "net:[not-a-number]";
  f.ns_mnt = "";  // no link at all: not readable -> ENOENT is "gone", no error
  f.fds = {"anon_inode:[eventfd]", "/var/log/x.log (deleted)", ""};
  proc.Write(f);
  // environ is a directory: reading it fails with EISDIR.
  ::unlink((proc.Dir(f) + "/environ").c_str());
  ASSERT_EQ(::mkdir((proc.Dir(f) + "/environ").c_str(), 0755), 0);

  LinuxProcessSource src({.fs = &proc});
  ScanErrors errors;
  auto procs = Scan(src, &errors);
  ASSERT_EQ(procs.size(), 1u);
  const auto& p = procs[0];
  EXPECT_EQ(p.name, "a) S 1 (b\nc");
  EXPECT_FALSE(p.exe_hash.has_value());
  json pd = Pd(p);
  EXPECT_EQ(pd["cwd"], "/dir with\nnewline");
  EXPECT_FALSE(pd.contains("cgroup"));
  EXPECT_FALSE(pd.contains("loader_env"));
  EXPECT_EQ(pd["ns"], json({{"pid", 4026531836}}));
  EXPECT_EQ(pd["fds"], json::parse(R"j({"0": {"type": "anon", "path": "anon_inode:[eventfd]"},
                                        "1": {"type": "file", "path": "/var/log/x.log (deleted)"},
                                        "2": {"type": "none"}})j"));
  EXPECT_FALSE(pd.contains("hash_skipped")) << "a vanished image is not a skip";
  ASSERT_TRUE(pd.contains("errors")) << pd.dump();
  EXPECT_EQ(pd["errors"], json::parse(R"({"cgroup": "cgroup: no v2 or name=systemd entry",
                                           "ns.net": "ns/net: bad inode number",
                                           "environ": "environ: Is a directory"})"));
  EXPECT_EQ(errors.count, 3);
  EXPECT_EQ(errors.by_reason["environ: Is a directory"], 1);
}

TEST(LinuxProcessSourceFakeTest, OnceReadsAreReusedUntilTheInstanceChanges) {
  FakeProc proc;
  WriteFile(proc.File("image-a"), "a");
  WriteFile(proc.File("image-b"), "b");
  FakeProcess f;
  f.exe = proc.File("image-a");
  proc.Write(f);
  ::unlink((proc.Dir(f) + "/environ").c_str());
  ASSERT_EQ(::mkdir((proc.Dir(f) + "/environ").c_str(), 0755), 0);
  LinuxProcessSource src({.fs = &proc});
  ScanErrors e1;
  auto s1 = Scan(src, &e1);
  ASSERT_EQ(s1.size(), 1u);
  EXPECT_EQ(Pd(s1[0])["cwd"], "/srv/app");
  EXPECT_EQ(e1.count, 1);

  // Same instance: cwd and fds changed on disk are not re-read; threads and
  // tty (every-scan fields) are, and uids are when the owner of /proc/PID
  // (the euid) changed. The environ error is not counted again but stays
  // explained in platform_data.
  proc.Relink(f, "cwd", "/elsewhere");
  proc.Relink(f, "fd/0", "/dev/pts/9");
  f.euid = 0;
  f.threads = 9;
  f.tty_nr = (4 << 8) | 1;
  proc.WriteStatus(f);
  proc.WriteStat(f);
  const bool owner_followed = proc.SetOwner(f);
  ScanErrors e2;
  auto s2 = Scan(src, &e2);
  ASSERT_EQ(s2.size(), 1u);
  json pd2 = Pd(s2[0]);
  EXPECT_EQ(pd2["cwd"], "/srv/app");
  EXPECT_EQ(pd2["fds"]["0"]["type"], "pipe");
  if (owner_followed) {
    EXPECT_EQ(pd2["uid"]["effective"], 0);
  }
  EXPECT_EQ(pd2["threads"], 9);
  EXPECT_EQ(pd2["tty"], "tty1");
  EXPECT_EQ(pd2["errors"]["environ"], "environ: Is a directory");
  EXPECT_EQ(e2.count, 0);
  EXPECT_EQ(s2[0].exe_hash, crypto::Sha256Hex("a"));

  // exec: comm changes -> read again.
  f.comm = "other";
  proc.WriteStat(f);
  auto s3 = Scan(src);
  ASSERT_EQ(s3.size(), 1u);
  EXPECT_EQ(Pd(s3[0])["cwd"], "/elsewhere");
  EXPECT_EQ(Pd(s3[0])["fds"]["0"], json({{"type", "tty"}, {"path", "/dev/pts/9"}}));

  // exec of a binary with the same comm: the exec signature in stat (and
  // the exe link) change -> read again.
  proc.Relink(f, "cwd", "/third");
  proc.Relink(f, "exe", proc.File("image-b"));
  f.startcode += 0x1000;
  proc.WriteStat(f);
  auto s4 = Scan(src);
  ASSERT_EQ(s4.size(), 1u);
  EXPECT_EQ(Pd(s4[0])["cwd"], "/third");
  EXPECT_EQ(s4[0].exe_hash, crypto::Sha256Hex("b"));

  // A new instance at the same pid (new start time) -> read again.
  proc.Relink(f, "cwd", "/fourth");
  f.start_ticks += 100;
  proc.WriteStat(f);
  auto s5 = Scan(src);
  EXPECT_EQ(Pd(s5[0])["cwd"], "/fourth");
  EXPECT_EQ(src.tracked_instances(), 1u);
}

TEST(LinuxProcessSourceFakeTest, HashCountersColdThenSteady) {
  FakeProc proc;
  WriteFile(proc.File("a"), "image a");
  WriteFile(proc.File("b"), "image b");
  FakeProcess f;
  for (int i = 0; i < 5; ++i) {
    f.pid = 200 + i;
    f.exe = proc.File(i < 3 ? "a" : "b");
    proc.Write(f);
  }
  LinuxProcessSource src({.fs = &proc});
  auto s1 = Scan(src);
  ASSERT_EQ(s1.size(), 5u);
  EXPECT_EQ(src.LastHashCounters().misses, 2);
  EXPECT_EQ(src.LastHashCounters().hits, 3);
  for (const auto& p : s1) EXPECT_EQ(p.exe_hash, crypto::Sha256Hex(p.pid < 203 ? "image a" : "image b"));

  auto s2 = Scan(src);
  EXPECT_EQ(src.LastHashCounters().misses, 0);
  EXPECT_EQ(src.LastHashCounters().hits, 5);
  EXPECT_EQ(src.hasher_counters().misses, 2);
  EXPECT_EQ(src.hasher_counters().hits, 3) << "steady instances must not even stat their exe";

  f.pid = 300;
  f.exe = proc.File("b");
  proc.Write(f);
  auto s3 = Scan(src);
  EXPECT_EQ(src.LastHashCounters().misses, 0);
  EXPECT_EQ(src.LastHashCounters().hits, 6);
}

TEST(LinuxProcessSourceFakeTest, HashSkippedWhenTooLargeOrDisabled) {
  FakeProc proc;
  WriteFile(proc.File("big"), std::string(2048, 'x'));
  WriteFile(proc.File("small"), "x");
  FakeProcess f;
  f.pid = 10;
  f.exe = proc.File("big");
  proc.Write(f);
  f.pid = 11;
  f.exe = proc.File("small");
  proc.Write(f);
  LinuxProcessSource src({.fs = &proc, .max_hash_bytes = 1024});
  auto s1 = Scan(src);
  ASSERT_EQ(s1.size(), 2u);
  const auto* big = &Get(s1, 10);
  const auto* small = &Get(s1, 11);
  EXPECT_FALSE(big->exe_hash.has_value());
  EXPECT_EQ(Pd(*big)["hash_skipped"], "too_large");
  EXPECT_FALSE(Pd(*big).contains("errors")) << "a size cap is policy, not an error";
  EXPECT_EQ(small->exe_hash, crypto::Sha256Hex("x"));
  EXPECT_EQ(src.hasher_counters().skipped.at(kHashSkipTooLarge), 1);

  src.SetHashing(false, 1024);
  f.pid = 12;
  proc.Write(f);
  auto s2 = Scan(src);
  const auto* off = Find(s2, 12);
  ASSERT_NE(off, nullptr);
  EXPECT_FALSE(off->exe_hash.has_value());
  EXPECT_EQ(Pd(*off)["hash_skipped"], "disabled");
  EXPECT_EQ(Find(s2, 11)->exe_hash, crypto::Sha256Hex("x"));  // seen before: kept

  LinuxProcessSource off_src({.fs = &proc, .hash_executables = false});
  auto s3 = Scan(off_src);
  for (const auto& p : s3) {
    EXPECT_FALSE(p.exe_hash.has_value());
    EXPECT_EQ(Pd(p)["hash_skipped"], "disabled");
  }
  EXPECT_EQ(off_src.hasher_counters().misses, 0);
}

// A kernel thread (PF_KTHREAD, empty cmdline) and a zombie (no exe link).
FakeProcess KernelThread(int pid) {
  FakeProcess k;
  k.pid = pid;
  k.comm = "kthreadd";
  k.flags = 0x00208040;  // PF_KTHREAD
  k.cmdline.clear();
  return k;
}
FakeProcess Zombie(int pid) {
  FakeProcess z;
  z.pid = pid;
  z.state = 'Z';
  z.exe = "";
  return z;
}

TEST(LinuxProcessSourceFakeTest, KernelThreadsAndZombiesSkipTheOnceReads) {
  FakeProc proc;
  proc.Write(KernelThread(2));
  proc.Write(Zombie(3));
  LinuxProcessSource src({.fs = &proc});
  ScanErrors errors;
  auto procs = Scan(src, &errors);
  ASSERT_EQ(procs.size(), 2u);
  json kp = Pd(Get(procs, 2));
  EXPECT_EQ(kp["kernel_thread"], true);
  EXPECT_FALSE(kp.contains("cwd"));
  EXPECT_FALSE(kp.contains("fds"));
  EXPECT_FALSE(Get(procs, 2).exe_path.has_value());
  json zp = Pd(Get(procs, 3));
  EXPECT_FALSE(zp.contains("cwd"));
  EXPECT_FALSE(zp.contains("errors"));
  EXPECT_EQ(errors.count, 0);
}

// A recycled scan's records are overwritten field by field: whatever a stale
// record held (more records, every optional set, longer strings) leaves no
// trace, and the result equals a scan into an empty vector.
TEST(LinuxProcessSourceFakeTest, ReusedRecordsEqualFreshOnes) {
  FakeProc proc;
  WriteFile(proc.File("image"), "the image");
  FakeProcess full;
  full.pid = 10;
  full.exe = proc.File("image");
  full.tty_nr = (136 << 8) | 1;
  proc.Write(full);
  proc.Write(KernelThread(2));  // no exe, empty cmdline
  FakeProcess z = Zombie(3);
  z.cmdline.clear();
  proc.Write(z);

  models::ProcessRecord junk;
  junk.pid = 99999;
  junk.ppid = 77;
  junk.name = std::string(200, 'n');
  junk.exe_path = std::string(300, 'e');
  junk.command_line = std::vector<std::string>(9, std::string(100, 'a'));
  junk.start_time_ms = 5;
  junk.cpu_percent = 99.5;
  junk.memory_bytes = 123;
  junk.status = "stale-status-text";
  junk.user_id = 4242;
  junk.effective_uid = 4343;
  junk.user_name = "stale-user-name-that-is-long";
  junk.exe_hash = std::string(80, 'f');
  junk.platform_data = std::string(500, 'p');

  LinuxProcessSource fresh_src({.fs = &proc}), reuse_src({.fs = &proc});
  for (int scan = 0; scan < 3; ++scan) {
    SCOPED_TRACE(scan);
    std::vector<models::ProcessRecord> fresh, reused(5, junk);
    ScanErrors e1, e2;
    ASSERT_TRUE(fresh_src.Enumerate(&fresh, &e1).ok());
    ASSERT_TRUE(reuse_src.EnumerateReusing(&reused, &e2).ok());
    ASSERT_EQ(fresh.size(), 3u);
    ASSERT_EQ(reused.size(), fresh.size());
    for (size_t i = 0; i < fresh.size(); ++i) {
      // cpu_percent depends on when each source looked; the rest must match.
      reused[i].cpu_percent = fresh[i].cpu_percent;
      EXPECT_TRUE(reused[i] == fresh[i]) << "record " << i << " (pid " << fresh[i].pid << ")";
    }
    EXPECT_FALSE(Get(reused, 2).exe_path.has_value());
    EXPECT_EQ(Get(reused, 2).command_line, std::vector<std::string>{});  // empty cmdline, 9 stale args gone
    EXPECT_FALSE(Get(reused, 3).exe_hash.has_value());
    EXPECT_EQ(Get(reused, 10).exe_hash, crypto::Sha256Hex("the image"));
  }
  // Enumerate keeps appending after what is already there.
  std::vector<models::ProcessRecord> appended(1, junk);
  ScanErrors e;
  ASSERT_TRUE(fresh_src.Enumerate(&appended, &e).ok());
  ASSERT_EQ(appended.size(), 4u);
  EXPECT_EQ(appended[0].pid, 99999);
}

// ---------------------------------------------------------------------------
// Incremental reads: what a warm scan costs, owner-driven status re-reads,
// the periodic refresh.

TEST(LinuxProcessSourceFakeTest, WarmScanReadsOnlyStatAndOwnerButFillsEveryField) {
  FakeProc proc;
  WriteFile(proc.File("image"), "image");
  FakeProcess f;
  for (int i = 0; i < 3; ++i) {
    f.pid = 400 + i;
    f.exe = proc.File("image");
    proc.Write(f);
  }
  LinuxProcessSource src({.fs = &proc, .exe_link_every_scans = 0});
  auto s1 = Scan(src);
  ASSERT_EQ(s1.size(), 3u);
  auto r1 = src.last_read_counters();
  EXPECT_EQ(r1.stat, 3);
  EXPECT_EQ(r1.status, 3);
  EXPECT_EQ(r1.cmdline, 3);
  EXPECT_EQ(r1.full_reads, 3);

  // Rewrite cmdline and status on disk: a warm scan must not look at them.
  for (int i = 0; i < 3; ++i) {
    f.pid = 400 + i;
    WriteFile(proc.Dir(f) + "/cmdline", std::string("changed\0", 8));
    f.ruid = 4242;
    proc.WriteStatus(f);
    f.ruid = 1000;
  }
  auto s2 = Scan(src);
  ASSERT_EQ(s2.size(), 3u);
  auto r2 = src.last_read_counters();
  EXPECT_EQ(r2.stat, 3);
  EXPECT_EQ(r2.owner, 3);
  EXPECT_EQ(r2.exe_link, 0);
  EXPECT_EQ(r2.status, 0);
  EXPECT_EQ(r2.cmdline, 0);
  EXPECT_EQ(r2.full_reads, 0);
  EXPECT_EQ(r2.owner_changes, 0);
  EXPECT_EQ(src.hasher_counters().hits + src.hasher_counters().misses, 3) << "no hashing either";
  // ... and still carries every field, from the cache.
  for (size_t i = 0; i < 3; ++i) {
    const auto& a = s1[i];
    const auto& b = Get(s2, a.pid);
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.ppid, a.ppid);
    EXPECT_EQ(b.exe_path, a.exe_path);
    EXPECT_EQ(b.command_line, a.command_line);
    EXPECT_EQ(b.command_line, (std::vector<std::string>{"fake", "--flag"}));
    EXPECT_EQ(b.start_time_ms, a.start_time_ms);
    EXPECT_EQ(b.memory_bytes, a.memory_bytes);
    EXPECT_EQ(b.status, a.status);
    EXPECT_EQ(b.user_id, 1000);
    EXPECT_EQ(b.user_name, a.user_name);
    EXPECT_EQ(b.exe_hash, crypto::Sha256Hex("image"));
    EXPECT_EQ(b.platform_data, a.platform_data);
  }
}

// The euid shows in the owner of /proc/PID: a change of it re-reads status at
// the next scan. A change that leaves euid and egid alone (the documented
// blind spot) waits for the periodic refresh.
TEST(LinuxProcessSourceFakeTest, OwnerChangeRereadsStatusOtherwiseTheRefreshDoes) {
  FakeProc proc;
  FakeProcess f;
  f.pid = 100;  // 100 % 3 == 1: refreshed on scans 4, 7, ... (first seen on scan 1)
  f.ruid = f.euid = 1000;
  proc.Write(f);
  LinuxProcessSource src({.fs = &proc, .refresh_every_scans = 3});
  EXPECT_EQ(Get(Scan(src), 100).user_id, 1000);  // scan 1

  // setuid(0) in a uid-1000 process: euid and the directory owner become 0.
  f.ruid = f.euid = 0;
  proc.WriteStatus(f);
  ASSERT_TRUE(proc.SetOwner(f));
  auto s2 = Scan(src);  // scan 2
  EXPECT_EQ(Get(s2, 100).user_id, 0);
  EXPECT_EQ(Get(s2, 100).effective_uid, 0);
  EXPECT_EQ(Pd(Get(s2, 100))["uid"], json({{"real", 0}, {"effective", 0}}));
  EXPECT_EQ(src.last_read_counters().status, 1);
  EXPECT_EQ(src.last_read_counters().owner_changes, 1);

  // A gid-only change moves the owner too.
  f.egid = 0;
  proc.WriteStatus(f);
  ASSERT_TRUE(proc.SetOwner(f));
  auto s3 = Scan(src);  // scan 3
  EXPECT_EQ(Pd(Get(s3, 100))["gid"]["effective"], 0);
  EXPECT_EQ(src.last_read_counters().owner_changes, 1);

  // Real uid changes, euid/egid (the owner) do not: unseen until the refresh.
  f.ruid = 1234;
  proc.WriteStatus(f);
  auto s4 = Scan(src);  // scan 4: 4 - 1 >= 3 and 4 % 3 == 100 % 3 -> refresh
  EXPECT_EQ(src.last_read_counters().refreshes, 1);
  EXPECT_EQ(Get(s4, 100).user_id, 1234);
  f.ruid = 4321;
  proc.WriteStatus(f);
  auto s5 = Scan(src);  // scan 5: not due
  EXPECT_EQ(src.last_read_counters().status, 0);
  EXPECT_EQ(Get(s5, 100).user_id, 1234) << "the blind spot the header documents";
}

// The refresh re-reads cmdline (argv rewrites), spread across scans by pid.
TEST(LinuxProcessSourceFakeTest, PeriodicRefreshIsSpreadAndPicksUpArgvRewrites) {
  FakeProc proc;
  FakeProcess f;
  for (int pid = 100; pid < 108; ++pid) {
    f.pid = pid;
    proc.Write(f);
  }
  LinuxProcessSource src({.fs = &proc, .refresh_every_scans = 4});
  Scan(src);  // scan 1: all new
  EXPECT_EQ(src.last_read_counters().full_reads, 8);
  f.pid = 103;
  WriteFile(proc.Dir(f) + "/cmdline", std::string("sshd: root@pts/0\0", 17));
  proc.Relink(f, "cwd", "/tmp/.x");
  // Scans 2-4: nothing due yet. Scans 5-8: pids with pid % 4 == scan % 4.
  std::map<int, std::vector<int64_t>> refreshed_on;
  for (int scan = 2; scan <= 9; ++scan) {
    auto procs = Scan(src);
    const auto& p = Get(procs, 103);
    const bool seen = p.command_line == std::vector<std::string>{"sshd: root@pts/0"};
    EXPECT_EQ(seen, scan >= 7) << "scan " << scan;
    EXPECT_EQ(Pd(p)["cwd"], scan >= 7 ? "/tmp/.x" : "/srv/app") << "scan " << scan;
    const auto r = src.last_read_counters();
    EXPECT_EQ(r.refreshes, scan >= 5 ? 2 : 0) << "scan " << scan;
    EXPECT_EQ(r.cmdline, r.refreshes);
    EXPECT_EQ(r.status, r.refreshes);
  }
}

// /proc/self/stat fields 48 and 49: where the kernel thinks argv lives.
std::pair<uintptr_t, uintptr_t> ArgArea() {
  std::string stat = ReadFile("/proc/self/stat");
  size_t pos = stat.rfind(')') + 2;
  std::vector<std::string> fields;
  while (pos < stat.size()) {
    size_t sp = stat.find_first_of(" \n", pos);
    if (sp == std::string::npos) sp = stat.size();
    fields.push_back(stat.substr(pos, sp - pos));
    pos = sp + 1;
  }
  if (fields.size() < 47) return {0, 0};
  return {std::stoull(fields[48 - 3]), std::stoull(fields[49 - 3])};
}

// A real process rewriting its argv in place (setproctitle style, as
// masquerading malware does): seen at the instance's refresh, not before.
TEST(LinuxProcessSourceTest, RealArgvRewriteIsSeenAtTheRefresh) {
  auto [arg_start, arg_end] = ArgArea();
  const std::string title = "sentinel-masq --fake";
  if (arg_end <= arg_start + title.size() + 2) GTEST_SKIP() << "argv area too small to rewrite";
  int go[2], done[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(done), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    if (::read(go[0], &c, 1) != 1) _exit(1);
    char* area = reinterpret_cast<char*>(arg_start);
    const size_t len = arg_end - arg_start;
    std::memset(area, ' ', len);
    std::memcpy(area, title.c_str(), title.size() + 1);  // with its NUL
    area[len - 1] = 'x';  // the final NUL overwritten: the kernel reads a proctitle
    if (::write(done[1], "1", 1) != 1) _exit(3);
    for (;;) ::pause();
  }
  LinuxProcessSource src({.refresh_every_scans = 2});  // refreshed on scan 3 or 4
  const auto original = linux_proc::ParseCmdline(ReadFile("/proc/self/cmdline"));
  EXPECT_EQ(Get(Scan(src), pid).command_line, original);  // scan 1: first sight
  char c;
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ASSERT_EQ(::read(done[0], &c, 1), 1);
  ASSERT_EQ(linux_proc::ParseCmdline(ReadFile("/proc/" + std::to_string(pid) + "/cmdline")),
            std::vector<std::string>{title});
  EXPECT_EQ(Get(Scan(src), pid).command_line, original) << "scan 2: not due, cmdline not read";
  Scan(src);
  auto s4 = Scan(src);
  EXPECT_EQ(Get(s4, pid).command_line, std::vector<std::string>{title});
  EXPECT_EQ(Get(s4, pid).exe_path, Get(s4, getpid()).exe_path) << "same image: no exec";

  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  for (int fd : {go[0], go[1], done[0], done[1]}) ::close(fd);
}

// On the real /proc: a warm scan reads status and cmdline only for instances
// it had not seen, or whose owner changed.
TEST(LinuxProcessSourceTest, RealWarmScanReadsNoCmdlineOrStatusForKnownInstances) {
  std::vector<std::unique_ptr<Child>> kids;
  for (int i = 0; i < 5; ++i)
    kids.push_back(std::make_unique<Child>(SpawnOptions{.argv = {"/bin/sleep", "60"}}));
  LinuxProcessSource src({.refresh_every_scans = 0});
  auto first = Scan(src);
  auto second = Scan(src);
  const auto r = src.last_read_counters();
  // Instances new since the first scan, or that exec'd in between (a busy host).
  std::map<std::pair<int64_t, int64_t>, const models::ProcessRecord*> before;
  for (const auto& p : first) before[{p.pid, p.start_time_ms}] = &p;
  int64_t changed = 0;
  for (const auto& p : second) {
    auto it = before.find({p.pid, p.start_time_ms});
    changed += it == before.end() || it->second->name != p.name || it->second->exe_path != p.exe_path;
  }
  EXPECT_GE(r.stat, static_cast<int64_t>(second.size()));
  EXPECT_LE(r.full_reads, changed);
  EXPECT_EQ(r.cmdline, r.full_reads);
  EXPECT_EQ(r.status, r.full_reads + r.owner_changes);
  EXPECT_GE(r.owner, static_cast<int64_t>(second.size()));
  for (const auto& k : kids) {
    const auto& p = Get(second, k->pid());
    EXPECT_EQ(p.command_line, (std::vector<std::string>{"/bin/sleep", "60"}));
    EXPECT_EQ(p.user_id, static_cast<int64_t>(getuid()));
    EXPECT_EQ(p.exe_hash, SleepSha());
  }
}

// Warm scans read stat through files held open from the first scan; a held
// file shows the task's changes (here: it becomes a zombie) and lets go of
// it once it is reaped.
TEST(LinuxProcessSourceTest, RealHeldStatFilesFollowTheirTaskAndLetGo) {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(7);
  }
  LinuxProcessSource src({.refresh_every_scans = 0});
  auto first = Scan(src);
  ASSERT_NE(Find(first, pid), nullptr);
  EXPECT_EQ(src.last_read_counters().stat_held, 0);
  EXPECT_EQ(src.held_stat_files(), src.tracked_instances());
  auto second = Scan(src);
  ASSERT_NE(Find(second, pid), nullptr);
  EXPECT_EQ(Find(second, pid)->status, "sleeping");
  // Every instance known from the first scan and still alive was read held.
  EXPECT_GT(src.last_read_counters().stat_held, 0);
  EXPECT_LE(src.last_read_counters().stat_held, src.last_read_counters().stat);

  ::kill(pid, SIGKILL);
  for (int i = 0; i < 200; ++i) {
    if (ReadFile("/proc/" + std::to_string(pid) + "/stat").find(") Z ") != std::string::npos) break;
    usleep(5000);
  }
  auto third = Scan(src);
  ASSERT_NE(Find(third, pid), nullptr);
  EXPECT_EQ(Find(third, pid)->status, "zombie");
  ::waitpid(pid, nullptr, 0);
  auto fourth = Scan(src);
  EXPECT_EQ(Find(fourth, pid), nullptr);
  EXPECT_EQ(src.held_stat_files(), src.tracked_instances());

  // None held when told so: every read by path.
  LinuxProcessSource by_path({.refresh_every_scans = 0, .max_held_stat_files = 0});
  Scan(by_path);
  Scan(by_path);
  EXPECT_EQ(by_path.last_read_counters().stat_held, 0);
  EXPECT_EQ(by_path.held_stat_files(), 0u);
}

// An exec that keeps comm is seen at the next scan through stat's exec
// signature, without the exe link being read every scan.
TEST(LinuxProcessSourceFakeTest, ExecKeepingCommIsSeenThroughTheExecSignature) {
  FakeProc proc;
  WriteFile(proc.File("sshd"), "the real sshd");
  WriteFile(proc.File("fake-sshd"), "not sshd");
  FakeProcess f;
  f.comm = "sshd";
  f.exe = proc.File("sshd");
  proc.Write(f);
  LinuxProcessSource src({.fs = &proc, .exe_link_every_scans = 0});
  EXPECT_EQ(Get(Scan(src), f.pid).exe_hash, crypto::Sha256Hex("the real sshd"));
  Scan(src);
  EXPECT_EQ(src.last_read_counters().exe_link, 0);

  // /tmp/x/sshd exec'd by sshd: same comm, new layout.
  proc.Relink(f, "exe", proc.File("fake-sshd"));
  f.startcode += 0x7000;
  proc.WriteStat(f);
  auto s3 = Scan(src);
  EXPECT_EQ(src.last_read_counters().exe_link, 1);
  EXPECT_EQ(src.last_read_counters().full_reads, 1);
  EXPECT_EQ(Get(s3, f.pid).exe_path, proc.File("fake-sshd"));
  EXPECT_EQ(Get(s3, f.pid).exe_hash, crypto::Sha256Hex("not sshd"));
}

// Without a signature change (ASLR off and an identical layout; or an image
// deleted after start) the exe link is still read every N scans per instance,
// spread by pid.
TEST(LinuxProcessSourceFakeTest, StaggeredExeReadCatchesWhatTheSignatureCannot) {
  FakeProc proc;
  WriteFile(proc.File("image"), "image");
  FakeProcess f;
  f.exe = proc.File("image");
  for (int pid = 100; pid < 106; ++pid) {
    f.pid = pid;
    proc.Write(f);
  }
  LinuxProcessSource src({.fs = &proc, .exe_link_every_scans = 3});
  Scan(src);  // scan 1: all new, all read
  EXPECT_EQ(src.last_read_counters().exe_link, 6);
  f.pid = 104;  // due when (104 + scan) % 3 == 0: scan 4
  proc.Relink(f, "exe", proc.File("image") + " (deleted)");
  for (int scan = 2; scan <= 4; ++scan) {
    auto procs = Scan(src);
    EXPECT_EQ(src.last_read_counters().exe_link, 2) << "scan " << scan << ": a third of them";
    EXPECT_EQ(Get(procs, 104).exe_path, proc.File("image") + (scan == 4 ? " (deleted)" : ""))
        << "scan " << scan;
  }
  EXPECT_EQ(Pd(Get(Scan(src), 104))["exe_deleted"], true);
}

// A real process exec'ing another binary under the same name: comm does not
// change, the exec signature does.
TEST(LinuxProcessSourceTest, RealExecKeepingCommIsSeenAtTheNextScan) {
  const std::string comm = [] {
    std::string c = ReadFile("/proc/self/comm");
    while (!c.empty() && c.back() == '\n') c.pop_back();
    return c;
  }();
  TempDir dir;
  const std::string impostor = dir.File(comm);  // /tmp/.../<our comm>: a copy of sleep
  WriteFile(impostor, ReadFile("/bin/sleep"));
  ASSERT_EQ(::chmod(impostor.c_str(), 0755), 0);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    if (::read(go[0], &c, 1) != 1) _exit(1);
    std::string arg0 = comm, arg1 = "60";
    char* args[] = {arg0.data(), arg1.data(), nullptr};
    ::execv(impostor.c_str(), args);
    _exit(127);
  }
  LinuxProcessSource src({.refresh_every_scans = 0, .exe_link_every_scans = 0});
  auto s1 = Scan(src);
  EXPECT_EQ(Get(s1, pid).exe_path, Get(s1, getpid()).exe_path);
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  WaitForExec(pid);
  auto s2 = Scan(src);
  EXPECT_EQ(Get(s2, pid).name, Get(s1, pid).name) << "same comm";
  EXPECT_EQ(Get(s2, pid).exe_path, RealPath(impostor));
  EXPECT_EQ(Get(s2, pid).exe_hash, SleepSha());
  EXPECT_EQ(Get(s2, pid).command_line, (std::vector<std::string>{comm, "60"}));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(go[0]);
  ::close(go[1]);
}
// Issue 17, case 3: a shell that moves stdin/stdout onto a socket after its
// first scan shows it at the next scan (fds 0-2 of shells and interpreters
// are read every scan); any other process keeps its fds as first read until
// a full read. Periodic refreshes are off here, so only the every-scan read
// can see the move.
TEST(LinuxProcessSourceFakeTest, AShellsStdioIsReadEveryScanOtherProcessesAreNot) {
  FakeProc proc;
  WriteFile(proc.File("image"), "x");
  FakeProcess shell;
  shell.pid = 100;
  shell.comm = "bash";
  shell.exe = proc.File("image");
  shell.fds = {"pipe:[11]", "pipe:[12]", "/dev/null"};
  FakeProcess other = shell;
  other.pid = 101;
  other.comm = "worker";
  proc.Write(shell);
  proc.Write(other);
  LinuxProcessSource src({.fs = &proc, .refresh_every_scans = 0});
  auto s1 = Scan(src);
  ASSERT_EQ(s1.size(), 2u);
  EXPECT_NE(Get(s1, 100).stdio_key, 0u);
  EXPECT_EQ(Get(s1, 101).stdio_key, 0u);

  for (const FakeProcess* p : {&shell, &other}) {
    proc.Relink(*p, "fd/0", "socket:[777]");
    proc.Relink(*p, "fd/1", "socket:[777]");
  }
  auto s2 = Scan(src);
  EXPECT_EQ(src.last_read_counters().stdio, 1);
  EXPECT_EQ(src.last_read_counters().stdio_changes, 1);
  json fds = Pd(Get(s2, 100))["fds"];
  EXPECT_EQ(fds["0"], json({{"type", "socket"}, {"inode", 777}})) << fds.dump();
  EXPECT_EQ(fds["1"], json({{"type", "socket"}, {"inode", 777}})) << fds.dump();
  EXPECT_EQ(fds["2"], json({{"type", "null"}}));
  EXPECT_NE(Get(s2, 100).stdio_key, Get(s1, 100).stdio_key);
  EXPECT_EQ(Pd(Get(s2, 101))["fds"]["0"]["type"], "pipe") << "read once per instance";
  EXPECT_EQ(Pd(Get(s2, 100))["cwd"], "/srv/app") << "the rest of platform_data is kept";

  auto s3 = Scan(src);  // nothing moved
  EXPECT_EQ(src.last_read_counters().stdio_changes, 0);
  EXPECT_EQ(Get(s3, 100).stdio_key, Get(s2, 100).stdio_key);
  EXPECT_EQ(Get(s3, 100).platform_data, Get(s2, 100).platform_data);
}

TEST(LinuxProcessSourceFakeTest, InterpretersAreWatchedByName) {
  for (const char* name : {"sh", "dash", "python3", "python3.11", "perl", "perl5.36.0", "ruby3.1", "php8.2",
                           "node", "lua5.4", "busybox", "pwsh"}) {
    EXPECT_TRUE(WatchesStdio(name)) << name;
  }
  for (const char* name : {"", "sleep", "sshd", "bas", "nginx", "shx"})
    EXPECT_FALSE(WatchesStdio(name)) << name;
}

// Issue 17, case 8: the image's link count and owner (a hard link of a
// /tmp payload placed elsewhere has two links and its dropper as owner).
TEST(LinuxProcessSourceFakeTest, TheImagesLinkCountAndOwnerAreRecorded) {
  FakeProc proc;
  WriteFile(proc.File("payload"), "x");
  ASSERT_EQ(::link(proc.File("payload").c_str(), proc.File("elsewhere").c_str()), 0);
  FakeProcess f;
  f.exe = proc.File("elsewhere");
  proc.Write(f);
  LinuxProcessSource src({.fs = &proc});
  auto s = Scan(src);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(Pd(s[0])["exe_nlink"], 2);
  EXPECT_EQ(Pd(s[0])["exe_owner_uid"], ::geteuid());
}

}  // namespace
}  // namespace sentinel::procmond
