#include "sentinelfleet/reply_collector.h"

#include <algorithm>

#include "sentinel/fleet/subjects.h"

namespace sentinel::console {
namespace {

// A reply never has more chunks than this (max_rows rows of at least one
// byte each in 256 KiB chunks is far fewer): a bound on what a host can make
// the console keep.
constexpr int64_t kMaxChunksPerHost = 4096;
constexpr size_t kMaxHosts = 100'000;

}  // namespace

ReplyCollector::ReplyCollector(std::string query_id, std::set<std::string> expected, int64_t max_rows)
    : query_id_(std::move(query_id)), expected_(std::move(expected)), max_rows_(max_rows) {}

bool ReplyCollector::Accept(const fleet::QueryChunk& c) const {
  // A host that refused the envelope before it could read the payload
  // answers without a query_id: the inbox is this query's alone.
  const bool unread_refusal = c.query_id.empty() && c.error && c.final;
  if ((c.query_id != query_id_ && !unread_refusal) || !fleet::IsValidHostId(c.host_id)) return false;
  if (c.seq < 0 || c.seq >= kMaxChunksPerHost) return false;
  return hosts_.size() < kMaxHosts || hosts_.count(c.host_id) > 0;
}

void ReplyCollector::Take(std::string_view data) {
  auto chunk = fleet::ParseQueryChunk(data);
  std::lock_guard lock(mu_);
  if (!chunk.ok() || !Accept(*chunk)) {
    ++dropped_;
    return;
  }
  Pending& p = hosts_[chunk->host_id];
  if (Complete(p) || p.chunks.count(chunk->seq) > 0 || (p.final_seq && chunk->seq > *p.final_seq)) {
    ++dropped_;  // a repeat, or past the end
    return;
  }
  // Never keep more than max_rows rows of a host, whatever it sends.
  const int64_t room = std::max<int64_t>(0, max_rows_ - p.rows);
  if (static_cast<int64_t>(chunk->rows.size()) > room) {
    nlohmann::json kept = nlohmann::json::array();
    for (int64_t i = 0; i < room; ++i) kept.push_back(std::move(chunk->rows[static_cast<size_t>(i)]));
    chunk->rows = std::move(kept);
    p.overflow = true;
  }
  p.rows += static_cast<int64_t>(chunk->rows.size());
  if (chunk->final) p.final_seq = chunk->seq;
  const int64_t seq = chunk->seq;
  p.chunks.emplace(seq, std::move(*chunk));
  if (AllDoneLocked()) cv_.notify_all();
}

bool ReplyCollector::Complete(const Pending& p) {
  return p.final_seq && static_cast<int64_t>(p.chunks.size()) == *p.final_seq + 1;
}

bool ReplyCollector::AllDoneLocked() const {
  if (expected_.empty()) return false;
  for (const std::string& h : expected_) {
    auto it = hosts_.find(h);
    if (it == hosts_.end() || !Complete(it->second)) return false;
  }
  return true;
}

void ReplyCollector::Wait(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline, [this] { return AllDoneLocked(); });
}

std::map<std::string, HostReply> ReplyCollector::Results() const {
  std::lock_guard lock(mu_);
  std::map<std::string, HostReply> out;
  for (const auto& [host, p] : hosts_) {
    HostReply& r = out[host];
    r.complete = Complete(p);
    for (const auto& [seq, c] : p.chunks) {
      if (r.columns.empty()) r.columns = c.columns;
      if (c.error) r.error = c.error;
      if (c.final) r.truncated = c.truncated;
      for (const auto& row : c.rows) r.rows.push_back(row);
    }
    if (p.overflow) r.truncated = true;
  }
  return out;
}

std::vector<std::string> ReplyCollector::Missing() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const std::string& h : expected_) {
    auto it = hosts_.find(h);
    if (it == hosts_.end() || !Complete(it->second)) out.push_back(h);
  }
  return out;
}

int64_t ReplyCollector::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace sentinel::console
