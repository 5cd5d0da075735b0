// SPDX-License-Identifier: GPL-2.0
// procmond's in-kernel exec/fork/exit probe (docs/realtime.md).
//
// Attached to BTF tracepoints (tp_btf: no tracefs needed). On exec it copies
// what a process that is gone a millisecond later can no longer tell: the
// path the caller asked for (bprm->filename), the new program's argument and
// environment blocks from its own memory, the working directory (a bounded
// walk of dentries and mounts), the credentials the exec produced (effective
// ids, bprm->secureexec), the login uid, the controlling terminal, the start
// time the scan's task iterator reads, and the identity of the executed image
// (so user space can hash it from its cache without a syscall). Records go to
// one ring buffer; a record that cannot be reserved (the buffer is full
// because user space is behind) is counted in `lost_events` (.bss, mapped
// into procmond), never silently dropped.
//
// Wake-ups: user space is not woken for every record (a context switch per
// exec was most of procmond's CPU in an exec storm). A record forces a
// wake-up only when SENTINEL_WAKEUP_BYTES are pending or SENTINEL_WAKEUP_NS
// have passed since the last forced one; in between procmond polls with a
// timeout of the same order (procmond/realtime/ebpf_source.cc), so no record
// waits much longer than that.
//
// CO-RE: built once against the build machine's vmlinux.h, relocated by
// libbpf against the running kernel's BTF at load time.
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "exec_events.h"

char LICENSE[] SEC("license") = "GPL";

// 2 MiB: records are sent with their real length (an exec ~1-3 KiB with its
// environment, 9.8 KiB at most), so this holds ~1,000 typical execs while
// procmond catches up. The data area is mapped twice into procmond (that is
// how the ring wraps), so it counts twice in its RSS once touched.
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
// When a record last forced a wake-up of procmond (CLOCK_BOOTTIME ns).
__u64 last_wakeup_ns = 0;
// New processes forked while emit_forks is 0 (counted here, no record sent).
__u64 forks_counted = 0;
// Set by user space before load: 0 = count forks in forks_counted instead of
// sending a record for each (procmond does not store them).
const volatile __u32 emit_forks = 1;

#define SENTINEL_WAKEUP_BYTES (256 * 1024)
#define SENTINEL_WAKEUP_NS (50ULL * 1000 * 1000)
#define SENTINEL_DATA_MASK (SENTINEL_EXEC_DATA_MAX / 2 - 1)
#if SENTINEL_EXEC_ENV_MAX != SENTINEL_EXEC_ARGS_MAX
#error "read_block() bounds both blocks by SENTINEL_EXEC_ARGS_MAX"
#endif

// Kernels before 6.6 kept the inode times in timespec64 fields.
struct inode___pre66 {
  struct timespec64 i_mtime;
  struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

// BPF_RB_FORCE_WAKEUP when enough is pending or enough time has passed,
// BPF_RB_NO_WAKEUP otherwise (the consumer's poll timeout picks it up).
static __always_inline __u64 wakeup_flag(void) {
  __u64 now = bpf_ktime_get_boot_ns();
  if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= SENTINEL_WAKEUP_BYTES ||
      now - last_wakeup_ns >= SENTINEL_WAKEUP_NS) {
    last_wakeup_ns = now;
    return BPF_RB_FORCE_WAKEUP;
  }
  return BPF_RB_NO_WAKEUP;
}

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
  e->start_boottime_ns = BPF_CORE_READ(task, start_boottime);
  // The parent PROCESS's start: real_parent is the thread that forked, which
  // in a multi-threaded parent (a Go or Java service, a thread pool) is not
  // the group leader whose start time /proc and the scans give the process.
  e->parent_start_boottime_ns = BPF_CORE_READ(task, real_parent, group_leader, start_boottime);
  BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
}

