// Wire format of the ring-buffer records that exec_events.bpf.c emits and
// procmond/realtime/ebpf_source.cc decodes (DecodeBpfRecord). Shared by the
// BPF program (compiled with clang -target bpf against vmlinux.h) and user
// space (compiled against <linux/types.h>), so only fixed-width types.
//
// Every record starts with the header (struct sentinel_event up to `comm`
// included: SENTINEL_HEADER_SIZE). Fork and exit records are that header
// alone. An exec record has the exec fields too, then its variable parts
// packed back to back in `data`, in this order, each exactly as long as its
// *_len field says (only the bytes used are sent):
//   path  the path the caller executed (bprm->filename), NUL included
//   cwd   the working directory's components, LEAF FIRST, each ended by a
//         NUL ("c\0b\0a\0" is /a/b/c); cwd_depth of them; none is "/"
//   args  the argument block: NUL-separated argv as it sits in the new
//         program's memory (mm->arg_start .. arg_end). A block longer than
//         SENTINEL_EXEC_ARGS_MAX is sent as its first args_head_len bytes
//         followed by its last args_len - args_head_len bytes (flag
//         SENTINEL_EVENT_ARGS_TRUNCATED; args_size has the whole length), so
//         padding before or after a command hides neither end of it
//   env   the environment block, likewise (mm->env_start .. env_end; head and
//         tail split by env_head_len); user space keeps only allow-listed
//         variables (docs/realtime.md)
#pragma once

#define SENTINEL_EXEC_PATH_MAX 512
#define SENTINEL_EXEC_ARGS_MAX 4096  // must be a power of two (used as a mask)
#define SENTINEL_EXEC_ENV_MAX 4096   // must be a power of two (used as a mask)
#define SENTINEL_EXEC_CWD_MAX 1024   // bytes of cwd components, NULs included
#define SENTINEL_EXEC_CWD_DEPTH 48   // components walked at most
#define SENTINEL_EXEC_NAME_MAX 256   // one path component, NUL included
#define SENTINEL_EXEC_COMM_LEN 16
// Room for the packed parts. Each part is written at an offset masked with
// (SENTINEL_EXEC_DATA_MAX / 2 - 1) so the verifier sees every write in
// bounds: every part starts below that half (the parts before env add up to
// 5,632 bytes at most) and none is longer than 4,096 bytes.
#define SENTINEL_EXEC_DATA_MAX 16384

enum sentinel_event_type {
  SENTINEL_EVENT_EXEC = 1,
  SENTINEL_EVENT_FORK = 2,
  SENTINEL_EVENT_EXIT = 3,
};

// flags
#define SENTINEL_EVENT_ARGS_TRUNCATED 0x1  // argv longer than SENTINEL_EXEC_ARGS_MAX
#define SENTINEL_EVENT_ARGS_FAULT 0x2      // the argument block could not be read
#define SENTINEL_EVENT_PATH_FAULT 0x4      // the executable path could not be read
#define SENTINEL_EVENT_ENV_TRUNCATED 0x8   // environment longer than SENTINEL_EXEC_ENV_MAX
#define SENTINEL_EVENT_ENV_FAULT 0x10      // the environment block could not be read
#define SENTINEL_EVENT_CWD_TRUNCATED 0x20  // deeper or longer than the bounds: cwd incomplete
#define SENTINEL_EVENT_CWD_DELETED 0x40    // the working directory was removed
#define SENTINEL_EVENT_CWD_FAULT 0x80      // no working directory could be read
#define SENTINEL_EVENT_SECUREEXEC 0x100    // bprm->secureexec: the loader sees AT_SECURE
#define SENTINEL_EVENT_HAS_TTY 0x200       // a controlling terminal: tty_major/tty_minor set
#define SENTINEL_EVENT_HAS_LOGINUID 0x400  // the kernel has task->loginuid (CONFIG_AUDIT)
#define SENTINEL_EVENT_HAS_FILE 0x800      // file_* describe the executed image
#define SENTINEL_EVENT_HAS_ROOT 0x1000     // root_dev/root_ino describe the task's root directory
#define SENTINEL_EVENT_MEMFD 0x2000        // the image is a memfd (tmpfs "memfd:*"): memfd_seals set
#define SENTINEL_EVENT_INTERP 0x4000       // a script (#!) or binfmt_misc: the image is its interpreter

struct sentinel_event {
  __u32 type;      // enum sentinel_event_type
  __u32 flags;     // SENTINEL_EVENT_*
  __u64 ktime_ns;  // bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME
  __u32 pid;       // thread id (kernel pid)
  __u32 tgid;      // process id
  __u32 ppid;      // tgid of the real parent (fork: the parent process)
  __u32 uid;
  __u32 gid;
  __s32 exit_code;  // exit: wait(2) status (code << 8 | signal)
  __u64 cgroup_id;
  __u64 start_boottime_ns;         // task->start_boottime (what the scan's task iterator reads)
  __u64 parent_start_boottime_ns;  // the real parent process's (group leader's) start_boottime
  char comm[SENTINEL_EXEC_COMM_LEN];
  // exec only from here on
  __u32 argc;      // bprm->argc
  __u32 path_len;  // bytes of path in data, NUL included
  __u32 args_len;  // bytes of the argument block in data
  __u32 env_len;   // bytes of the environment block in data
  __u32 cwd_len;   // bytes of cwd components in data
  __u32 cwd_depth;
  __u32 euid;
  __u32 egid;
  __u32 loginuid;  // 4294967295: never set (valid only with SENTINEL_EVENT_HAS_LOGINUID)
  __u32 tty_major;
  __u32 tty_minor;
  __u32 file_nlink;  // the executed image (SENTINEL_EVENT_HAS_FILE): link count,
  __u64 file_ino;    // inode number,
  __u32 file_dev;    // kernel dev_t of its file system (major << 20 | minor),
  __u32 args_size;   // bytes of the whole argument block (arg_end - arg_start)
  __s64 file_size;   // size,
  __s64 file_mtime_sec;
  __s64 file_ctime_sec;
  __u32 file_mtime_nsec;
  __u32 file_ctime_nsec;
  __u32 args_head_len;  // bytes of args from the block's start (== args_len when not truncated)
  __u32 env_head_len;   // likewise for env
  __u64 root_ino;       // the task's root directory (SENTINEL_EVENT_HAS_ROOT): inode number,
  __u32 root_dev;       // kernel dev_t of its file system
  __u32 memfd_seals;    // F_SEAL_* of a memfd image (SENTINEL_EVENT_MEMFD)
  char data[SENTINEL_EXEC_DATA_MAX];
};

// Size of a fork or exit record.
#define SENTINEL_HEADER_SIZE (__builtin_offsetof(struct sentinel_event, argc))
// Size of an exec record without its variable parts.
#define SENTINEL_EXEC_HEADER_SIZE (__builtin_offsetof(struct sentinel_event, data))
