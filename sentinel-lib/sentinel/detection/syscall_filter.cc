#include "sentinel/detection/syscall_filter.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace sentinel::detection {

#if defined(__x86_64__) || defined(__aarch64__)
namespace {

#if defined(__x86_64__)
constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#else
constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#endif

constexpr uint32_t kDeny = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);

class Program {
 public:
  void Stmt(uint16_t code, uint32_t k) { code_.push_back(BPF_STMT(code, k)); }
  void Jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { code_.push_back(BPF_JUMP(code, k, jt, jf)); }
  void LoadNr() { Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)); }
  // if (nr == number) return action;
  void On(long number, uint32_t action) {
    Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(number), 0, 1);
    Stmt(BPF_RET | BPF_K, action);
  }
  // if (nr == number) return fd (first argument) is fd_a or fd_b ? ALLOW : EPERM;
  void OnWriteTo(long number, uint32_t fd_a, uint32_t fd_b) {
    Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(number), 0, 5);
    // Descriptors are 32-bit: the kernel reads the low word of the argument.
    Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]));
    Jump(BPF_JMP | BPF_JEQ | BPF_K, fd_a, 2, 0);
    Jump(BPF_JMP | BPF_JEQ | BPF_K, fd_b, 1, 0);
    Stmt(BPF_RET | BPF_K, kDeny);
    Stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    LoadNr();  // the accumulator for the checks that follow (not reached from here)
  }
  std::vector<sock_filter>& code() { return code_; }

 private:
  std::vector<sock_filter> code_;
};

}  // namespace

Status InstallQueryWorkerFilter(int result_fd) {
  if (result_fd < 0) return InvalidArgumentError("query worker filter: bad result descriptor");
  Program p;
  // A foreign ABI would map numbers to other calls: killed.
  p.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  p.Jump(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0);
  p.Stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  p.LoadNr();
#if defined(__x86_64__)
  p.Jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u /* __X32_SYSCALL_BIT */, 0, 1);
  p.Stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif

  // What an escape needs first: the process dies on the attempt.
  for (long nr : {
#if defined(__NR_fork)
         static_cast<long>(__NR_fork), static_cast<long>(__NR_vfork),
#endif
             static_cast<long>(__NR_execve), static_cast<long>(__NR_execveat), static_cast<long>(__NR_clone),
             static_cast<long>(__NR_clone3), static_cast<long>(__NR_socket),
             static_cast<long>(__NR_socketpair), static_cast<long>(__NR_connect),
             static_cast<long>(__NR_bind), static_cast<long>(__NR_listen), static_cast<long>(__NR_accept),
             static_cast<long>(__NR_accept4), static_cast<long>(__NR_sendto), static_cast<long>(__NR_sendmsg),
             static_cast<long>(__NR_sendmmsg), static_cast<long>(__NR_ptrace),
             static_cast<long>(__NR_process_vm_readv), static_cast<long>(__NR_process_vm_writev),
             static_cast<long>(__NR_kill), static_cast<long>(__NR_tkill), static_cast<long>(__NR_tgkill),
             static_cast<long>(__NR_memfd_create), static_cast<long>(__NR_bpf),
             static_cast<long>(__NR_io_uring_setup), static_cast<long>(__NR_unshare),
             static_cast<long>(__NR_setns), static_cast<long>(__NR_mount),
       }) {
    p.On(nr, SECCOMP_RET_KILL_PROCESS);
  }

  // Writes: only the result descriptor and stderr.
  for (long nr : {static_cast<long>(__NR_write), static_cast<long>(__NR_writev)}) {
    p.OnWriteTo(nr, static_cast<uint32_t>(result_fd), 2u);
  }

  // Reading what is already open, memory, locks, clocks, exit.
  for (long nr : {
#if defined(__NR_access)
         static_cast<long>(__NR_access), static_cast<long>(__NR_stat), static_cast<long>(__NR_lstat),
#endif
             static_cast<long>(__NR_read), static_cast<long>(__NR_readv), static_cast<long>(__NR_pread64),
             static_cast<long>(__NR_preadv), static_cast<long>(__NR_lseek), static_cast<long>(__NR_fstat),
             static_cast<long>(__NR_newfstatat), static_cast<long>(__NR_statx),
             static_cast<long>(__NR_faccessat), static_cast<long>(__NR_faccessat2),
             static_cast<long>(__NR_fcntl), static_cast<long>(__NR_close), static_cast<long>(__NR_mmap),
             static_cast<long>(__NR_munmap), static_cast<long>(__NR_mremap), static_cast<long>(__NR_mprotect),
             static_cast<long>(__NR_madvise), static_cast<long>(__NR_brk), static_cast<long>(__NR_futex),
             static_cast<long>(__NR_clock_gettime), static_cast<long>(__NR_clock_nanosleep),
             static_cast<long>(__NR_nanosleep), static_cast<long>(__NR_gettimeofday),
             static_cast<long>(__NR_getpid), static_cast<long>(__NR_gettid), static_cast<long>(__NR_getppid),
             static_cast<long>(__NR_getuid), static_cast<long>(__NR_geteuid), static_cast<long>(__NR_getgid),
             static_cast<long>(__NR_getegid), static_cast<long>(__NR_getrandom),
             static_cast<long>(__NR_sched_yield), static_cast<long>(__NR_rt_sigreturn),
             static_cast<long>(__NR_sigaltstack),  // its own signal stack (sanitizer runtimes query it)
             static_cast<long>(__NR_rt_sigprocmask), static_cast<long>(__NR_exit),
             static_cast<long>(__NR_exit_group),
       }) {
    p.On(nr, SECCOMP_RET_ALLOW);
  }
  // Everything else fails cleanly (SQLite turns it into an I/O error).
  p.Stmt(BPF_RET | BPF_K, kDeny);

  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return InternalError(std::string("query worker filter: PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno));
  }
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(p.code().size());
  prog.filter = p.code().data();
  // prctl rather than seccomp(2): the agent's systemd unit allows
  // @system-service, which has prctl but not seccomp.
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
    return InternalError(std::string("query worker filter: PR_SET_SECCOMP: ") + std::strerror(errno));
  }
  return Status::Ok();
}

#else

Status InstallQueryWorkerFilter(int) {
  return UnimplementedError("query worker filter: no seccomp filter for this architecture");
}

#endif

}  // namespace sentinel::detection
