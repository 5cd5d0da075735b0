#include "procmond/realtime/event_writer.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "procmond/batch_writer.h"
#include "procmond/platform/linux/proc_parsers.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::procmond {

EventWriter::EventWriter(WriteFn write, RealtimeStats* stats, EventWriterOptions options)
    : write_(std::move(write)),
      stats_(stats),
      options_(std::move(options)),
      hasher_(std::make_unique<ExeHasher>(options_.max_hash_bytes)) {
  if (options_.capacity == 0) options_.capacity = 1;
  if (options_.batch_size == 0) options_.batch_size = 1;
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
  if (auto it = users_.find(uid); it != users_.end()) return it->second;
  if (users_.size() > 4096) users_.clear();
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  std::optional<std::string> name;
  if (getpwuid_r(static_cast<uid_t>(uid), &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
    name = found->pw_name;
  }
  users_[uid] = name;
  return name;
}

namespace {

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

models::ProcessEvent EventWriter::ToRow(const RealtimeEvent& ev) {
  if (hashing_changed_.exchange(false)) {
    std::lock_guard lock(hashing_mu_);
    if (hashing_update_) {
      options_.hash_executables = hashing_update_->first;
      if (hashing_update_->second != hasher_->max_hash_bytes()) {
        options_.max_hash_bytes = hashing_update_->second;
        hasher_ = std::make_unique<ExeHasher>(options_.max_hash_bytes);  // cached skips depend on it
      }
      hashing_update_.reset();
    }
  }
  models::ProcessEvent row;
  row.event_time_ms = ev.time_ms;
  row.event_type = RealtimeEventTypeName(ev.type);
  row.pid = ev.pid;
  row.ppid = ev.ppid;
  row.user_id = ev.uid;
  if (ev.uid) row.user_name = UserName(*ev.uid);
  row.exit_code = ev.exit_code;
  row.exe_path = ev.exe_path;
  row.command_line = ev.argv;
  if (ev.comm && !ev.comm->empty()) {
    row.name = ev.comm;
  } else if (ev.exe_path) {
    row.name = Basename(*ev.exe_path);
  }
  if (ev.type != RealtimeEventType::kExec) return row;

  // Which file the exec ran: the path the caller named, unless the process
  // still runs an image that path no longer leads to (deleted, memfd,
  // relative or /dev/fd/N path): then the kernel's own link says it better.
  const std::string proc_exe = options_.proc_root + "/" + std::to_string(ev.pid) + "/exe";
  struct stat ps {
  }, fs{};
  const bool proc_ok = ::stat(proc_exe.c_str(), &ps) == 0;
  const bool path_ok = ev.exe_path && !ev.exe_path->empty() && ev.exe_path->front() == '/' &&
                       ev.exe_path->rfind("/dev/fd/", 0) != 0 && ::stat(ev.exe_path->c_str(), &fs) == 0;
  std::string link;
  if (proc_ok && !(path_ok && SameFile(ps, fs))) {
    char buf[4096];
    ssize_t n = ::readlink(proc_exe.c_str(), buf, sizeof(buf) - 1);
    if (n > 0) link.assign(buf, static_cast<size_t>(n));
  }
  const linux_proc::ExeInfo info = linux_proc::ClassifyExe(link);
  const char* hash_from = nullptr;
  if (proc_ok && path_ok && SameFile(ps, fs)) {
    hash_from = proc_exe.c_str();
    stats_->hashed_by_proc_exe.fetch_add(1, std::memory_order_relaxed);
  } else if (proc_ok && !path_ok && !link.empty()) {
    row.exe_path = link;  // with " (deleted)" or "/memfd:" as the kernel shows it
    if (!row.name) row.name = Basename(info.path);
    hash_from = proc_exe.c_str();
    stats_->hashed_by_proc_exe.fetch_add(1, std::memory_order_relaxed);
  } else if (path_ok) {
    // The process is gone (or runs something else by now): hash the file the
    // path leads to, which is what it executed unless replaced since.
    hash_from = ev.exe_path->c_str();
    stats_->hashed_by_path.fetch_add(1, std::memory_order_relaxed);
  }
  if (options_.hash_executables && hash_from != nullptr) {
    ExeHasher::Outcome h = hasher_->Hash(AT_FDCWD, hash_from);
    if (h.sha256) {
      row.exe_hash = std::move(h.sha256);
    } else {
      stats_->hash_skipped.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (options_.hash_executables) {
    stats_->hash_skipped.fetch_add(1, std::memory_order_relaxed);
  }
  return row;
}

void EventWriter::SetHashing(bool enabled, uint64_t max_hash_bytes) {
  std::lock_guard lock(hashing_mu_);
  hashing_update_ = std::make_pair(enabled, max_hash_bytes);
  hashing_changed_ = true;
}

void EventWriter::Run() {
  int64_t backoff = options_.initial_backoff_ms;
  std::vector<RealtimeEvent> batch;
  std::vector<models::ProcessEvent> rows;
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return abandon_ || stopping_ || !queue_.empty(); });
    if (abandon_) {
      // Stop()'s deadline passed: what is still queued is not written.
      stats_->lost_write.fetch_add(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
      queue_.clear();
      return;
    }
    // Gather: wait up to flush_ms for a full batch (not when stopping).
    if (!stopping_ && queue_.size() < options_.batch_size) {
      wake_.wait_for(lock, std::chrono::milliseconds(options_.flush_ms),
                     [&] { return abandon_ || stopping_ || queue_.size() >= options_.batch_size; });
    }
    if (queue_.empty()) {
      if (abandon_ || stopping_) {
        drained_.notify_all();
        if (abandon_) return;
        wake_.wait(lock, [&] { return abandon_ || !queue_.empty(); });
      }
      continue;
    }
    const size_t n = std::min(queue_.size(), options_.batch_size * 4);
    batch.clear();
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    in_flight_ = n;
    stats_->queued.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
    lock.unlock();

    rows.clear();
    int64_t by_type[4] = {};
    for (const RealtimeEvent& ev : batch) {
      if (ev.type == RealtimeEventType::kFork && !options_.store_forks) {
        stats_->fork_not_stored.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (!ev.incomplete.empty()) stats_->incomplete.fetch_add(1, std::memory_order_relaxed);
      if (ev.argv_truncated) stats_->argv_truncated.fetch_add(1, std::memory_order_relaxed);
      rows.push_back(ToRow(ev));
      by_type[static_cast<int>(ev.type)]++;
    }
    bool written = rows.empty();
    int failed_while_stopping = 0;
    while (!written) {
      Result<int64_t> r = write_(rows);
      if (options_.health) {
        if (r.ok()) {
          options_.health->Ok();
        } else {
          options_.health->Failed(r.status().message());
        }
      }
      if (r.ok()) {
        written = true;
        backoff = options_.initial_backoff_ms;
        stats_->batches_written.fetch_add(1, std::memory_order_relaxed);
        for (int t = 1; t < 4; ++t) stats_->AddStored(static_cast<RealtimeEventType>(t), by_type[t]);
        break;
      }
      telemetry::LogError(
          "writing real-time events failed; will retry",
          {{"error", r.status().message()}, {"events", rows.size()}, {"retry_in_ms", backoff}});
      std::unique_lock wait_lock(mu_);
      if (stopping_ && ++failed_while_stopping >= kStopAttempts) {
        // Shutting down on a store that keeps failing: give this batch and
        // the queue up now instead of retrying to the deadline.
        const int64_t lost = static_cast<int64_t>(rows.size() + queue_.size());
        stats_->lost_write.fetch_add(lost, std::memory_order_relaxed);
        given_up_ += lost;
        queue_.clear();
        stats_->queued.store(0, std::memory_order_relaxed);
        break;
      }
      const bool was_stopping = stopping_;
      wake_.wait_for(wait_lock,
                     std::chrono::milliseconds(stopping_ ? std::min(backoff, kStopRetryMs) : backoff),
                     [&] { return abandon_ || stopping_ != was_stopping; });
      if (abandon_) {
        stats_->lost_write.fetch_add(static_cast<int64_t>(rows.size()), std::memory_order_relaxed);
        break;
      }
      backoff = std::min(backoff * 2, options_.max_backoff_ms);
    }
    lock.lock();
    in_flight_ = 0;
    if (queue_.empty()) drained_.notify_all();
  }
}

}  // namespace sentinel::procmond
