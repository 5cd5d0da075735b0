// Test-only: a fake /proc tree in a temporary directory, for driving
// LinuxProcessSource deterministically (no other process on the machine
// appears in it). It implements ProcFs (proc_fs.h): files and links are read
// from the directory (the /proc magic links are plain symlinks here:
// readlink gives their target text, and open() follows them to a real file,
// which is all the source relies on); the owner of a PID directory is the
// modelled process's euid:egid, as the kernel makes it, without chown.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "procmond/platform/linux/proc_fs.h"

#include "sentinel/testing/temp_dir.h"

namespace sentinel::procmond::fakeproc {

struct FakeProcess {
  int pid = 100;
  std::string comm = "fake";
  char state = 'S';
  int ppid = 1;
  int64_t tty_nr = 0;
  uint64_t flags = 0x00400100;
  int64_t threads = 1;
  uint64_t start_ticks = 5000;
  uint64_t startcode = 0x555555554000;  // stat field 26, part of the exec signature: an exec changes it
  uint64_t utime = 1, stime = 1;
  int64_t ruid = 1000, euid = 1000, rgid = 1000, egid = 1000;
  std::string cmdline = std::string("fake\0--flag\0", 12);
  std::string exe;               // symlink target; "" = no link
  std::string cwd = "/srv/app";  // symlink target; "" = no link
  std::string cgroup = "0::/system.slice/fake.service\n";
  std::string environ = std::string("HOME=/root\0PATH=/usr/bin\0", 25);
  std::vector<std::string> fds = {"pipe:[1001]", "socket:[1002]", "/dev/null"};  // "" = not open
  std::string ns_pid = "pid:[4026531836]", ns_mnt = "mnt:[4026531841]", ns_net = "net:[4026531840]";
};

class FakeProc final : public ProcFs {
 public:
  FakeProc() {
    ::sentinel::testing::WriteFile(root() + "/stat", "cpu  1 2 3 4\nbtime 1700000000\nprocesses 9\n");
    dir_fs_ = std::move(OpenProcFs(root())).value();
  }

  // ProcFs: the directory, but for the owner of a PID directory.
  Status ReadFile(const char* rel, std::string* out, bool seq_file, UniqueFd* keep) override {
    return dir_fs_->ReadFile(rel, out, seq_file, keep);
  }
  bool Reread(int fd, std::string* out) override { return dir_fs_->Reread(fd, out); }
  Status ReadLink(const char* rel, std::string* out) override { return dir_fs_->ReadLink(rel, out); }
  Status ListPids(std::vector<int32_t>* pids) override { return dir_fs_->ListPids(pids); }
  Result<Owner> OwnerOf(const char* pid_dir) override {
    ASSIGN_OR_RETURN(Owner on_disk, dir_fs_->OwnerOf(pid_dir));  // NotFound once removed
    auto it = owners_.find(std::atoi(pid_dir));
    return it != owners_.end() ? it->second : on_disk;
  }
  ExeHasher::Outcome HashExe(ExeHasher* hasher, const char* rel) override {
    return dir_fs_->HashExe(hasher, rel);
  }
  Result<FileId> StatFollow(const char* rel) override { return dir_fs_->StatFollow(rel); }
  Result<uint32_t> MemfdSeals(const char* rel) override { return dir_fs_->MemfdSeals(rel); }
  Result<FileLinks> LinksOf(const char* rel) override { return dir_fs_->LinksOf(rel); }
  bool KeepsFilesLive() const override { return false; }

  const std::string& root() const { return dir_.path(); }
  std::string File(const std::string& name) const { return dir_.File(name); }

  // Creates or replaces the process's directory.
  void Write(const FakeProcess& p) {
    namespace fs = std::filesystem;
    const std::string d = root() + "/" + std::to_string(p.pid);
    std::error_code ec;
    fs::remove_all(d, ec);
    fs::create_directories(d + "/fd");
    fs::create_directories(d + "/ns");
    WriteStat(p);
    WriteStatus(p);
    ::sentinel::testing::WriteFile(d + "/cmdline", p.cmdline);
    ::sentinel::testing::WriteFile(d + "/cgroup", p.cgroup);
    ::sentinel::testing::WriteFile(d + "/environ", p.environ);
    Link(p.exe, d + "/exe");
    Link(p.cwd, d + "/cwd");
    for (size_t i = 0; i < p.fds.size(); ++i) Link(p.fds[i], d + "/fd/" + std::to_string(i));
    Link(p.ns_pid, d + "/ns/pid");
    Link(p.ns_mnt, d + "/ns/mnt");
    Link(p.ns_net, d + "/ns/net");
    SetOwner(p);
  }
  // Like the kernel, owns the PID directory by the process's euid:egid (as
  // OwnerOf() reports it; the directory keeps the test's owner).
  bool SetOwner(const FakeProcess& p) {
    owners_[p.pid] = Owner{static_cast<uint32_t>(p.euid), static_cast<uint32_t>(p.egid)};
    return true;
  }
  void WriteStat(const FakeProcess& p) const {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  " %c %d %d %d %lld -1 %llu 0 0 0 0 %llu %llu 0 0 20 0 %lld 0 %llu 10000000 250 "
                  "18446744073709551615 %llu 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
                  p.state, p.ppid, p.pid, p.pid, static_cast<long long>(p.tty_nr),
                  static_cast<unsigned long long>(p.flags), static_cast<unsigned long long>(p.utime),
                  static_cast<unsigned long long>(p.stime), static_cast<long long>(p.threads),
                  static_cast<unsigned long long>(p.start_ticks),
                  static_cast<unsigned long long>(p.startcode));
    ::sentinel::testing::WriteFile(Dir(p) + "/stat", std::to_string(p.pid) + " (" + p.comm + ")" + buf);
  }
  void WriteStatus(const FakeProcess& p) const {
    auto four = [](int64_t a, int64_t b) {
      return std::to_string(a) + "\t" + std::to_string(b) + "\t" + std::to_string(b) + "\t" +
             std::to_string(b);
    };
    ::sentinel::testing::WriteFile(Dir(p) + "/status", "Name:\t" + p.comm + "\nState:\tS (sleeping)\nUid:\t" +
                                                           four(p.ruid, p.euid) + "\nGid:\t" +
                                                           four(p.rgid, p.egid) + "\nThreads:\t" +
                                                           std::to_string(p.threads) + "\n");
  }
  // Replaces one entry (e.g. "cwd", "fd/1") by a symlink to `target`.
  void Relink(const FakeProcess& p, const std::string& entry, const std::string& target) const {
    std::string path = Dir(p) + "/" + entry;
    ::unlink(path.c_str());
    Link(target, path);
  }
  std::string Dir(const FakeProcess& p) const { return root() + "/" + std::to_string(p.pid); }

 private:
  static void Link(const std::string& target, const std::string& path) {
    if (!target.empty() && ::symlink(target.c_str(), path.c_str()) != 0) std::perror(path.c_str());
  }
  ::sentinel::testing::TempDir dir_;
  std::unique_ptr<ProcFs> dir_fs_;
  std::map<int, Owner> owners_;
};

}  // namespace sentinel::procmond::fakeproc