// The identity of the executed image: what stat() of /proc/PID/exe says.
static __always_inline void fill_file(struct sentinel_event* e, struct file* file) {
  struct inode* inode = BPF_CORE_READ(file, f_inode);
  if (!inode) return;
  if (bpf_core_field_exists(inode->i_mtime_sec) && bpf_core_field_exists(inode->i_ctime_sec)) {
    e->file_mtime_sec = BPF_CORE_READ(inode, i_mtime_sec);
    e->file_mtime_nsec = BPF_CORE_READ(inode, i_mtime_nsec);
    e->file_ctime_sec = BPF_CORE_READ(inode, i_ctime_sec);
    e->file_ctime_nsec = BPF_CORE_READ(inode, i_ctime_nsec);
  } else if (bpf_core_field_exists(((struct inode___pre66*)inode)->i_ctime)) {
    struct inode___pre66* old = (void*)inode;
    e->file_mtime_sec = BPF_CORE_READ(old, i_mtime.tv_sec);
    e->file_mtime_nsec = BPF_CORE_READ(old, i_mtime.tv_nsec);
    e->file_ctime_sec = BPF_CORE_READ(old, i_ctime.tv_sec);
    e->file_ctime_nsec = BPF_CORE_READ(old, i_ctime.tv_nsec);
  } else {
    return;
  }
  // Since 6.13 bit 31 of i_ctime_nsec flags a queried ctime (multigrain
  // timestamps); a nanosecond count needs 30 bits.
  e->file_mtime_nsec &= 0x3fffffff;
  e->file_ctime_nsec &= 0x3fffffff;
  e->file_ino = BPF_CORE_READ(inode, i_ino);
  e->file_dev = BPF_CORE_READ(inode, i_sb, s_dev);
  e->file_size = BPF_CORE_READ(inode, i_size);
  e->file_nlink = BPF_CORE_READ(inode, __i_nlink);
  e->flags |= SENTINEL_EVENT_HAS_FILE;
}

// Credentials, login uid and terminal of the new program.
static __always_inline void fill_identity(struct sentinel_event* e, struct task_struct* task,
                                          struct linux_binprm* bprm) {
  e->euid = BPF_CORE_READ(task, cred, euid.val);
  e->egid = BPF_CORE_READ(task, cred, egid.val);
  if (BPF_CORE_READ_BITFIELD_PROBED(bprm, secureexec)) e->flags |= SENTINEL_EVENT_SECUREEXEC;
  if (bpf_core_field_exists(task->loginuid)) {
    e->loginuid = BPF_CORE_READ(task, loginuid.val);
    e->flags |= SENTINEL_EVENT_HAS_LOGINUID;
  }
  struct tty_struct* tty = BPF_CORE_READ(task, signal, tty);
  if (tty) {
    e->tty_major = BPF_CORE_READ(tty, driver, major);
    e->tty_minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
    e->flags |= SENTINEL_EVENT_HAS_TTY;
  }
}

// The state of the working-directory walk (bpf_loop's context).
struct cwd_walk {
  struct dentry* dentry;
  struct mount* mnt;
  __u32 off;  // where the next component goes in data
  __u32 end;  // off may not pass this (start + SENTINEL_EXEC_CWD_MAX)
  __u32 depth;
  __u32 done;  // the root was reached
  __u32 cut;   // a bound was hit
};

// One step up: a component copied, or a mount crossed. 1 ends the walk.
static long cwd_step(__u32 index, void* ctx) {
  struct cwd_walk* w = ctx;
  __u32 zero = 0;
  struct sentinel_event* e = bpf_map_lookup_elem(&exec_scratch, &zero);
  if (!e) return 1;
  // Locals: a field of this program's own struct inside BPF_CORE_READ would
  // be relocated against the kernel's BTF.
  struct dentry* d = w->dentry;
  struct mount* mnt = w->mnt;
  struct dentry* parent = BPF_CORE_READ(d, d_parent);
  struct dentry* mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
  if (d == mnt_root || d == parent) {
    struct mount* up = BPF_CORE_READ(mnt, mnt_parent);
    if (d != mnt_root || !up || up == mnt) {
      w->done = 1;  // the root of the mount tree (or of a detached file system)
      return 1;
    }
    w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
    w->mnt = up;
    return 0;
  }
  __u32 len = BPF_CORE_READ(d, d_name.len);
  __u32 room = w->end > w->off ? w->end - w->off : 0;
  if (room > SENTINEL_EXEC_NAME_MAX) room = SENTINEL_EXEC_NAME_MAX;
  if (len + 1 > room) {
    w->cut = 1;
    return 1;
  }
  const unsigned char* name = BPF_CORE_READ(d, d_name.name);
  long n = bpf_probe_read_kernel_str(e->data + (w->off & SENTINEL_DATA_MASK), room, name);
  if (n <= 0) {
    w->cut = 1;
    return 1;
  }
  w->off += (__u32)n;
  w->depth++;
  w->dentry = parent;
  return 0;
}

