// Wire format of the ring-buffer records that exec_events.bpf.c emits and
// procmond/realtime/ebpf_source.cc decodes (DecodeBpfEvent). Shared by the
// BPF program (compiled with clang -target bpf against vmlinux.h) and user
// space (compiled against <linux/types.h>), so only fixed-width types.
//
// Every record starts with the header; an exec record is followed by the
// executable path and the argument block (NUL-separated argv as it sits in
// the new process's memory between mm->arg_start and mm->arg_end).
#pragma once

#define SENTINEL_EXEC_PATH_MAX 512
#define SENTINEL_EXEC_ARGS_MAX 4096  // must be a power of two (used as a mask)
#define SENTINEL_EXEC_COMM_LEN 16

enum sentinel_event_type {
  SENTINEL_EVENT_EXEC = 1,
  SENTINEL_EVENT_FORK = 2,
  SENTINEL_EVENT_EXIT = 3,
};

// flags
#define SENTINEL_EVENT_ARGS_TRUNCATED 0x1  // argv longer than SENTINEL_EXEC_ARGS_MAX
#define SENTINEL_EVENT_ARGS_FAULT 0x2      // the argument block could not be read
#define SENTINEL_EVENT_PATH_FAULT 0x4      // the executable path could not be read

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
  __u32 argc;      // exec: bprm->argc
  __u32 args_len;  // exec: bytes of args[] used
  __u32 path_len;  // exec: bytes of path[] used, including the NUL
  __u32 reserved;
  char comm[SENTINEL_EXEC_COMM_LEN];
  char path[SENTINEL_EXEC_PATH_MAX];
  char args[SENTINEL_EXEC_ARGS_MAX];
};
