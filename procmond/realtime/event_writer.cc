#include "procmond/realtime/event_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "procmond/platform/linux/boot_clock.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "procmond/realtime/proc_reads.h"
#include "procmond/write_retry.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::procmond {

EventWriter::EventWriter(WriteFn write, RealtimeStats* stats, EventWriterOptions options)
    : write_(std::move(write)),
      stats_(stats),
      options_(std::move(options)),
      hasher_(std::make_unique<ExeHasher>(options_.max_hash_bytes)) {
  if (options_.capacity == 0) options_.capacity = 1;
  if (options_.batch_size == 0) options_.batch_size = 1;
  struct stat root {};
  if (::stat("/", &root) == 0)
    host_root_ = {static_cast<uint64_t>(root.st_dev), static_cast<uint64_t>(root.st_ino)};
  thread_ = std::thread([this] { Run(); });
}

EventWriter::~EventWriter() {
  Stop(0).IgnoreError();
}

bool EventWriter::Push(RealtimeEvent ev) {
  std::lock_guard lock(mu_);
  if (stopping_ || queue_.size() >= options_.capacity) {
    stats_->lost_queue.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  queue_.push_back(std::move(ev));
  stats_->queued.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
  // Wake the writer for the first event (it then gathers for flush_ms) and
  // for a full batch.
  if (queue_.size() == 1 || queue_.size() >= options_.batch_size) wake_.notify_one();
  return true;
}

Status EventWriter::Stop(int64_t timeout_ms) {
  if (!thread_.joinable()) return Status::Ok();
  std::unique_lock lock(mu_);
  stopping_ = true;
  wake_.notify_all();
  const bool drained = drained_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                         [&] { return queue_.empty() && in_flight_ == 0; });
  const size_t left = queue_.size() + in_flight_;
  abandon_ = true;
  wake_.notify_all();
  lock.unlock();
  thread_.join();
  const int64_t lost = static_cast<int64_t>(drained ? 0 : left) + given_up_;
  if (lost == 0) return Status::Ok();
  return DeadlineExceededError(std::to_string(lost) + " real-time event(s) not written at shutdown");
}

std::optional<std::string> EventWriter::UserName(int64_t uid) {
  return *users_.Find(uid);
}

namespace {

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A path procmond can look up as the exec'ing process did (absolute, not an
// fd of its own: fexecve's /dev/fd/N).
bool UsablePath(const std::string& path) {
  return !path.empty() && path.front() == '/' && path.rfind("/dev/fd/", 0) != 0;
}

}  // namespace

void EventWriter::TakeHashingUpdate() {
  if (!hashing_changed_.exchange(false)) return;
  std::lock_guard lock(hashing_mu_);
  if (!hashing_update_) return;
  options_.hash_executables = hashing_update_->first;
  if (hashing_update_->second != hasher_->max_hash_bytes()) {
    options_.max_hash_bytes = hashing_update_->second;
    hasher_ = std::make_unique<ExeHasher>(options_.max_hash_bytes);  // cached skips depend on it
  }
  hashing_update_.reset();
  image_hashes_.clear();  // hashed under the old settings
}

