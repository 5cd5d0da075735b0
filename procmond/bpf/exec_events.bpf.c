// SPDX-License-Identifier: GPL-2.0
// procmond's in-kernel exec/fork/exit probe (docs/realtime.md).
//
// Attached to BTF tracepoints (tp_btf: no tracefs needed). On exec it copies
// the path the caller asked for (bprm->filename) and the new program's
// argument block from its own memory (mm->arg_start..arg_end), so a process
// that lives for a millisecond is recorded with its exact argv. Records go
// to one ring buffer; a record that cannot be reserved (the buffer is full
// because user space is behind) is counted in `lost_events` (.bss, mapped
// read-only into procmond), never silently dropped.
//
// CO-RE: built once against the build machine's vmlinux.h, relocated by
// libbpf against the running kernel's BTF at load time.
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "exec_events.h"

char LICENSE[] SEC("license") = "GPL";

// 2 MiB: exec records are sent with their real length (header, path and
// the argv bytes used: ~700 bytes, 4.7 KiB at most), so this holds ~3,000
// execs (as many as 16 MiB of fixed 4.7 KiB records did) while procmond
// catches up. The data area is mapped twice into procmond (that is how the
// ring wraps), so it counts twice in its RSS once touched: 16 MiB cost
// 32 MiB of RSS, 2 MiB costs 4.
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 2 * 1024 * 1024);
} events SEC(".maps");

// An exec record is built here (too large for the 512-byte stack), then
// copied into the ring buffer with its real length.
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct sentinel_event);
} exec_scratch SEC(".maps");

// Records the ring buffer had no room for, by type (index = sentinel_event_type).
__u64 lost_events[4] = {};
// Set by user space before load: 0 = do not emit fork records at all.
const volatile __u32 emit_forks = 1;

// Size of a record without path and argv (fork and exit).
#define SENTINEL_HEADER_SIZE (__builtin_offsetof(struct sentinel_event, path))

static __always_inline void fill_header(struct sentinel_event* e, __u32 type, struct task_struct* task) {
  e->type = type;
  e->flags = 0;
  e->ktime_ns = bpf_ktime_get_boot_ns();
  e->pid = BPF_CORE_READ(task, pid);
  e->tgid = BPF_CORE_READ(task, tgid);
  e->ppid = BPF_CORE_READ(task, real_parent, tgid);
  e->uid = BPF_CORE_READ(task, cred, uid.val);
  e->gid = BPF_CORE_READ(task, cred, gid.val);
  e->exit_code = 0;
  e->cgroup_id = bpf_get_current_cgroup_id();
  e->argc = 0;
  e->args_len = 0;
  e->path_len = 0;
  e->reserved = 0;
  BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sentinel_exec, struct task_struct* task, pid_t old_pid, struct linux_binprm* bprm) {
  __u32 zero = 0;
  struct sentinel_event* e = bpf_map_lookup_elem(&exec_scratch, &zero);
  if (!e) return 0;
  fill_header(e, SENTINEL_EVENT_EXEC, task);
  e->argc = BPF_CORE_READ(bprm, argc);

  const char* filename = BPF_CORE_READ(bprm, filename);
  long n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), filename);
  if (n < 0) {
    e->flags |= SENTINEL_EVENT_PATH_FAULT;
    e->path[0] = 0;
    n = 0;
  }
  e->path_len = (__u32)n;

  unsigned long start = BPF_CORE_READ(task, mm, arg_start);
  unsigned long end = BPF_CORE_READ(task, mm, arg_end);
  unsigned long len = end > start ? end - start : 0;
  if (len > SENTINEL_EXEC_ARGS_MAX) {
    len = SENTINEL_EXEC_ARGS_MAX;
    e->flags |= SENTINEL_EVENT_ARGS_TRUNCATED;
  }
  // Re-checked right before the read so the verifier sees the bound.
  barrier_var(len);
  if (len > SENTINEL_EXEC_ARGS_MAX) len = 0;
  if (len > 0 && bpf_probe_read_user(e->args, len, (const void*)start) < 0) {
    e->flags |= SENTINEL_EVENT_ARGS_FAULT;
    len = 0;
  }
  e->args_len = (__u32)len;
  __u64 size = __builtin_offsetof(struct sentinel_event, args) + len;
  barrier_var(size);
  if (size > sizeof(*e)) size = sizeof(*e);
  if (bpf_ringbuf_output(&events, e, size, 0) != 0)
    __sync_fetch_and_add(&lost_events[SENTINEL_EVENT_EXEC], 1);
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sentinel_fork, struct task_struct* parent, struct task_struct* child) {
  if (!emit_forks) return 0;
  // A new thread is not a new process.
  if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid)) return 0;
  struct sentinel_event* e = bpf_ringbuf_reserve(&events, SENTINEL_HEADER_SIZE, 0);
  if (!e) {
    __sync_fetch_and_add(&lost_events[SENTINEL_EVENT_FORK], 1);
    return 0;
  }
  fill_header(e, SENTINEL_EVENT_FORK, child);
  e->ppid = BPF_CORE_READ(parent, tgid);
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sentinel_exit, struct task_struct* task) {
  // Only the thread-group leader's exit ends the process as ps sees it.
  if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid)) return 0;
  struct sentinel_event* e = bpf_ringbuf_reserve(&events, SENTINEL_HEADER_SIZE, 0);
  if (!e) {
    __sync_fetch_and_add(&lost_events[SENTINEL_EVENT_EXIT], 1);
    return 0;
  }
  fill_header(e, SENTINEL_EVENT_EXIT, task);
  e->exit_code = BPF_CORE_READ(task, exit_code);
  bpf_ringbuf_submit(e, 0);
  return 0;
}
