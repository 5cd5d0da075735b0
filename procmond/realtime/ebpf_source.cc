// EbpfSource: exec/fork/exit from BTF tracepoints through a BPF ring buffer
// (procmond/bpf/exec_events.bpf.c). Loading needs root (CAP_BPF +
// CAP_PERFMON); once loaded and attached, the links, the ring buffer's
// mapping and the .bss mapping live on in procmond's file descriptors and
// memory, so consuming events needs no privilege after the drop.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "procmond/bpf_support.h"
#include "procmond/realtime/decode.h"
#include "procmond/realtime/realtime_source.h"
#include "sentinel/base/files.h"
#include "sentinel/telemetry/log.h"

#ifdef SENTINEL_HAVE_EBPF
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "exec_events.skel.h"
#endif

namespace sentinel::procmond {

#ifndef SENTINEL_HAVE_EBPF

Result<std::unique_ptr<RealtimeSource>> OpenEbpfSource(const RealtimeOptions&, RealtimeStats*) {
  return UnavailableError(
      "this procmond was built without eBPF support (no BTF, clang or bpftool at build time; see the CMake "
      "log "
      "and SENTINEL_EBPF)");
}

#else

namespace {

class EbpfSource final : public ThreadedRealtimeSource {
 public:
  EbpfSource(exec_events* skel, RealtimeStats* stats, bool emit_forks)
      : skel_(skel), stats_(stats), emit_forks_(emit_forks) {}
  ~EbpfSource() override {
    Stop();
    if (rb_ != nullptr) ring_buffer__free(rb_);
    exec_events__destroy(skel_);
  }
  EbpfSource(const EbpfSource&) = delete;
  EbpfSource& operator=(const EbpfSource&) = delete;

  // Creates the ring-buffer reader, with this source as the handler's ctx,
  // and adds the eventfd Stop() wakes it with to the reader's epoll set.
  Status CreateRing() {
    rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &EbpfSource::OnRecord, this, nullptr);
    if (rb_ == nullptr)
      return UnavailableError(BpfFailure("creating the BPF ring buffer reader failed", errno));
    stop_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;  // not a ring index
    if (stop_fd_.get() < 0 ||
        ::epoll_ctl(ring_buffer__epoll_fd(rb_), EPOLL_CTL_ADD, stop_fd_.get(), &ev) != 0)
      return UnavailableError(std::string("the BPF ring buffer's stop eventfd: ") + std::strerror(errno));
    return Status::Ok();
  }

  const char* name() const override { return "ebpf"; }

  // The ring buffer is created before Start (before the privilege drop):
  // ring_buffer__new() only mmaps the map and adds it to an epoll set, but
  // doing everything that touches the bpf() syscall while still root keeps
  // the privilege story simple.
  static int OnRecord(void* ctx, void* data, size_t size) {
    static_cast<EbpfSource*>(ctx)->Handle(data, size);
    return 0;
  }

 private:
  void Prepare() override { boot_offset_ns_ = ClockOffsetNs(CLOCK_BOOTTIME); }
  void Stopped() override { ReadKernelCounters(); }

