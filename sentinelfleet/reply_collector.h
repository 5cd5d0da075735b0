// The replies of one live query (`sentinelfleet query`): chunks from many
// hosts arriving on the console's inbox (envelope.h: QueryChunk), put back
// in order per host, until every expected host sent its final chunk or the
// deadline passes.
//
// Replies are host-supplied: a chunk of another query, an invalid host id,
// a sequence number out of range or beyond the row bound is dropped and
// counted; a host's rows are kept up to the query's max_rows (more is
// marked truncated).
//
// Thread-safety: Take() runs on the subscription's thread; Wait() and
// Results() on the caller's. A mutex and a condition variable join them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/fleet/envelope.h"

namespace sentinel::console {

struct HostReply {
  std::vector<std::string> columns;
  std::vector<nlohmann::json> rows;  // each an array, in the host's order
  bool complete = false;             // the final chunk and every chunk before it arrived
  bool truncated = false;
  std::optional<fleet::QueryError> error;
};

class ReplyCollector {
 public:
  // `expected`: the hosts that must answer; empty: wait for the deadline
  // (hosts=all and none known). `max_rows`: per host.
  ReplyCollector(std::string query_id, std::set<std::string> expected, int64_t max_rows);

  // One message from the inbox.
  void Take(std::string_view data);

  // Blocks until every expected host is complete, or `deadline`.
  void Wait(std::chrono::steady_clock::time_point deadline);

  // What arrived, by host_id (a copy, taken under the lock).
  std::map<std::string, HostReply> Results() const;
  // Expected hosts that are not complete.
  std::vector<std::string> Missing() const;
  int64_t dropped() const;

 private:
  struct Pending {
    std::map<int64_t, fleet::QueryChunk> chunks;  // by seq
    std::optional<int64_t> final_seq;
    int64_t rows = 0;
    bool overflow = false;  // rows beyond max_rows were dropped
  };
  bool AllDoneLocked() const;
  static bool Complete(const Pending& p);
  bool Accept(const fleet::QueryChunk& c) const;

  const std::string query_id_;
  const std::set<std::string> expected_;
  const int64_t max_rows_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Pending> hosts_;  // guarded by mu_
  int64_t dropped_ = 0;                   // guarded by mu_
};

}  // namespace sentinel::console
