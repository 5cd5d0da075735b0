// NetlinkSource: exec/fork/exit from the netlink proc connector, the
// fallback when the BPF program cannot load. The kernel only says "pid N
// exec'd"; everything else is read from /proc/N right away, on this thread,
// before the next message. A process that has already exited by then is
// stored with what is known (pid, time, parent from its fork event) and
// counted as incomplete. A socket overflow (ENOBUFS) loses an unknown number
// of events: each overflow is counted and logged.
//
// Subscribing needs CAP_NET_ADMIN (root): done in OpenNetlinkSource(),
// before the privilege drop; the subscription lives with the socket.
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "procmond/platform/linux/proc_parsers.h"
#include "procmond/realtime/decode.h"
#include "procmond/realtime/lineage.h"
#include "procmond/realtime/proc_reads.h"
#include "procmond/realtime/realtime_source.h"
#include "sentinel/base/files.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::procmond {
namespace {

class NetlinkSource final : public ThreadedRealtimeSource {
 public:
  NetlinkSource(UniqueFd fd, RealtimeStats* stats)
      : fd_(std::move(fd)), stats_(stats), lineage_([this](int64_t pid) { return ReadRuid(pid); }) {}
  ~NetlinkSource() override { Stop(); }
  NetlinkSource(const NetlinkSource&) = delete;
  NetlinkSource& operator=(const NetlinkSource&) = delete;

  const char* name() const override { return "netlink"; }

 private:
  void Prepare() override { mono_offset_ns_ = ClockOffsetNs(CLOCK_MONOTONIC); }

  void Run() override {
    alignas(nlmsghdr) char buf[65536];
    int64_t polls = 0;
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      int pr = ::poll(&p, 1, 100);
      if (++polls % 64 == 0) mono_offset_ns_ = ClockOffsetNs(CLOCK_MONOTONIC);
      if (pr <= 0) continue;
      while (true) {
        ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == ENOBUFS) {
            stats_->AddLostKernel(1);
            lineage_.OnLoss();
            telemetry::LogWarn("real-time events lost: the netlink socket overflowed (ENOBUFS)",
                               {{"overflows", stats_->Get().lost_kernel}});
            continue;
          }
          break;  // EAGAIN
        }
        HandleDatagram(buf, static_cast<size_t>(n));
      }
    }
  }

  void HandleDatagram(const char* buf, size_t len) {
    auto* nh = reinterpret_cast<const nlmsghdr*>(buf);
    int remaining = static_cast<int>(len);
    for (; NLMSG_OK(nh, remaining); nh = NLMSG_NEXT(nh, remaining)) {
      if (nh->nlmsg_type == NLMSG_NOOP || nh->nlmsg_type == NLMSG_ERROR) continue;
      auto ev = DecodeProcConnector(nh, nh->nlmsg_len);
      if (!ev.ok()) {
        if (decode_errors_++ < 5)
          telemetry::LogError("undecodable proc connector message", {{"error", ev.status().message()}});
        continue;
      }
      Handle(*ev);
    }
  }

  void Handle(const ProcConnectorEvent& pe) {
    using What = ProcConnectorEvent::What;
    RealtimeEvent ev;
    ev.pid = pe.pid;
    ev.time_ms = EpochMsFromClockNs(pe.timestamp_ns, mono_offset_ns_);
    switch (pe.what) {
      case What::kFork:
        if (pe.thread != pe.pid) return;  // a new thread
        ev.type = RealtimeEventType::kFork;
        ev.ppid = pe.parent;
        lineage_.OnFork(pe.pid, pe.parent);
        break;
      case What::kExec:
        if (pe.thread != pe.pid) return;  // exec from a thread: the kernel reports the leader too
        ev.type = RealtimeEventType::kExec;
        ReadExec(&ev);
        break;
      case What::kExit:
        if (pe.thread != pe.pid) return;  // only the thread-group leader ends the process
        ev.type = RealtimeEventType::kExit;
        ev.exit_code = ExitCodeFromWaitStatus(pe.exit_status);
        if (pe.parent > 0) ev.ppid = pe.parent;
        if (auto parent = lineage_.OnExit(pe.pid); parent && !ev.ppid) ev.ppid = parent;
        break;
      case What::kUid:
        lineage_.OnUid(pe.pid, pe.ruid);  // not an event of its own: the next exec says who ran it
        return;
      default: return;
    }
    stats_->AddReceived(ev.type);
    sink_(std::move(ev));
  }

  std::optional<int64_t> ReadRuid(int64_t pid) {
    if (!ReadSmallFile("/proc/" + std::to_string(pid) + "/status", &scratch_)) return std::nullopt;
    auto st = linux_proc::ParseStatus(scratch_);
    if (!st.ok()) return std::nullopt;
    return st->ruid;
  }

  // Reads what the exec event needs from /proc as fast as it can: cmdline
  // first (it vanishes with the process's memory), then the exec context
  // (status, environ, cwd, stat, ...) and exe.
  void ReadExec(RealtimeEvent* ev) {
    const std::string dir = "/proc/" + std::to_string(ev->pid);
    size_t head = 0, total = 0;
    if (ReadHeadAndTail(dir + "/cmdline", kArgsBlockMax, &scratch_, &head, &total) && !scratch_.empty()) {
      ev->argv = ArgvFromHeadAndTail(scratch_, head);
      ev->argv_truncated = total > kArgsBlockMax;
      ev->args_length = static_cast<int64_t>(total);
    }
    const std::string context_missing = ReadProcExecContext(dir, ev, &scratch_);
    ev->exe_path = ReadLinkText(dir + "/exe");
    if (!ev->ppid) ev->ppid = lineage_.Parent(ev->pid);
    // An empty cmdline is a process that already became a zombie.
    if (!ev->argv || !ev->exe_path || !ev->uid) {
      ev->incomplete = (!ev->argv && !ev->exe_path && !ev->uid) ? "proc_gone" : "proc_partial";
    } else if (!context_missing.empty()) {
      ev->incomplete = "proc_partial:" + context_missing;
    }
    // The real uid survives exec: when /proc was gone, the one it had since its fork.
    if (ev->uid) {
      lineage_.OnExecRead(ev->pid, *ev->uid);
    } else {
      ev->uid = lineage_.Ruid(ev->pid);
    }
  }

  UniqueFd fd_;
  RealtimeStats* stats_;
  int64_t mono_offset_ns_ = 0;
  int64_t decode_errors_ = 0;
  std::string scratch_;
  Lineage lineage_;  // parents and real uids, from fork and uid events
};

}  // namespace

