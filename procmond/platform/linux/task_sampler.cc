#include "procmond/platform/linux/task_sampler.h"

#include <fcntl.h>
#include <unistd.h>

#include <linux/types.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "procmond/bpf/task_iter.h"
#include "procmond/bpf_support.h"
#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"

#ifdef SENTINEL_HAVE_EBPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "task_iter.skel.h"
#endif

namespace sentinel::procmond {

char TaskStateLetter(uint32_t state, uint32_t exit_state) {
  // include/linux/sched.h: TASK_REPORT covers running..parked; an idle
  // kernel thread (TASK_IDLE = UNINTERRUPTIBLE | NOLOAD) shows as 'I'; a
  // task blocked on an rtlock as 'D'.
  constexpr uint32_t kReport = 0x7f, kUninterruptible = 0x2, kNoload = 0x400, kRtlockWait = 0x1000;
  constexpr uint32_t kIdle = kUninterruptible | kNoload;
  uint32_t s = (state | exit_state) & kReport;
  if ((state & kIdle) == kIdle) s = 0x80;
  if (state & kRtlockWait) s = kUninterruptible;
  static constexpr char kLetters[] = "RSDTtXZPI";
  int index = 0;
  while (s != 0) {  // fls()
    ++index;
    s >>= 1;
  }
  return index < 9 ? kLetters[index] : '?';
}

int64_t EncodeTtyNr(uint32_t major, uint32_t minor) {
  return static_cast<int64_t>((minor & 0xffu) | ((major & 0xfffu) << 8) | ((minor & ~0xffu) << 12));
}

namespace {

struct ThreadTime {
  uint32_t tgid;
  uint64_t ns;
};

void FillSample(const sentinel_task_leader& r, TaskSample* s) {
  s->pid = static_cast<int32_t>(r.tgid);
  s->ppid = static_cast<int32_t>(r.ppid);
  s->task_flags = r.task_flags;
  s->state = TaskStateLetter(r.state, r.exit_state);
  s->start_boottime_ns = r.start_boottime_ns;
  s->cpu_ns = r.runtime_ns + r.dead_runtime_ns;
  s->rss_pages = r.rss_pages < 0 ? 0 : r.rss_pages;
  s->threads = r.nr_threads;
  s->tty_nr = (r.flags & SENTINEL_TASK_HAS_TTY) ? EncodeTtyNr(r.tty_major, r.tty_minor) : 0;
  s->ruid = r.uid;
  s->euid = r.euid;
  s->rgid = r.gid;
  s->egid = r.egid;
  s->exec_id = r.self_exec_id;
  s->has_mm = (r.flags & SENTINEL_TASK_HAS_MM) != 0;
  s->has_exe = (r.flags & SENTINEL_TASK_HAS_EXE) != 0;
  s->exe_unlinked = (r.flags & SENTINEL_TASK_EXE_UNLINKED) != 0;
  s->exe_ino = r.exe_ino;
  s->exe_dev = r.exe_dev;
  const size_t len = strnlen(r.comm, sizeof r.comm);
  std::memcpy(s->comm_buf, r.comm, len);
  s->comm_len = static_cast<uint8_t>(len);
}

// The record at *off (a thread's time into *threads, a process into *out);
// *off moves past it.
Status DecodeRecord(std::string_view bytes, size_t* off, std::vector<ThreadTime>* threads,
                    std::vector<TaskSample>* out) {
  uint32_t kind = 0;
  if (bytes.size() - *off < sizeof kind)
    return DataLossError("task sampler: record cut short at byte " + std::to_string(*off));
  std::memcpy(&kind, bytes.data() + *off, sizeof kind);
  if (kind == SENTINEL_TASK_THREAD) {
    sentinel_task_thread t;
    if (bytes.size() - *off < sizeof t)
      return DataLossError("task sampler: thread record cut short at byte " + std::to_string(*off));
    std::memcpy(&t, bytes.data() + *off, sizeof t);
    *off += sizeof t;
    threads->push_back({t.tgid, t.runtime_ns});
    return Status::Ok();
  }
  if (kind != SENTINEL_TASK_LEADER)
    return DataLossError("task sampler: unknown record kind " + std::to_string(kind) + " at byte " +
                         std::to_string(*off));
  sentinel_task_leader r;
  if (bytes.size() - *off < sizeof r)
    return DataLossError("task sampler: process record cut short at byte " + std::to_string(*off));
  std::memcpy(&r, bytes.data() + *off, sizeof r);
  *off += sizeof r;
  if (r.tgid == 0 || r.tgid > 0x3fffffffu)
    return DataLossError("task sampler: bad pid " + std::to_string(r.tgid) + " at byte " +
                         std::to_string(*off - sizeof r));
  FillSample(r, &out->emplace_back());
  return Status::Ok();
}

// Ascending pid order, each pid once.
Status SortByPid(std::vector<TaskSample>* out) {
  auto by_pid = [](const TaskSample& a, const TaskSample& b) { return a.pid < b.pid; };
  if (std::is_sorted(out->begin(), out->end(), by_pid) &&
      std::adjacent_find(out->begin(), out->end(), [](const TaskSample& a, const TaskSample& b) {
        return a.pid == b.pid;
      }) == out->end()) {
    return Status::Ok();
  }
  std::sort(out->begin(), out->end(), by_pid);
  for (size_t i = 1; i < out->size(); ++i) {
    if ((*out)[i - 1].pid == (*out)[i].pid)
      return DataLossError("task sampler: process " + std::to_string((*out)[i].pid) + " listed twice");
  }
  return Status::Ok();
}

}  // namespace

Status DecodeTaskRecords(std::string_view bytes, std::vector<TaskSample>* out) {
  out->clear();
  std::vector<ThreadTime> threads;
  size_t off = 0;
  while (off < bytes.size()) RETURN_IF_ERROR(DecodeRecord(bytes, &off, &threads, out));
  RETURN_IF_ERROR(SortByPid(out));
  // A thread whose leader is not listed (reaped meanwhile) adds to nothing.
  for (const ThreadTime& t : threads) {
    auto it = std::lower_bound(out->begin(), out->end(), static_cast<int32_t>(t.tgid),
                               [](const TaskSample& s, int32_t pid) { return s.pid < pid; });
    if (it != out->end() && it->pid == static_cast<int32_t>(t.tgid)) it->cpu_ns += t.ns;
  }
  return Status::Ok();
}

#ifndef SENTINEL_HAVE_EBPF

Result<std::unique_ptr<TaskSampler>> OpenBpfTaskSampler() {
  return UnavailableError(
      "this procmond was built without eBPF support (see SENTINEL_EBPF in the CMake log)");
}

#else

namespace {

// "NSpid:\t1234" with one number: the initial pid namespace, where the
// iterator's pids are the ones /proc shows.
bool InInitialPidNamespace(std::string* why) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    size_t fields = 0;
    bool in = false;
    for (char c : line.substr(6)) {
      const bool digit = c >= '0' && c <= '9';
      if (digit && !in) ++fields;
      in = digit;
    }
    if (fields == 1) return true;
    *why = "procmond runs in a child pid namespace (" + line + ")";
    return false;
  }
  *why = "no NSpid in /proc/self/status (kernel too old)";
  return false;
}