models::ProcessEvent EventWriter::ToRow(const RealtimeEvent& ev) {
  TakeHashingUpdate();
  models::ProcessEvent row;
  row.event_time_ms = ev.time_ms;
  row.event_type = RealtimeEventTypeName(ev.type);
  row.pid = ev.pid;
  row.ppid = ev.ppid;
  row.user_id = ev.uid;
  if (ev.uid) row.user_name = UserName(*ev.uid);
  row.exit_code = ev.exit_code;
  row.exe_path = ev.exe_path;
  if (ev.argv) row.command_encoded = models::EncodeArgv(*ev.argv);
  if (ev.comm && !ev.comm->empty()) {
    row.name = ev.comm;
  } else if (ev.exe_path) {
    row.name = Basename(*ev.exe_path);
  }
  if (ev.start_boottime_ns) row.start_time_ms = ProcessBootClock().StartTimeMs(*ev.start_boottime_ns);
  if (ev.type == RealtimeEventType::kExit) ForgetExited(ev);
  if (ev.type != RealtimeEventType::kExec) return row;
  FillExecContext(ev, &row);
  FillParent(ev, &row);
  struct stat path_stat {};
  // One stat of the path, for both uses below (only with the kernel's image identity).
  const int path_errno = StatExecPath(ev, &path_stat);
  const struct stat* found = path_errno == 0 ? &path_stat : nullptr;
  CheckHostPath(ev, found, path_errno, &row);
  if (!HashKnownImage(ev, found, &row)) HashImage(ResolveExecImage(ev, &row), &row);
  Remember(ev.pid, ParentInfo{row.start_time_ms, row.exe_path, row.name, row.command_encoded});
  return row;
}

int EventWriter::StatExecPath(const RealtimeEvent& ev, struct stat* out) {
  if (!ev.image || !ev.exe_path || !UsablePath(*ev.exe_path)) return EINVAL;
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  auto it = paths_seen_.find(*ev.exe_path);
  if (it != paths_seen_.end() && now - it->second.seen_ms < kPathStatReuseMs &&
      static_cast<uint64_t>(it->second.st.st_dev) == ev.image->dev &&
      static_cast<uint64_t>(it->second.st.st_ino) == ev.image->ino) {
    *out = it->second.st;
    return 0;
  }
  if (::stat(ev.exe_path->c_str(), out) != 0) return errno;
  if (static_cast<uint64_t>(out->st_dev) == ev.image->dev &&
      static_cast<uint64_t>(out->st_ino) == ev.image->ino) {
    if (paths_seen_.size() >= kMaxPathsSeen && it == paths_seen_.end()) paths_seen_.clear();
    paths_seen_[*ev.exe_path] = PathSeen{*out, now};
  }
  return 0;
}

void EventWriter::FillExecContext(const RealtimeEvent& ev, models::ProcessEvent* row) {
  row->cwd = ev.cwd;
  row->login_uid = ev.login_uid;
  row->tty = ev.tty;
  row->effective_uid = ev.euid;
  row->effective_gid = ev.egid;
  row->cred_change = ev.cred_change;
  if (ev.env) {
    row->env = ev.env->vars;
    row->env_truncated = ev.env->truncated;
  }
  if (ev.argv) row->args_truncated = ev.argv_truncated;
  row->args_length = ev.args_length;
  row->exe_memfd_seals = ev.memfd_seals;
}

void EventWriter::FillParent(const RealtimeEvent& ev, models::ProcessEvent* row) {
  if (!ev.ppid || *ev.ppid <= 0) return;
  std::optional<int64_t> start;
  if (ev.parent_start_boottime_ns) start = ProcessBootClock().StartTimeMs(*ev.parent_start_boottime_ns);
  row->parent_start_time_ms = start;
  const ParentInfo* parent = FindParent(*ev.ppid, start);
  if (parent == nullptr) return;
  row->parent_exe_path = parent->exe_path;
  row->parent_name = parent->name;
  row->parent_command_encoded = parent->argv;
  if (!row->parent_start_time_ms) row->parent_start_time_ms = parent->start_time_ms;
}

const EventWriter::ParentInfo* EventWriter::FindParent(int64_t ppid, std::optional<int64_t> start_time_ms) {
  auto matches = [&](const ParentInfo& p) {
    return !start_time_ms || !p.start_time_ms || *p.start_time_ms == *start_time_ms;
  };
  if (auto it = parents_.find(ppid); it != parents_.end() && matches(it->second)) return &it->second;
  // Not seen exec'ing (it forked from its own parent, or started before
  // procmond): /proc, if it is still that process.
  auto proc = ReadProcIdentity(options_.proc_root, ppid, &scratch_);
  if (!proc) return nullptr;
  ParentInfo info;
  info.start_time_ms = ProcessBootClock().StartTimeMsFromTicks(proc->start_ticks);
  if (!matches(info)) return nullptr;  // the pid is another process's by now
  info.exe_path = std::move(proc->exe_path);
  info.name = std::move(proc->comm);
  if (proc->argv) info.argv = models::EncodeArgv(*proc->argv);
  Remember(ppid, std::move(info));
  return &parents_.at(ppid);
}