Result<std::unique_ptr<RealtimeSource>> OpenNetlinkSource(const RealtimeOptions&, RealtimeStats* stats) {
  UniqueFd fd(::socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR));
  if (fd.get() < 0) return UnavailableError(std::string("netlink connector socket: ") + std::strerror(errno));
  // A large receive buffer absorbs exec storms while /proc reads are slow.
  // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the plain option is capped.
  int rcvbuf = 16 << 20;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = CN_IDX_PROC;
  addr.nl_pid = 0;  // the kernel assigns a unique port id
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    return UnavailableError(std::string("binding the proc connector socket: ") + std::strerror(err));
  }
  // nlmsghdr + cn_msg + the operation, laid out by hand (cn_msg ends in a
  // flexible array member).
  static_assert(sizeof(nlmsghdr) == NLMSG_HDRLEN);
  nlmsghdr nh{};
  nh.nlmsg_len = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(uint32_t));
  nh.nlmsg_type = NLMSG_DONE;
  nh.nlmsg_pid = 0;
  cn_msg msg{};
  msg.id.idx = CN_IDX_PROC;
  msg.id.val = CN_VAL_PROC;
  msg.len = sizeof(uint32_t);
  const uint32_t op = PROC_CN_MCAST_LISTEN;
  char wire[NLMSG_LENGTH(sizeof(cn_msg) + sizeof(uint32_t))];
  std::memcpy(wire, &nh, sizeof(nh));
  std::memcpy(wire + NLMSG_HDRLEN, &msg, sizeof(msg));
  std::memcpy(wire + NLMSG_HDRLEN + sizeof(cn_msg), &op, sizeof(op));
  if (::send(fd.get(), wire, sizeof(wire), 0) < 0) {
    int err = errno;
    return UnavailableError(std::string("subscribing to the proc connector: ") + std::strerror(err));
  }
  // The kernel acks the subscription; an EPERM there means no CAP_NET_ADMIN.
  // (Older kernels accept silently and then send nothing to a non-root
  // listener: check euid as well.)
  if (::geteuid() != 0) {
    return PermissionDeniedError("the proc connector needs root (CAP_NET_ADMIN) to subscribe");
  }
  telemetry::LogInfo("netlink proc connector real-time source subscribed", {{"rcvbuf_bytes", rcvbuf}});
  return std::unique_ptr<RealtimeSource>(std::make_unique<NetlinkSource>(std::move(fd), stats));
}

}  // namespace sentinel::procmond