class BpfTaskSampler final : public TaskSampler {
 public:
  BpfTaskSampler(task_iter* skel, bpf_link* link) : skel_(skel), link_(link) {}
  ~BpfTaskSampler() override {
    bpf_link__destroy(link_);
    task_iter__destroy(skel_);
  }
  BpfTaskSampler(const BpfTaskSampler&) = delete;
  BpfTaskSampler& operator=(const BpfTaskSampler&) = delete;

  Status Sample(std::vector<TaskSample>* out) override {
    // A new iterator per walk: an iterator fd is read once, to its end.
    UniqueFd fd(bpf_iter_create(bpf_link__fd(link_)));
    if (fd.get() < 0) return UnavailableError(BpfFailure("creating a BPF task iterator failed", errno));
    buf_.clear();
    Status st = Status::Ok();
    while (true) {
      const size_t have = buf_.size();
      buf_.resize(have + kChunk);
      ssize_t n = ::read(fd.get(), buf_.data() + have, kChunk);
      if (n < 0 && errno == EINTR) {
        buf_.resize(have);
        continue;
      }
      if (n < 0) {
        buf_.resize(have);
        st = UnavailableError(BpfFailure("reading the BPF task iterator failed", errno));
        break;
      }
      buf_.resize(have + static_cast<size_t>(n));
      if (n == 0) break;
    }
    fd = UniqueFd();
    RETURN_IF_ERROR(st);
    Status d = DecodeTaskRecords(buf_, out);
    // ~150 bytes a process: a spike must not pin its buffer for good.
    if (buf_.capacity() > 4 * (buf_.size() + (1u << 20))) std::string().swap(buf_);
    return d;
  }

 private:
  static constexpr size_t kChunk = 64 * 1024;
  task_iter* skel_;
  bpf_link* link_;
  std::string buf_;
};

}  // namespace

Result<std::unique_ptr<TaskSampler>> OpenBpfTaskSampler() {
  std::string why;
  if (!InInitialPidNamespace(&why)) return UnavailableError(why);
  CaptureLibbpfMessages();
  task_iter* skel = task_iter__open();
  if (skel == nullptr) return UnavailableError(BpfFailure("opening the BPF task iterator failed", errno));
  if (int err = task_iter__load(skel); err != 0) {
    Status st = UnavailableError(BpfFailure("loading the BPF task iterator failed", err));
    task_iter__destroy(skel);
    return st;
  }
  bpf_link* link = bpf_program__attach_iter(skel->progs.sentinel_sample_tasks, nullptr);
  if (link == nullptr) {
    Status st = UnavailableError(BpfFailure("attaching the BPF task iterator failed", errno));
    task_iter__destroy(skel);
    return st;
  }
  auto sampler = std::make_unique<BpfTaskSampler>(skel, link);
  std::vector<TaskSample> probe;
  RETURN_IF_ERROR(sampler->Sample(&probe));
  bool self = false;
  for (const TaskSample& s : probe) self |= s.pid == ::getpid();
  if (!self) return UnavailableError("the BPF task iterator did not list procmond itself");
  return std::unique_ptr<TaskSampler>(std::move(sampler));
}

#endif

}  // namespace sentinel::procmond