void EventWriter::Remember(int64_t pid, ParentInfo info) {
  if (parents_.size() >= kMaxParents && !parents_.contains(pid)) parents_.clear();
  parents_[pid] = std::move(info);
}

void EventWriter::ForgetExited(const RealtimeEvent& ev) {
  auto it = parents_.find(ev.pid);
  if (it == parents_.end()) return;
  // An exit of an earlier process with this pid leaves the new one's entry.
  if (ev.start_boottime_ns && it->second.start_time_ms &&
      *it->second.start_time_ms != ProcessBootClock().StartTimeMs(*ev.start_boottime_ns)) {
    return;
  }
  parents_.erase(it);
}

size_t EventWriter::ImageKeyHash::operator()(const ImageKey& k) const {
  size_t h = std::hash<uint64_t>()(k.ino);
  for (uint64_t v : {k.dev, static_cast<uint64_t>(k.size), static_cast<uint64_t>(k.mtime_ns),
                     static_cast<uint64_t>(k.ctime_ns)}) {
    h ^= std::hash<uint64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  }
  return h;
}

void EventWriter::CheckHostPath(const RealtimeEvent& ev, const struct stat* path_stat, int path_errno,
                                models::ProcessEvent* row) const {
  // Not checked: no identity from the kernel, a memfd, a path procmond
  // cannot look up as the caller did, or a task with its own root (a
  // container's /usr/bin is not the host's). A script's image is its
  // interpreter, not the file at exe_path.
  if (!ev.image || ev.memfd_seals || ev.interpreted || !ev.exe_path || !UsablePath(*ev.exe_path)) return;
  if (!ev.root_dev_ino || !host_root_ || *ev.root_dev_ino != *host_root_) return;
  const ExecImage& img = *ev.image;
  if (path_stat == nullptr) {
    // Nothing at that path on the host while the image had links: the path
    // exists only in the caller's mount namespace.
    if ((path_errno == ENOENT || path_errno == ENOTDIR) && img.nlink > 0) row->exe_host_mismatch = true;
    return;
  }
  if (path_stat->st_dev == img.dev && path_stat->st_ino == img.ino) {
    row->exe_host_mismatch = false;
    return;
  }
  // Replaced on the host after the exec (a package upgrade renames a new
  // file over the old): not a mismatch the exec can be blamed for.
  const int64_t changed_ms = IdentityNs(path_stat->st_ctim.tv_sec, path_stat->st_ctim.tv_nsec) / 1'000'000;
  if (changed_ms >= ev.time_ms) return;
  row->exe_host_mismatch = true;
}

bool EventWriter::HashKnownImage(const RealtimeEvent& ev, const struct stat* path_stat,
                                 models::ProcessEvent* row) {
  if (!ev.image || ev.image->nlink == 0 || path_stat == nullptr) return false;
  const ExecImage& img = *ev.image;
  const struct stat& st = *path_stat;
  const ImageKey key{img.dev, img.ino, img.size, img.mtime_ns, img.ctime_ns};
  const ImageKey now{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), st.st_size,
                     IdentityNs(st.st_mtim.tv_sec, st.st_mtim.tv_nsec),
                     IdentityNs(st.st_ctim.tv_sec, st.st_ctim.tv_nsec)};
  if (!(key == now)) return false;  // replaced, or another file system's view: the slow path decides
  if (!options_.hash_executables) return true;
  stats_->hashed_by_path.fetch_add(1, std::memory_order_relaxed);
  if (auto it = image_hashes_.find(key); it != image_hashes_.end()) {
    row->exe_hash = it->second;
    return true;
  }
  ExeHasher::Outcome h = hasher_->Hash(AT_FDCWD, ev.exe_path->c_str());
  if (!h.sha256) {
    stats_->hash_skipped.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  if (image_hashes_.size() >= kMaxImageHashes) image_hashes_.clear();
  image_hashes_.emplace(key, *h.sha256);
  row->exe_hash = std::move(h.sha256);
  return true;
}

