// Wire format of the records that task_iter.bpf.c writes into its seq_file
// and procmond/platform/linux/task_iterator.cc decodes (DecodeTaskRecords).
// Shared by the BPF program (clang -target bpf, vmlinux.h) and user space
// (<linux/types.h>): fixed-width types only, every field naturally aligned.
//
// One read of the iterator walks every task of the system once, in pid
// order. A thread-group leader writes a leader record; every other thread
// only a thread record, whose CPU time user space adds to its process (as
// /proc/PID/stat does for the group).
#pragma once

#define SENTINEL_TASK_COMM_LEN 16

enum sentinel_task_kind {
  SENTINEL_TASK_LEADER = 1,
  SENTINEL_TASK_THREAD = 2,
};

// flags of a leader record
#define SENTINEL_TASK_HAS_MM 0x1        // a user address space (not a kernel thread or a reaped mm)
#define SENTINEL_TASK_HAS_TTY 0x2       // a controlling terminal: tty_major/tty_minor are set
#define SENTINEL_TASK_HAS_EXE 0x4       // mm->exe_file is set: exe_ino/exe_dev are set
#define SENTINEL_TASK_EXE_UNLINKED 0x8  // its dentry is unlinked: the exe link reads "... (deleted)"
#define SENTINEL_TASK_RSS_OLD 0x10      // rss read from the pre-6.2 layout (atomic counters)

struct sentinel_task_thread {
  __u32 kind;  // SENTINEL_TASK_THREAD
  __u32 tgid;
  __u64 runtime_ns;  // se.sum_exec_runtime of this thread
};

struct sentinel_task_leader {
  __u32 kind;  // SENTINEL_TASK_LEADER
  __u32 tgid;
  __u32 ppid;        // tgid of real_parent
  __u32 flags;       // SENTINEL_TASK_*
  __u32 task_flags;  // task->flags (PF_*)
  __u32 state;       // task->__state
  __u32 exit_state;
  __u32 nr_threads;  // signal->nr_threads
  __u64 start_boottime_ns;
  __u64 runtime_ns;       // se.sum_exec_runtime of the leader thread
  __u64 dead_runtime_ns;  // signal->sum_sched_runtime: the group's exited threads
  __s64 rss_pages;        // file + anon + shmem, as get_mm_rss() (clamped at 0)
  __u64 self_exec_id;     // incremented by every execve()
  __u64 exe_ino;
  __u32 exe_dev;  // kernel dev_t (major << 20 | minor)
  __u32 tty_major;
  __u32 tty_minor;
  __u32 uid, euid, gid, egid;
  __u32 reserved;
  char comm[SENTINEL_TASK_COMM_LEN];
};
