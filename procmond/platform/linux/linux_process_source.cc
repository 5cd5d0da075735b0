#include "procmond/platform/linux/linux_process_source.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include <nlohmann/json.hpp>

#include "procmond/platform/linux/boot_clock.h"
#include "procmond/platform/linux/image_identity.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "sentinel/base/time.h"

namespace sentinel::procmond {

namespace lp = linux_proc;
using nlohmann::json;

namespace {

constexpr uint64_t kPfKthread = 0x00200000;
constexpr size_t kSha256HexSize = 64;
// A buffer grown past this (a 128 KiB command line) is given back.
constexpr size_t kKeptBufferBytes = 65536;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// "PID/file" in a fixed buffer (no allocation per read).
struct RelPath {
  char c[96];
  RelPath(const char* pid_dir, const char* file) {
    size_t a = std::strlen(pid_dir), b = std::strlen(file);
    if (a + 1 + b >= sizeof c) b = sizeof c - a - 2;  // never: pid <= 10 digits, files are short
    std::memcpy(c, pid_dir, a);
    c[a] = '/';
    std::memcpy(c + a + 1, file, b);
    c[a + 1 + b] = '\0';
  }
};

// "PID" in a fixed buffer.
struct PidDir {
  char c[16];
  explicit PidDir(int32_t pid) { *std::to_chars(c, c + sizeof c - 1, pid).ptr = '\0'; }
};

// Sets an optional string from a view (reusing its storage) or clears it.
void SetOptional(std::optional<std::string>* field, std::optional<std::string_view> value) {
  if (!value) {
    field->reset();
  } else if (*field) {
    (*field)->assign(*value);
  } else {
    field->emplace(*value);
  }
}

std::optional<std::string_view> View(const std::shared_ptr<const std::string>& s) {
  return s ? std::optional<std::string_view>(*s) : std::nullopt;
}

void ShrinkIfLarge(std::string* buf) {
  if (buf->capacity() > kKeptBufferBytes) std::string().swap(*buf);
}

// Whether `pid` still names a task (EPERM: it does, owned by someone else).
bool StillRuns(int32_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace

LinuxProcessSource::LinuxProcessSource() : LinuxProcessSource(LinuxProcessSourceOptions{}) {}

LinuxProcessSource::LinuxProcessSource(LinuxProcessSourceOptions options)
    : proc_root_(std::move(options.proc_root)),
      fs_(options.fs),
      ticks_per_sec_(sysconf(_SC_CLK_TCK)),
      page_size_(sysconf(_SC_PAGESIZE)),
      hash_executables_(options.hash_executables),
      hash_cache_capacity_(options.hash_cache_capacity),
      refresh_every_(options.refresh_every_scans),
      exe_every_(options.exe_link_every_scans),
      hasher_(std::make_unique<ExeHasher>(options.max_hash_bytes, options.hash_cache_capacity)) {
  max_held_stat_files_ = options.max_held_stat_files;
  if (max_held_stat_files_ == LinuxProcessSourceOptions::kAutoHeldStatFiles) {
    // Raising the soft limit up to the hard one needs no privilege.
    rlimit lim{};
    max_held_stat_files_ = 0;
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      if (lim.rlim_cur < lim.rlim_max) {
        rlimit raised = lim;
        raised.rlim_cur =
            lim.rlim_max == RLIM_INFINITY ? std::max<rlim_t>(lim.rlim_cur, 1 << 20) : lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
      }
      constexpr rlim_t kReserve = 1024;
      if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur > kReserve) {
        max_held_stat_files_ = static_cast<size_t>(lim.rlim_cur - kReserve);
      }
    }
  }
}

void LinuxProcessSource::HeldFd::Reset() {
  if (fd_.get() >= 0) {
    fd_ = UniqueFd();
    if (count_) --*count_;
  }
}

LinuxProcessSource::~LinuxProcessSource() = default;

void LinuxProcessSource::SetHashing(bool enabled, uint64_t max_hash_bytes) {
  hash_executables_ = enabled;
  if (max_hash_bytes != hasher_->max_hash_bytes()) {
    hasher_ = std::make_unique<ExeHasher>(max_hash_bytes, hash_cache_capacity_);
  }
}

void LinuxProcessSource::SetError(Instance* inst, std::optional<std::string> ReadErrors::*field,
                                  std::optional<std::string> reason) {
  if (!inst->errors) {
    if (!reason) return;
    inst->errors = std::make_unique<ReadErrors>();
  }
  if ((*inst->errors).*field == reason) return;
  inst->pd_dirty = true;
  (*inst->errors).*field = std::move(reason);
  if (inst->errors->empty()) inst->errors.reset();
}

std::shared_ptr<const std::string> LinuxProcessSource::Intern(std::string_view s) {
  auto it = interned_.find(s);
  if (it != interned_.end()) return *it;
  auto p = std::make_shared<const std::string>(s);
  interned_.insert(p);
  return p;
}

ScanFields LinuxProcessSource::CurrentScanFields(const Instance& inst, int64_t threads, int64_t tty_nr) {
  ScanFields sf;
  sf.have_status = inst.have_status;
  sf.ruid = inst.ruid;
  sf.euid = inst.euid;
  sf.rgid = inst.rgid;
  sf.egid = inst.egid;
  sf.threads = threads;
  sf.tty_nr = tty_nr;
  if (inst.errors) {
    if (inst.errors->status) sf.errors.emplace_back("status", *inst.errors->status);
    if (inst.errors->cmdline) sf.errors.emplace_back("cmdline", *inst.errors->cmdline);
    if (inst.errors->exe) sf.errors.emplace_back("exe", *inst.errors->exe);
  }
  return sf;
}

const std::optional<std::string>* LinuxProcessSource::UserName(int64_t uid) {
  return user_names_.Find(uid);
}

Status LinuxProcessSource::ReadStatus(const char* pid_dir, Instance* inst, ScanErrors* errors) {
  ++reads_.status;
  Status s = fs_->ReadFile(RelPath(pid_dir, "status").c, &buf_, /*seq_file=*/true);
  if (s.code() == StatusCode::kNotFound) return s;
  inst->pd_dirty = true;
  inst->have_status = false;
  inst->ruid = inst->euid = inst->rgid = inst->egid = -1;
  inst->user_name = nullptr;
  SetError(inst, &ReadErrors::status, std::nullopt);
  Result<lp::StatusFields> st = s.ok() ? lp::ParseStatus(buf_) : Result<lp::StatusFields>(s);
  if (!st.ok()) {
    SetError(inst, &ReadErrors::status, st.status().message());
    errors->Add(st.status().message());
    return Status::Ok();
  }
  AdoptStatus(*st, inst);
  return Status::Ok();
}

void LinuxProcessSource::AdoptStatus(const lp::StatusFields& ids, Instance* inst) {
  if (ids.ruid) inst->user_name = UserName(*ids.ruid);
  inst->have_status = true;
  inst->ruid = ids.ruid.value_or(-1);
  inst->euid = ids.euid.value_or(-1);
  inst->rgid = ids.rgid.value_or(-1);
  inst->egid = ids.egid.value_or(-1);
}

void LinuxProcessSource::ReadCmdline(const char* pid_dir, Instance* inst, ScanErrors* errors) {
  ++reads_.cmdline;
  Status s = fs_->ReadFile(RelPath(pid_dir, "cmdline").c, &buf_);
  SetError(inst, &ReadErrors::cmdline, std::nullopt);
  if (s.ok()) {
    inst->cmdline = std::string(buf_);  // exact size
    inst->has_cmdline = true;
  } else {
    inst->cmdline = std::string();
    inst->has_cmdline = false;
    if (s.code() != StatusCode::kNotFound) {
      SetError(inst, &ReadErrors::cmdline, s.message());
      errors->Add(s.message());
    }
  }
  // A 128 KiB command line must not pin 128 KiB of buffer for good.
  ShrinkIfLarge(&buf_);
}

json LinuxProcessSource::ReadOnceFields(const char* pid_dir, const Observation& o, bool refresh,
                                        const Status& exe_status, Instance* inst, ScanErrors* errors) {
  OnceFieldsBuilder b(errors);
  inst->stdio_key = 0;
  if (o.kernel_thread) {
    b.KernelThread();
    return b.Take();
  }
  if (o.state == 'Z' || o.state == 'X' || o.state == 'x') return b.Take();  // dead: nothing to read
  if (inst->exe_link) b.ExeLink(*inst->exe_link);
  Status cgroup = fs_->ReadFile(RelPath(pid_dir, "cgroup").c, &buf_);
  b.Cgroup(cgroup, buf_);
  if (exe_status.code() == StatusCode::kPermissionDenied) {
    // cwd, ns/*, fd/* and environ are guarded by the same ptrace read check
    // as exe: not tried, so a process we may not inspect costs no further
    // syscalls and no further error counts.
    b.PtraceDenied(exe_status);
    return b.Take();
  }
  const uint64_t stdio = ReadPtraceGuarded(pid_dir, &b);
  if (WatchesStdio(o.comm)) inst->stdio_key = stdio;
  if (inst->exe_link) {
    auto links = fs_->LinksOf(RelPath(pid_dir, "exe").c);
    b.ExeLinks(links.status(), links.ok() ? links->nlink : 0, links.ok() ? links->uid : 0);
  }
  HashExe(pid_dir, refresh, exe_status, inst, &b);
  CheckImage(pid_dir, *inst, &b);
  return b.Take();
}

void LinuxProcessSource::CheckImage(const char* pid_dir, const Instance& inst, OnceFieldsBuilder* b) {
  // A test's tree has no host behind its links.
  if (!inst.exe_link || !fs_->KeepsFilesLive()) return;
  const std::string& link = *inst.exe_link;
  if (!lp::ClassifyExe(link).memfd) {
    if (!host_root_) {
      struct stat st {};
      if (::stat("/", &st) != 0) return;
      host_root_ = ProcFs::FileId{st.st_dev, st.st_ino, st.st_nlink};
    }
    b->HostCheck(CheckExeAgainstHost(fs_, pid_dir, link, *host_root_));
    return;
  }
  b->MemfdSeals(fs_->MemfdSeals(RelPath(pid_dir, "exe").c));
  if (link.starts_with(kRuncClonePrefix) && inst.exe_hash) {
    if (auto runtime = RuntimeBinaryWithHash(hasher_.get(), *inst.exe_hash, RuntimeBinaryCandidates())) {
      b->MemfdRuntime(*runtime);
    }
  }
}

uint64_t LinuxProcessSource::ReadStdio(const char* pid_dir, OnceFieldsBuilder* b) {
  StdioKey key;
  for (const char* fd : {"0", "1", "2"}) {
    Status s = fs_->ReadLink(RelPath(pid_dir, (std::string("fd/") + fd).c_str()).c, &link_buf_);
    key.Add(fd[0] - '0', s, link_buf_);
    b->Fd(fd, s, link_buf_);
  }
  return key.value();
}

void LinuxProcessSource::RefreshStdio(const char* pid_dir, Instance* inst) {
  ++reads_.stdio;
  ScanErrors ignored;  // a failure keeps what the full read found: not counted again
  OnceFieldsBuilder b(&ignored);
  const uint64_t key = ReadStdio(pid_dir, &b);
  if (key == inst->stdio_key) return;
  json read = b.Take();
  const json none = {{"type", "none"}};
  const bool gone = read.contains("fds") && read["fds"]["0"] == none && read["fds"]["1"] == none &&
                    read["fds"]["2"] == none;  // most likely exited since it was listed
  json pd = json::parse(inst->platform_data, nullptr, /*allow_exceptions=*/false);
  if (gone || read.contains("errors") || !read.contains("fds") || !pd.is_object()) return;
  pd["fds"] = std::move(read["fds"]);
  inst->platform_data = Dump(pd);
  inst->platform_data.shrink_to_fit();
  inst->stdio_key = key;
  ++reads_.stdio_changes;
}

uint64_t LinuxProcessSource::ReadPtraceGuarded(const char* pid_dir, OnceFieldsBuilder* b) {
  Status s = fs_->ReadLink(RelPath(pid_dir, "cwd").c, &link_buf_);
  b->Cwd(s, link_buf_);
  for (const char* type : {"pid", "mnt", "net"}) {
    s = fs_->ReadLink(RelPath(pid_dir, (std::string("ns/") + type).c_str()).c, &link_buf_);
    b->Namespace(type, s, link_buf_);
  }
  const uint64_t stdio = ReadStdio(pid_dir, b);
  s = fs_->ReadFile(RelPath(pid_dir, "environ").c, &buf_);
  b->LoaderEnv(s, buf_);
  // Never keep environ contents (values) around.
  std::fill(buf_.begin(), buf_.end(), '\0');
  buf_.clear();
  ShrinkIfLarge(&buf_);
  return stdio;
}

void LinuxProcessSource::HashExe(const char* pid_dir, bool refresh, const Status& exe_status, Instance* inst,
                                 OnceFieldsBuilder* b) {
  // Hashing was turned off since: a refresh keeps what was recorded.
  if (refresh && !hash_executables_ && inst->exe_hash) return;
  inst->exe_hash = nullptr;
  if (!inst->exe_link) {
    if (!exe_status.ok()) b->HashSkipped(kHashSkipIoError);
    return;
  }
  if (!hash_executables_) {
    b->HashSkipped(kHashSkipDisabled);
    return;
  }
  ExeHasher::Outcome h = fs_->HashExe(hasher_.get(), RelPath(pid_dir, "exe").c);
  if (h.sha256 && h.sha256->size() == kSha256HexSize) {
    inst->exe_hash = Intern(*h.sha256);
  } else {
    b->HashFailed(h.skipped, h.detail);
  }
}

Status LinuxProcessSource::Enumerate(std::vector<models::ProcessRecord>* out, ScanErrors* errors) {
  return Scan(out, errors, /*reuse=*/false);
}

Status LinuxProcessSource::EnumerateReusing(std::vector<models::ProcessRecord>* out, ScanErrors* errors) {
  return Scan(out, errors, /*reuse=*/true);
}

Status LinuxProcessSource::OpenTree() {
  if (!fs_) {
    ASSIGN_OR_RETURN(own_fs_, OpenProcFs(proc_root_));
    fs_ = own_fs_.get();
  }
  // Held stat files rely on procfs: content regenerated at each read, and
  // ESRCH once the task is gone. Anything else is read by path every time.
  if (!fs_->KeepsFilesLive()) max_held_stat_files_ = 0;
  if (!boot_epoch_ns_ && fs_->KeepsFilesLive()) {
    // The kernel's procfs: the precise boot time every procmond conversion
    // uses, so scans and exec events agree on a process's start_time.
    boot_epoch_ns_ = ProcessBootClock().offset_ns();
  } else if (!boot_epoch_ns_) {
    std::string s;
    RETURN_IF_ERROR(fs_->ReadFile("stat", &s));
    ASSIGN_OR_RETURN(int64_t btime, lp::ParseBootTime(s));
    boot_epoch_ns_ = btime * 1'000'000'000;
  }
  return Status::Ok();
}

bool LinuxProcessSource::TakeSample(ScanErrors* errors) {
  if (!sampler_) return false;
  Status s = sampler_->Sample(&samples_);
  if (s.ok()) return true;
  sampler_failure_ = s.message();
  sampler_.reset();
  samples_ = {};
  errors->Add("task sampler: " + s.message());
  return false;
}

Status LinuxProcessSource::Scan(std::vector<models::ProcessRecord>* out, ScanErrors* errors, bool reuse) {
  last_hash_counters_ = {};
  reads_ = {};
  RETURN_IF_ERROR(OpenTree());
  // The kernel's sample of every process when there is a sampler; /proc
  // otherwise, and for good once the sampler failed.
  const bool from_kernel = TakeSample(errors);
  if (from_kernel && fs_->KeepsFilesLive()) {
    // A mount over /proc/PID made since the last scan: its process is
    // checked this scan, whatever its read schedule.
    if (!proc_mounts_)
      proc_mounts_ = std::make_unique<ProcMountWatch>(proc_root_, proc_root_ + "/self/mountinfo");
    proc_mounts_->Refresh();
  }
  // /proc is listed either way: the kernel's sample is checked against it,
  // and a process it did not report is read from /proc (seen on 6.18: the
  // task iterator never visits pid 1 and its threads).
  RETURN_IF_ERROR(fs_->ListPids(&pids_));

  ++scan_;
  const ExeHasher::Counters hasher_before = hasher_->counters();
  ScanContext ctx{MonotonicMs(), out, errors, 0};
  // Sample and listing differ by the processes only one of them saw.
  const size_t n = from_kernel ? std::max(samples_.size(), pids_.size()) + 64 : pids_.size();
  if (instances_.bucket_count() < n) instances_.reserve(n + n / 4);
  used_ = reuse ? 0 : out->size();
  out->reserve(used_ + n);
  if (from_kernel) {
    ObserveSampled(&ctx);
  } else {
    for (const int32_t pid : pids_) ObserveFromProc(pid, &ctx);
  }
  out->resize(used_);  // drops recycled records this scan did not need
  EndScan(hasher_before, ctx.reused_hashes);
  return Status::Ok();
}

void LinuxProcessSource::ObserveSampled(ScanContext* ctx) {
  // Both in ascending pid order: a merge finds what only /proc listed.
  if (!std::is_sorted(pids_.begin(), pids_.end())) std::sort(pids_.begin(), pids_.end());
  auto listed = pids_.begin();
  auto from_proc_below = [&](int64_t pid) {
    for (; listed != pids_.end() && *listed < pid; ++listed) {
      ++reads_.unsampled;
      ObserveFromProc(*listed, ctx);
    }
  };
  for (const TaskSample& t : samples_) {
    from_proc_below(t.pid);
    Observation o = FromSample(t);
    o.unlisted = listed == pids_.end() || *listed != t.pid;
    if (!o.unlisted) ++listed;
    ++reads_.sampled;
    Observe(o, nullptr, ctx);
  }
  from_proc_below(INT64_MAX);
}

LinuxProcessSource::Observation LinuxProcessSource::FromSample(const TaskSample& t) const {
  const uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(ticks_per_sec_);
  Observation o;
  o.pid = t.pid;
  o.ppid = t.ppid;
  o.state = t.state;
  o.kernel_thread = (t.task_flags & kPfKthread) != 0;
  o.start_ticks = t.start_boottime_ns / ns_per_tick;  // as /proc (nsec_to_clock_t)
  o.cpu_ns = t.cpu_ns;
  o.rss_bytes = t.rss_pages * page_size_;
  o.threads = t.threads;
  o.tty_nr = t.tty_nr;
  o.comm = t.comm();
  o.exec_sig = (t.exec_id << 1) | 1;  // never 0: always "shown"
  o.from_kernel = true;
  o.ruid = t.ruid;
  o.euid = t.euid;
  o.rgid = t.rgid;
  o.egid = t.egid;
  if (t.has_exe) {
    // Bit 0: unlinked, bit 1: has an exe; the identity above them, so a
    // deletion always changes the key.
    const uint64_t id = (t.exe_ino * 0x9e3779b97f4a7c15ULL) ^ (t.exe_dev * 0xc2b2ae3d27d4eb4fULL);
    o.exe_key = (id << 2) | 2 | (t.exe_unlinked ? 1 : 0);
  }
  return o;
}

void LinuxProcessSource::EndScan(const ExeHasher::Counters& hasher_before, int64_t reused_hashes) {
  std::erase_if(instances_, [&](const auto& kv) { return kv.second.seen_scan != scan_; });
  std::erase_if(interned_, [](const auto& s) { return s.use_count() == 1; });
  // A spike (a fork storm) must not pin its bucket array for good.
  if (instances_.bucket_count() > 4 * (instances_.size() + 1024)) instances_.rehash(0);
  const ExeHasher::Counters& after = hasher_->counters();
  last_hash_counters_.hits = after.hits - hasher_before.hits + reused_hashes;
  last_hash_counters_.misses = after.misses - hasher_before.misses;
}

bool LinuxProcessSource::ReadStat(int32_t pid, const char* pid_dir, HeldFd* opened, ScanErrors* errors) {
  ++reads_.stat;
  // A held stat file first; it fails once its task is gone (a process now
  // holding the pid is then read by path, as a new instance).
  if (auto held = instances_.find(pid); held != instances_.end() && held->second.stat_fd.get() >= 0) {
    if (fs_->Reread(held->second.stat_fd.get(), &buf_)) {
      ++reads_.stat_held;
      return true;
    }
    held->second.stat_fd.Reset();
  }
  UniqueFd fd;
  const bool keep = held_stat_files_ < max_held_stat_files_;
  Status s = fs_->ReadFile(RelPath(pid_dir, "stat").c, &buf_, /*seq_file=*/true, keep ? &fd : nullptr);
  if (!s.ok()) {
    // Vanished between listing and reading: not an error, unless the task
    // still runs (something is mounted over /proc/PID).
    if (s.code() != StatusCode::kNotFound) {
      errors->Add(s.message());
    } else if (fs_->KeepsFilesLive() && StillRuns(pid)) {
      errors->Add(std::string("/proc/") + pid_dir + " is missing or empty while the task runs");
    }
    return false;
  }
  *opened = HeldFd(std::move(fd), &held_stat_files_);
  return true;
}

void LinuxProcessSource::ObserveFromProc(int32_t pid, ScanContext* ctx) {
  const PidDir pid_dir(pid);
  HeldFd opened;
  if (!ReadStat(pid, pid_dir.c, &opened, ctx->errors)) return;
  auto stat = lp::ParseStat(buf_);
  if (!stat.ok()) {
    ctx->errors->Add(stat.status().message());
    return;
  }
  if (stat->pid != pid) {
    // Another task's entry mounted over /proc/PID: not recorded a second time.
    ctx->errors->Add(std::string("/proc/") + pid_dir.c + " shows another task (pid " +
                     std::to_string(stat->pid) + ")");
    return;
  }
  // The owner of /proc/PID is the task's euid:egid (docs/collector.md).
  ++reads_.owner;
  Observation o;
  auto owner = fs_->OwnerOf(pid_dir.c);
  if (!owner.ok() && owner.status().code() == StatusCode::kNotFound) return;  // gone
  o.owner_known = owner.ok();  // status is read every scan when it is not
  if (owner.ok()) {
    o.owner_uid = owner->uid;
    o.owner_gid = owner->gid;
  }
  const uint64_t ns_per_tick = 1000000000ULL / static_cast<uint64_t>(ticks_per_sec_);
  o.pid = static_cast<int32_t>(stat->pid);
  o.ppid = stat->ppid;
  o.state = stat->state;
  o.kernel_thread = (stat->flags & kPfKthread) != 0;
  o.start_ticks = stat->starttime_ticks;
  o.cpu_ns = (stat->utime_ticks + stat->stime_ticks) * ns_per_tick;
  o.rss_bytes = stat->rss_pages * page_size_;
  o.threads = stat->num_threads;
  o.tty_nr = stat->tty_nr;
  o.comm = stat->comm;
  o.exec_sig = stat->exec_sig;
  o.pid_dir = pid_dir.c;
  Observe(o, &opened, ctx);
}

LinuxProcessSource::Instance& LinuxProcessSource::Track(const Observation& o, HeldFd* opened, bool* fresh) {
  auto [it, inserted] = instances_.try_emplace(o.pid);
  Instance& inst = it->second;
  *fresh = inserted || inst.start_ticks != o.start_ticks;
  if (*fresh) {
    inst = Instance{};
    inst.start_ticks = o.start_ticks;
    inst.exec_sig = o.exec_sig;
    inst.exe_key = o.exe_key;
  }
  if (opened && opened->get() >= 0) inst.stat_fd = std::move(*opened);
  if (o.from_kernel) inst.stat_fd.Reset();  // no longer read: give its kernel memory back
  return inst;
}

ReadInputs LinuxProcessSource::PlanInputs(const Observation& o, const Instance& inst, bool fresh) const {
  ReadInputs in;
  in.pid = o.pid;
  in.dead = o.state == 'Z' || o.state == 'X' || o.state == 'x';
  in.kernel_thread = o.kernel_thread;
  in.now = {o.from_kernel, o.comm, o.exec_sig, o.exe_key, o.owner_known, o.owner_uid, o.owner_gid};
  in.fresh = fresh;
  in.last = {inst.from_kernel, inst.comm,      inst.exec_sig, inst.exe_key,
             inst.owner_known, inst.owner_uid, inst.owner_gid};
  in.last_full_scan = inst.full_scan;
  in.scan = scan_;
  in.refresh_every = refresh_every_;
  in.exe_every = exe_every_;
  return in;
}

LinuxProcessSource::ExeLinkRead LinuxProcessSource::ReadExeLink(const char* pid_dir, bool kernel_thread,
                                                                ScanErrors* errors) {
  ExeLinkRead r;
  r.read = true;
  if (kernel_thread) return r;
  ++reads_.exe_link;
  Status s = fs_->ReadLink(RelPath(pid_dir, "exe").c, &exe_buf_);
  if (s.ok()) {
    r.now = exe_buf_;
  } else if (s.code() != StatusCode::kNotFound) {
    // EACCES without privileges; ENOENT is a zombie or a vanished process.
    errors->Add(s.message());
    r.status = std::move(s);
  }
  return r;
}

void LinuxProcessSource::AdoptKernelIds(const Observation& o, bool fresh, Instance* inst) {
  if (inst->have_status && inst->ruid == o.ruid && inst->euid == o.euid && inst->rgid == o.rgid &&
      inst->egid == o.egid) {
    return;
  }
  if (!fresh && inst->have_status) ++reads_.owner_changes;
  inst->have_status = true;
  inst->ruid = o.ruid;
  inst->euid = o.euid;
  inst->rgid = o.rgid;
  inst->egid = o.egid;
  inst->user_name = UserName(o.ruid);
  inst->pd_dirty = true;
}

bool LinuxProcessSource::UpdateCredentials(const Observation& o, const ReadPlan& plan, bool fresh,
                                           const char* pid_dir, Instance* inst, ScanErrors* errors) {
  // Every id, live from the kernel, every scan: no status file to read.
  if (o.from_kernel) {
    AdoptKernelIds(o, fresh, inst);
    return true;
  }
  if (!plan.status) return true;
  if (plan.owner_change) ++reads_.owner_changes;
  // The owner is taken before status is read: a change in between shows as
  // a difference at the next scan, never as a missed one.
  if (ReadStatus(pid_dir, inst, errors).code() == StatusCode::kNotFound) return false;
  inst->owner_known = o.owner_known;
  inst->owner_uid = o.owner_uid;
  inst->owner_gid = o.owner_gid;
  return true;
}

void LinuxProcessSource::Observe(const Observation& o, HeldFd* opened, ScanContext* ctx) {
  const PidDir own_dir(o.pid);
  const char* pid_dir = o.pid_dir ? o.pid_dir : own_dir.c;  // formatted already when read from /proc
  bool fresh = false;
  Instance& inst = Track(o, opened, &fresh);
  // Last seen the other way (/proc <-> the kernel's sample): its markers
  // cannot be compared, the exe link decides whether it exec'd.
  const ReadInputs in = PlanInputs(o, inst, fresh);
  inst.from_kernel = o.from_kernel;
  ReadPlan plan = PlanExeLink(in);
  if (ShouldVerify(o, in, plan, inst)) {
    ++reads_.verified;
    if (auto hidden = VerifyProcEntry(o, pid_dir)) return ObserveHidden(o, *hidden, fresh, &inst, ctx);
    if (inst.proc_hidden) {
      // Its own entry again: read it as a new instance.
      instances_.erase(o.pid);
      return Observe(o, opened, ctx);
    }
  }
  ExeLinkRead exe;
  if (plan.exe_link_first) exe = ReadExeLink(pid_dir, o.kernel_thread, ctx->errors);
  PlanReads(in, View(inst.exe_link) != exe.now, &plan);
  if (!in.dead) {
    inst.exec_sig = o.exec_sig;
    inst.exe_key = o.exe_key;
  }
  if (plan.exe_link && !exe.read) exe = ReadExeLink(pid_dir, o.kernel_thread, ctx->errors);
  if (exe.read) {
    SetError(&inst, &ReadErrors::exe,
             exe.status.ok() ? std::nullopt : std::optional<std::string>(exe.status.message()));
  }
  if (!UpdateCredentials(o, plan, fresh, pid_dir, &inst, ctx->errors)) {
    if (fresh) instances_.erase(o.pid);
    return;  // gone
  }
  models::ProcessRecord& p = NextRecord(ctx->out);
  FillScanFields(o, inst, fresh, ctx->now_mono, &p);
  UpdateInstance(o, plan, exe, pid_dir, &inst, ctx);
  FillInstanceFields(o, inst, &p);
}

// Built in place: no record is moved (10,000 moves were ~5% of a warm scan),
// and a recycled one is overwritten field by field, keeping its strings'
// storage (steady scans then allocate next to nothing).
models::ProcessRecord& LinuxProcessSource::NextRecord(std::vector<models::ProcessRecord>* out) {
  models::ProcessRecord& p = used_ < out->size() ? (*out)[used_] : out->emplace_back();
  ++used_;
  return p;
}

void LinuxProcessSource::FillScanFields(const Observation& o, const Instance& inst, bool fresh,
                                        int64_t now_mono, models::ProcessRecord* p) const {
  p->pid = o.pid;
  p->ppid = o.ppid;
  SetOptional(&p->status, lp::StateName(o.state));
  p->start_time_ms = BootClock(boot_epoch_ns_.value_or(0)).StartTimeMsFromTicks(o.start_ticks);
  p->memory_bytes = o.rss_bytes;
  if (!fresh && now_mono > inst.cpu_mono_ms && o.cpu_ns >= inst.cpu_ns) {
    const double secs = static_cast<double>(now_mono - inst.cpu_mono_ms) / 1000.0;
    p->cpu_percent = static_cast<double>(o.cpu_ns - inst.cpu_ns) / 1e9 / secs * 100.0;
  } else {
    p->cpu_percent = 0.0;
  }
}

void LinuxProcessSource::UpdateInstance(const Observation& o, const ReadPlan& plan, const ExeLinkRead& exe,
                                        const char* pid_dir, Instance* inst, ScanContext* ctx) {
  if (plan.full) {
    inst->exe_link = exe.now ? Intern(*exe.now) : nullptr;
    ReadCmdline(pid_dir, inst, ctx->errors);
    if (plan.refresh) ++reads_.refreshes;
    ++reads_.full_reads;
    inst->full_scan = scan_;
    inst->comm.assign(o.comm);
    json pd = ReadOnceFields(pid_dir, o, plan.refresh, exe.status, inst, ctx->errors);
    ApplyScanFields(CurrentScanFields(*inst, o.threads, o.tty_nr), &pd);
    inst->platform_data = Dump(pd);
    inst->platform_data.shrink_to_fit();  // cached for the instance's life
  } else {
    if (inst->exe_hash) ++ctx->reused_hashes;
    const bool dead = o.state == 'Z' || o.state == 'X' || o.state == 'x';
    if (inst->stdio_key != 0 && !dead) RefreshStdio(pid_dir, inst);
    if (inst->pd_dirty || inst->pd_threads != o.threads || inst->pd_tty != o.tty_nr) {
      json pd = json::parse(inst->platform_data, nullptr, /*allow_exceptions=*/false);
      if (!pd.is_object()) pd = json::object();
      ApplyScanFields(CurrentScanFields(*inst, o.threads, o.tty_nr), &pd);
      inst->platform_data = Dump(pd);
      inst->platform_data.shrink_to_fit();
    }
  }
  Remember(o, inst, ctx->now_mono);
}

void LinuxProcessSource::Remember(const Observation& o, Instance* inst, int64_t now_mono) {
  inst->pd_threads = o.threads;
  inst->pd_tty = o.tty_nr;
  inst->pd_dirty = false;
  inst->seen_scan = scan_;
  inst->cpu_ns = o.cpu_ns;
  inst->cpu_mono_ms = now_mono;
}

bool LinuxProcessSource::ShouldVerify(const Observation& o, const ReadInputs& in, const ReadPlan& first,
                                      const Instance& inst) const {
  if (!o.from_kernel || in.dead || in.kernel_thread) return false;
  if (inst.proc_hidden || o.unlisted || first.exe_link_first) return true;
  if (proc_mounts_ && proc_mounts_->MountOver(o.pid)) return true;
  ReadPlan rest = first;
  PlanReads(in, /*link_differs=*/false, &rest);
  return rest.full || rest.exe_link;
}

std::optional<std::string> LinuxProcessSource::VerifyProcEntry(const Observation& o, const char* pid_dir) {
  const std::string where = "/proc/" + std::string(pid_dir);
  Status s = fs_->ReadFile(RelPath(pid_dir, "stat").c, &buf_, /*seq_file=*/true);
  if (s.code() == StatusCode::kNotFound) {
    if (!StillRuns(o.pid)) return std::nullopt;  // exited since the sample
    return where + " is missing or empty while the kernel runs the task";
  }
  if (!s.ok()) return where + " is unreadable: " + s.message();
  auto stat = lp::ParseStat(buf_);
  if (!stat.ok()) return where + "/stat is not the kernel's: " + stat.status().message();
  if (stat->pid != o.pid || stat->starttime_ticks != o.start_ticks) {
    return where + " shows another task (pid " + std::to_string(stat->pid) + ", started at tick " +
           std::to_string(stat->starttime_ticks) + ", not " + std::to_string(o.start_ticks) + ")";
  }
  // Something mounted over the entry that is not this /proc (a tmpfs with
  // a forged stat, another procfs instance).
  if (!proc_root_id_) {
    if (auto root = fs_->StatFollow("."); root.ok()) proc_root_id_ = *root;
  }
  auto entry = fs_->StatFollow(pid_dir);
  if (proc_root_id_ && entry.ok() && entry->dev != proc_root_id_->dev) {
    return where + " is on another file system than /proc (something is mounted over it)";
  }
  if (const std::string* point = proc_mounts_ ? proc_mounts_->MountOver(o.pid) : nullptr) {
    return "something is mounted over " + *point;
  }
  if (o.unlisted) return "/proc does not list pid " + std::to_string(o.pid) + " while the kernel runs it";
  return std::nullopt;
}

void LinuxProcessSource::ObserveHidden(const Observation& o, const std::string& reason, bool fresh,
                                       Instance* inst, ScanContext* ctx) {
  ++reads_.hidden;
  ctx->errors->Add(reason);  // every scan it stays hidden: it is verified every scan
  AdoptKernelIds(o, fresh, inst);
  inst->proc_hidden = true;
  inst->comm.assign(o.comm);
  inst->exe_link = nullptr;
  inst->exe_hash = nullptr;
  inst->cmdline.clear();
  inst->has_cmdline = false;
  json pd = HiddenProcessData(reason);
  ApplyScanFields(CurrentScanFields(*inst, o.threads, o.tty_nr), &pd);
  inst->platform_data = Dump(pd);
  models::ProcessRecord& p = NextRecord(ctx->out);
  FillScanFields(o, *inst, fresh, ctx->now_mono, &p);
  FillInstanceFields(o, *inst, &p);
  Remember(o, inst, ctx->now_mono);
}

void LinuxProcessSource::FillInstanceFields(const Observation& o, const Instance& inst,
                                            models::ProcessRecord* p) {
  p->name.assign(inst.comm);
  SetOptional(&p->exe_path, View(inst.exe_link));
  if (inst.has_cmdline) {
    if (!p->command_line) p->command_line.emplace();
    lp::ParseCmdlineInto(inst.cmdline, &*p->command_line);
  } else {
    p->command_line.reset();
  }
  const bool ruid_known = inst.have_status && inst.ruid >= 0;
  p->user_id = ruid_known ? std::optional<int64_t>(inst.ruid) : std::nullopt;
  // The euid from status (or the kernel); from /proc it is also the owner of
  // /proc/PID, read this scan, and status was re-read above if they differed.
  if (inst.have_status && inst.euid >= 0) {
    p->effective_uid = inst.euid;
  } else if (o.owner_known) {
    p->effective_uid = static_cast<int64_t>(o.owner_uid);
  } else {
    p->effective_uid.reset();
  }
  SetOptional(&p->user_name, inst.user_name && *inst.user_name
                                 ? std::optional<std::string_view>(**inst.user_name)
                                 : std::nullopt);
  SetOptional(&p->exe_hash, View(inst.exe_hash));
  p->platform_data.assign(inst.platform_data);
  p->stdio_key = inst.stdio_key;
}

void LinuxProcessSource::SetTaskSampler(std::unique_ptr<TaskSampler> sampler) {
  sampler_ = std::move(sampler);
  sampler_failure_.reset();
}

std::optional<std::string> LinuxProcessSource::TakeSamplerFailure() {
  return std::exchange(sampler_failure_, std::nullopt);
}

}  // namespace sentinel::procmond