// Which file the exec ran: the path the caller named, unless the process
// still runs an image that path no longer leads to (deleted, memfd, relative
// or /dev/fd/N path): then the kernel's own link says it better.
std::string EventWriter::ResolveExecImage(const RealtimeEvent& ev, models::ProcessEvent* row) {
  const std::string proc_exe = options_.proc_root + "/" + std::to_string(ev.pid) + "/exe";
  struct stat ps {
  }, fs{};
  const bool proc_ok = ::stat(proc_exe.c_str(), &ps) == 0;
  const bool path_ok = ev.exe_path && UsablePath(*ev.exe_path) && ::stat(ev.exe_path->c_str(), &fs) == 0;
  const bool same = proc_ok && path_ok && SameFile(ps, fs);
  if (same) {
    stats_->hashed_by_proc_exe.fetch_add(1, std::memory_order_relaxed);
    return proc_exe;
  }
  std::string link;
  if (proc_ok) {
    char buf[4096];
    ssize_t n = ::readlink(proc_exe.c_str(), buf, sizeof(buf) - 1);
    if (n > 0) link.assign(buf, static_cast<size_t>(n));
  }
  if (proc_ok && !path_ok && !link.empty()) {
    row->exe_path = link;  // with " (deleted)" or "/memfd:" as the kernel shows it
    if (!row->name) row->name = Basename(linux_proc::ClassifyExe(link).path);
    stats_->hashed_by_proc_exe.fetch_add(1, std::memory_order_relaxed);
    return proc_exe;
  }
  if (path_ok) {
    // The process is gone (or runs something else by now): hash the file the
    // path leads to, which is what it executed unless replaced since.
    stats_->hashed_by_path.fetch_add(1, std::memory_order_relaxed);
    return *ev.exe_path;
  }
  return {};
}

void EventWriter::HashImage(const std::string& path, models::ProcessEvent* row) {
  if (!options_.hash_executables) return;
  ExeHasher::Outcome h;
  if (!path.empty()) h = hasher_->Hash(AT_FDCWD, path.c_str());
  if (h.sha256) {
    row->exe_hash = std::move(h.sha256);
  } else {
    stats_->hash_skipped.fetch_add(1, std::memory_order_relaxed);
  }
}

void EventWriter::SetHashing(bool enabled, uint64_t max_hash_bytes) {
  std::lock_guard lock(hashing_mu_);
  hashing_update_ = std::make_pair(enabled, max_hash_bytes);
  hashing_changed_ = true;
}

void EventWriter::Run() {
  WriteRetry retry(options_.initial_backoff_ms, options_.max_backoff_ms, options_.health);
  std::vector<RealtimeEvent> batch;
  std::vector<models::ProcessEvent> rows;
  std::unique_lock lock(mu_);
  while (true) {
    const Next next = NextBatch(lock, &batch);
    if (next == Next::kExit) return;
    if (next == Next::kNothing) continue;
    lock.unlock();
    const StoredCounts by_type = ToRows(batch, &rows);
    if (!rows.empty()) WriteRows(rows, by_type, &retry);
    lock.lock();
    in_flight_ = 0;
    if (queue_.empty()) drained_.notify_all();
  }
}