// Walks task->fs->pwd up to the root into data at `off`; returns its length.
static __always_inline __u32 read_cwd(struct sentinel_event* e, struct task_struct* task, __u32 off) {
  struct fs_struct* fs = BPF_CORE_READ(task, fs);
  struct cwd_walk w = {};
  if (!fs) {
    e->flags |= SENTINEL_EVENT_CWD_FAULT;
    return 0;
  }
  struct dentry* pwd = BPF_CORE_READ(fs, pwd.dentry);
  struct vfsmount* vmnt = BPF_CORE_READ(fs, pwd.mnt);
  if (!pwd || !vmnt) {
    e->flags |= SENTINEL_EVENT_CWD_FAULT;
    return 0;
  }
  w.dentry = pwd;
  w.mnt = container_of(vmnt, struct mount, mnt);
  // d_unlinked(): unhashed and not a root.
  if (!BPF_CORE_READ(pwd, d_hash.pprev) && BPF_CORE_READ(pwd, d_parent) != pwd)
    e->flags |= SENTINEL_EVENT_CWD_DELETED;
  w.off = off;
  w.end = off + SENTINEL_EXEC_CWD_MAX;
  bpf_loop(SENTINEL_EXEC_CWD_DEPTH, cwd_step, &w, 0);
  if (!w.done || w.cut) e->flags |= SENTINEL_EVENT_CWD_TRUNCATED;
  e->cwd_depth = w.depth;
  return w.off - off;
}

#define SENTINEL_HALF_BLOCK (SENTINEL_EXEC_ARGS_MAX / 2)

// Copies user memory [start, end) into data at `off`: the whole block when it
// fits in SENTINEL_EXEC_ARGS_MAX, else its first and its last half-bound
// bytes back to back (*head = bytes of the first part). Returns the bytes
// copied; sets `truncated` or `fault` in flags.
static __always_inline __u32 read_block(struct sentinel_event* e, __u32 off, unsigned long start,
                                        unsigned long end, __u32 truncated, __u32 fault, __u32* head) {
  unsigned long len = end > start ? end - start : 0;
  *head = 0;
  if (len > SENTINEL_EXEC_ARGS_MAX) {
    e->flags |= truncated;
    if (bpf_probe_read_user(e->data + (off & SENTINEL_DATA_MASK), SENTINEL_HALF_BLOCK, (const void*)start) <
            0 ||
        bpf_probe_read_user(e->data + ((off + SENTINEL_HALF_BLOCK) & SENTINEL_DATA_MASK), SENTINEL_HALF_BLOCK,
                            (const void*)(end - SENTINEL_HALF_BLOCK)) < 0) {
      e->flags |= fault;
      return 0;
    }
    *head = SENTINEL_HALF_BLOCK;
    return SENTINEL_EXEC_ARGS_MAX;
  }
  // Re-checked right before the read so the verifier sees the bound.
  barrier_var(len);
  if (len > SENTINEL_EXEC_ARGS_MAX) len = 0;
  if (len > 0 && bpf_probe_read_user(e->data + (off & SENTINEL_DATA_MASK), len, (const void*)start) < 0) {
    e->flags |= fault;
    len = 0;
  }
  *head = (__u32)len;
  return (__u32)len;
}

// The task's root directory: user space compares it with the host's root to
// know whether exe_path names a file of the host's tree (exe_host_mismatch).
static __always_inline void fill_root(struct sentinel_event* e, struct task_struct* task) {
  struct dentry* root = BPF_CORE_READ(task, fs, root.dentry);
  if (!root) return;
  e->root_ino = BPF_CORE_READ(root, d_inode, i_ino);
  e->root_dev = BPF_CORE_READ(root, d_sb, s_dev);
  e->flags |= SENTINEL_EVENT_HAS_ROOT;
}

#define SENTINEL_TMPFS_MAGIC 0x01021994

// A memfd image (a tmpfs file named "memfd:..."): its seals, read while the
// process cannot have gone yet (a runc-style re-exec is judged by them).
static __always_inline void fill_memfd(struct sentinel_event* e, struct file* file) {
  struct inode* inode = BPF_CORE_READ(file, f_inode);
  if (!inode || BPF_CORE_READ(inode, i_sb, s_magic) != SENTINEL_TMPFS_MAGIC) return;
  char name[8] = {};
  bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
  if (name[0] != 'm' || name[1] != 'e' || name[2] != 'm' || name[3] != 'f' || name[4] != 'd' ||
      name[5] != ':')
    return;
  if (!bpf_core_type_exists(struct shmem_inode_info)) return;
  struct shmem_inode_info* info = container_of(inode, struct shmem_inode_info, vfs_inode);
  e->memfd_seals = BPF_CORE_READ(info, seals);
  e->flags |= SENTINEL_EVENT_MEMFD;
}