  void Handle(void* data, size_t size) {
    auto ev = DecodeBpfRecord(data, size, boot_offset_ns_);
    if (!ev.ok()) {
      if (decode_errors_++ < 5)
        telemetry::LogError("undecodable BPF record", {{"error", ev.status().message()}});
      stats_->incomplete.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    stats_->AddReceived(ev->type);
    sink_(std::move(*ev));
  }

  void ReadKernelCounters() {
    // .bss is mapped into this process: a plain read, no syscall, no privilege.
    int64_t lost = 0;
    for (int i = 1; i < 4; ++i)
      lost += static_cast<int64_t>(__atomic_load_n(&skel_->bss->lost_events[i], __ATOMIC_RELAXED));
    if (lost != last_lost_) {
      if (lost > last_lost_) {
        telemetry::LogWarn("real-time events lost: the BPF ring buffer was full",
                           {{"lost_total", lost}, {"lost_since_last", lost - last_lost_}});
      }
      last_lost_ = lost;
    }
    stats_->SetLostKernel(lost);
    if (!emit_forks_) {
      stats_->SetForksCountedInKernel(
          static_cast<int64_t>(__atomic_load_n(&skel_->bss->forks_counted, __ATOMIC_RELAXED)));
    }
  }

  // Waits for records the way the BPF program wakes it (exec_events.bpf.c):
  // most records are submitted without a wake-up, so while events flow the
  // ring is drained every kActivePollMs; after two polls in a row that found
  // nothing (and no wake-up came), the program's next record wakes this
  // thread itself (its last forced wake-up is then over kActivePollMs old),
  // and the wait is kIdlePollMs, a safety net only. Stop() wakes the wait
  // through stop_fd_.
  void Run() override {
    int empty_polls = 0;
    int64_t polls = 0;
    while (!stop_) {
      const int timeout = empty_polls >= 2 ? kIdlePollMs : kActivePollMs;
      epoll_event ready[2];
      const int n = ::epoll_wait(ring_buffer__epoll_fd(rb_), ready, 2, timeout);
      if (n < 0 && errno != EINTR) {
        telemetry::LogError("BPF ring buffer poll failed", {{"error", std::strerror(errno)}});
        std::this_thread::sleep_for(std::chrono::milliseconds(kActivePollMs));
      }
      // Re-measure the clock offset now and then, and after a quiet spell
      // (before decoding what ended it): the wall clock may have been set.
      if (timeout == kIdlePollMs || ++polls % 64 == 0) boot_offset_ns_ = ClockOffsetNs(CLOCK_BOOTTIME);
      const int consumed = ring_buffer__consume(rb_);
      if (consumed < 0) {
        telemetry::LogError("BPF ring buffer read failed", {{"error", std::strerror(-consumed)}});
      }
      empty_polls = (consumed > 0 || n > 0) ? 0 : empty_polls + 1;
      ReadKernelCounters();
    }
    ring_buffer__consume(rb_);  // what is already in the buffer
  }

  void Interrupt() override {
    const uint64_t one = 1;
    if (::write(stop_fd_.get(), &one, sizeof(one)) < 0) {
      // The eventfd cannot be full after one write; Run() still ends within kIdlePollMs.
    }
  }

  static constexpr int kActivePollMs = 50;
  static constexpr int kIdlePollMs = 1000;

  exec_events* skel_;
  ring_buffer* rb_ = nullptr;
  UniqueFd stop_fd_;
  RealtimeStats* stats_;
  bool emit_forks_;
  int64_t boot_offset_ns_ = 0;
  int64_t last_lost_ = 0;
  int64_t decode_errors_ = 0;
};

}  // namespace

Result<std::unique_ptr<RealtimeSource>> OpenEbpfSource(const RealtimeOptions& options, RealtimeStats* stats) {
  CaptureLibbpfMessages();
  exec_events* skel = exec_events__open();
  if (skel == nullptr) return UnavailableError(BpfFailure("opening the BPF object failed", errno));
  skel->rodata->emit_forks = options.emit_forks ? 1 : 0;
  if (int err = exec_events__load(skel); err != 0) {
    exec_events__destroy(skel);
    Status st = UnavailableError(BpfFailure("loading the BPF program failed", err));
    return (err == -EPERM || err == -EACCES) ? PermissionDeniedError(st.message()) : st;
  }
  if (int err = exec_events__attach(skel); err != 0) {
    exec_events__destroy(skel);
    return UnavailableError(
        BpfFailure("attaching to the sched_process_exec/fork/exit tracepoints failed", err));
  }
  auto src = std::make_unique<EbpfSource>(skel, stats, options.emit_forks);  // owns skel from here
  RETURN_IF_ERROR(src->CreateRing());
  telemetry::LogInfo("eBPF real-time source loaded",
                     {{"tracepoints", "sched_process_exec,sched_process_fork,sched_process_exit"},
                      {"ring_buffer_bytes", bpf_map__max_entries(skel->maps.events)},
                      {"emit_forks", options.emit_forks}});
  return std::unique_ptr<RealtimeSource>(std::move(src));
}

#endif

}  // namespace sentinel::procmond