EventWriter::Next EventWriter::NextBatch(std::unique_lock<std::mutex>& lock,
                                         std::vector<RealtimeEvent>* batch) {
  wake_.wait(lock, [&] { return abandon_ || stopping_ || !queue_.empty(); });
  if (abandon_) {
    // Stop()'s deadline passed: what is still queued is not written.
    stats_->lost_write.fetch_add(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
    queue_.clear();
    return Next::kExit;
  }
  // Gather: wait up to flush_ms for a full batch (not when stopping).
  if (!stopping_ && queue_.size() < options_.batch_size) {
    wake_.wait_for(lock, std::chrono::milliseconds(options_.flush_ms),
                   [&] { return abandon_ || stopping_ || queue_.size() >= options_.batch_size; });
  }
  if (queue_.empty()) {
    if (!abandon_ && !stopping_) return Next::kNothing;
    drained_.notify_all();
    if (abandon_) return Next::kExit;
    wake_.wait(lock, [&] { return abandon_ || !queue_.empty(); });
    return Next::kNothing;
  }
  const size_t n = std::min(queue_.size(), options_.batch_size * 4);
  batch->clear();
  for (size_t i = 0; i < n; ++i) {
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  in_flight_ = n;
  stats_->queued.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
  return Next::kBatch;
}

EventWriter::StoredCounts EventWriter::ToRows(const std::vector<RealtimeEvent>& batch,
                                              std::vector<models::ProcessEvent>* rows) {
  StoredCounts by_type{};
  rows->clear();
  for (const RealtimeEvent& ev : batch) {
    if (ev.type == RealtimeEventType::kFork && !options_.store_forks) {
      stats_->fork_not_stored.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!ev.incomplete.empty()) stats_->incomplete.fetch_add(1, std::memory_order_relaxed);
    if (ev.argv_truncated) stats_->argv_truncated.fetch_add(1, std::memory_order_relaxed);
    rows->push_back(ToRow(ev));
    by_type[static_cast<size_t>(ev.type)]++;
  }
  return by_type;
}

void EventWriter::WriteRows(const std::vector<models::ProcessEvent>& rows, const StoredCounts& by_type,
                            WriteRetry* retry) {
  int failed_while_stopping = 0;
  while (true) {
    Result<int64_t> r = write_(rows);
    retry->Record(r.status());
    if (r.ok()) {
      stats_->batches_written.fetch_add(1, std::memory_order_relaxed);
      for (size_t t = 1; t < by_type.size(); ++t)
        stats_->AddStored(static_cast<RealtimeEventType>(t), by_type[t]);
      return;
    }
    telemetry::LogError(
        "writing real-time events failed; will retry",
        {{"error", r.status().message()}, {"events", rows.size()}, {"retry_in_ms", retry->backoff_ms()}});
    if (!WaitToRetry(rows.size(), &failed_while_stopping, retry)) return;
  }
}

bool EventWriter::WaitToRetry(size_t rows, int* failed_while_stopping, WriteRetry* retry) {
  std::unique_lock lock(mu_);
  if (stopping_ && ++*failed_while_stopping >= kStopAttempts) {
    // Shutting down on a store that keeps failing: give this batch and the
    // queue up now instead of retrying to the deadline.
    const int64_t lost = static_cast<int64_t>(rows + queue_.size());
    stats_->lost_write.fetch_add(lost, std::memory_order_relaxed);
    given_up_ += lost;
    queue_.clear();
    stats_->queued.store(0, std::memory_order_relaxed);
    return false;
  }
  const bool was_stopping = stopping_;
  wake_.wait_for(lock, retry->Delay(stopping_), [&] { return abandon_ || stopping_ != was_stopping; });
  if (abandon_) {
    stats_->lost_write.fetch_add(static_cast<int64_t>(rows), std::memory_order_relaxed);
    return false;
  }
  retry->Backoff();
  return true;
}

}  // namespace sentinel::procmond
