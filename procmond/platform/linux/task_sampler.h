// Per-scan sampling of every process without opening a file per process.
//
// A steady-state scan needs, for every process, what /proc/PID/stat holds
// (ids, state, start time, CPU time, RSS, threads, tty) and its effective
// credentials; read from /proc that is a pread of the held stat file plus an
// fstatat of /proc/PID each, ~70 % of a warm scan's CPU, nearly all of it in
// the kernel. The BPF task iterator (procmond/bpf/task_iter.bpf.c) returns
// the same for every task in one stream of fixed-size records read in a few
// dozen read() calls, plus what /proc cannot give cheaply: all four real and
// effective ids (so any credential change is seen at the next scan, not only
// an euid change), an exec counter (self_exec_id: an execve is seen exactly,
// whatever its layout) and the executable's inode and "unlinked" state (a
// deleted or swapped image is seen at the next scan without a readlink).
//
// DecodeTaskRecords is pure and tested on hand-made streams; the sampler
// itself needs root to load (before the privilege drop) and then none.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/base/status.h"

namespace sentinel::procmond {

// One process (thread-group leader) as the kernel sees it now.
struct TaskSample {
  int32_t pid = 0;
  int32_t ppid = 0;
  uint32_t task_flags = 0;  // PF_*
  char state = '?';         // as /proc/PID/stat prints it
  uint64_t start_boottime_ns = 0;
  uint64_t cpu_ns = 0;  // the whole group: leader + live threads + exited threads
  int64_t rss_pages = 0;
  int64_t threads = 0;
  int64_t tty_nr = 0;  // encoded as /proc/PID/stat's tty_nr; 0: none
  uint32_t ruid = 0, euid = 0, rgid = 0, egid = 0;
  uint64_t exec_id = 0;  // self_exec_id
  bool has_mm = false;
  bool has_exe = false;
  bool exe_unlinked = false;
  uint64_t exe_ino = 0;
  uint64_t exe_dev = 0;  // kernel dev_t
  std::string_view comm() const { return {comm_buf, comm_len}; }
  char comm_buf[16] = {};
  uint8_t comm_len = 0;
};

// The state letter /proc prints for a task's __state and exit_state
// (fs/proc/array.c, task_state_array).
char TaskStateLetter(uint32_t state, uint32_t exit_state);

// tty_nr as /proc/PID/stat encodes it (new_encode_dev) for a tty's driver
// major and minor.
int64_t EncodeTtyNr(uint32_t major, uint32_t minor);

// Decodes a stream of task_iter records (procmond/bpf/task_iter.h): one
// sample per leader, in the stream's order, threads' CPU time added to
// their process. A record cut short, an unknown kind or a leader twice is
// an error naming the offset: nothing from such a stream is used.
Status DecodeTaskRecords(std::string_view bytes, std::vector<TaskSample>* out);

class TaskSampler {
 public:
  virtual ~TaskSampler() = default;
  // Every process of the system now, in ascending pid order.
  virtual Status Sample(std::vector<TaskSample>* out) = 0;
};

// Loads and attaches the BPF task iterator. Needs root (CAP_BPF and
// CAP_PERFMON), a kernel with BTF and BPF iterators, and procmond in the
// initial pid namespace (the iterator reports global pids); Unavailable
// with the reason otherwise. Reads one sample before returning, so a
// sampler that is returned works.
Result<std::unique_ptr<TaskSampler>> OpenBpfTaskSampler();

}  // namespace sentinel::procmond