static __always_inline void clear_exec_fields(struct sentinel_event* e) {
  e->argc = 0;
  e->path_len = e->args_len = e->env_len = e->cwd_len = e->cwd_depth = 0;
  e->euid = e->egid = e->loginuid = e->tty_major = e->tty_minor = 0;
  e->file_nlink = 0;
  e->file_ino = 0;
  e->file_dev = 0;
  e->args_size = e->args_head_len = e->env_head_len = 0;
  e->root_ino = 0;
  e->root_dev = e->memfd_seals = 0;
  e->file_size = e->file_mtime_sec = e->file_ctime_sec = 0;
  e->file_mtime_nsec = e->file_ctime_nsec = 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sentinel_exec, struct task_struct* task, pid_t old_pid, struct linux_binprm* bprm) {
  __u32 zero = 0;
  struct sentinel_event* e = bpf_map_lookup_elem(&exec_scratch, &zero);
  if (!e) return 0;
  fill_header(e, SENTINEL_EVENT_EXEC, task);
  clear_exec_fields(e);
  e->argc = BPF_CORE_READ(bprm, argc);
  fill_identity(e, task, bprm);
  fill_file(e, BPF_CORE_READ(bprm, file));
  fill_memfd(e, BPF_CORE_READ(bprm, file));
  fill_root(e, task);
  // binfmt_script and binfmt_misc point bprm->interp at the interpreter's
  // path: then file_* describe the interpreter, not the file at `path`.
  if (BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename)) e->flags |= SENTINEL_EVENT_INTERP;

  const char* filename = BPF_CORE_READ(bprm, filename);
  long n = bpf_probe_read_kernel_str(e->data, SENTINEL_EXEC_PATH_MAX, filename);
  if (n < 0) {
    e->flags |= SENTINEL_EVENT_PATH_FAULT;
    e->data[0] = 0;
    n = 0;
  }
  __u32 off = (__u32)n;
  e->path_len = off;
  e->cwd_len = read_cwd(e, task, off);
  off += e->cwd_len;
  unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
  unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
  e->args_size = arg_end > arg_start ? (__u32)(arg_end - arg_start) : 0;
  e->args_len = read_block(e, off, arg_start, arg_end, SENTINEL_EVENT_ARGS_TRUNCATED,
                           SENTINEL_EVENT_ARGS_FAULT, &e->args_head_len);
  off += e->args_len;
  e->env_len = read_block(e, off, BPF_CORE_READ(task, mm, env_start), BPF_CORE_READ(task, mm, env_end),
                          SENTINEL_EVENT_ENV_TRUNCATED, SENTINEL_EVENT_ENV_FAULT, &e->env_head_len);
  off += e->env_len;

  __u64 size = SENTINEL_EXEC_HEADER_SIZE + (__u64)off;
  barrier_var(size);
  if (size > sizeof(*e)) size = sizeof(*e);
  if (bpf_ringbuf_output(&events, e, size, wakeup_flag()) != 0)
    __sync_fetch_and_add(&lost_events[SENTINEL_EVENT_EXEC], 1);
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sentinel_fork, struct task_struct* parent, struct task_struct* child) {
  // A new thread is not a new process.
  if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid)) return 0;
  if (!emit_forks) {
    __sync_fetch_and_add(&forks_counted, 1);
    return 0;
  }
  struct sentinel_event* e = bpf_ringbuf_reserve(&events, SENTINEL_HEADER_SIZE, 0);
  if (!e) {
    __sync_fetch_and_add(&lost_events[SENTINEL_EVENT_FORK], 1);
    return 0;
  }
  fill_header(e, SENTINEL_EVENT_FORK, child);
  e->ppid = BPF_CORE_READ(parent, tgid);
  e->parent_start_boottime_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
  bpf_ringbuf_submit(e, wakeup_flag());
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
  bpf_ringbuf_submit(e, wakeup_flag());
  return 0;
}
