// `fleet.forward: [events, scans]` (SPEC §14, docs/fleet.md "Forwarding"):
// the host's stored exec/exit events (process_events rows) go to JetStream
// stream SENTINELD_EVENTS, subject sentineld.events.<host_id>, one message per
// event; each completed scan goes to SENTINELD_SCANS, subject
// sentineld.scans.<host_id>, as one or more chunks (the scan's summary and its
// processes, at most kMaxForwardMessageBytes each).
//
// The event store is the queue: a persistent cursor per stream
// (fleet_forward_cursors, migration 9) holds the last id JetStream
// acknowledged, and is advanced only after the acknowledgement. Every message
// carries a Nats-Msg-Id derived from the row (`<host_id>:e<event id>`,
// `<host_id>:s<scan id>.<chunk>`) so a publish repeated after a lost ack or a
// crash is stored once within the stream's duplicate window. A broker that is
// down (or a stream that does not exist yet) only makes the cursor wait: the
// forwarder retries with a growing pause (up to 5 s) and resumes in order.
// Rows that retention deleted before they were forwarded are named in one log
// line (the ids lost) and skipped.
//
// Threads: FleetForwarder runs on its own thread with its own store
// connection; collection and detection never wait for it. Start/Stop from one
// thread. The NatsClient must outlive the forwarder.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/base/time.h"
#include "sentinel/config/config.h"
#include "sentinel/fleet/nats_client.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::agent {

enum class ForwardKind { kEvents, kScans };
// "events" | "scans": the fleet.forward value and the cursor's key.
std::string_view ForwardKindName(ForwardKind kind);
// True when `cfg` forwards `kind`: fleet.servers set and the kind in fleet.forward.
bool Forwards(const config::Config& cfg, ForwardKind kind);

// ---- cursors (fleet_forward_cursors), on the caller's connection
// The stored cursor, nullopt when there is none.
Result<std::optional<int64_t>> ReadForwardCursor(storage::Database& db, ForwardKind kind);
Status SetForwardCursor(storage::Database& db, ForwardKind kind, int64_t last_id, int64_t now_ms);
// The highest id the kind's table has ever given (its AUTOINCREMENT sequence).
Result<int64_t> ForwardTableEnd(storage::Database& db, ForwardKind kind);
// The cursor, created at the table's current end when there is none (logged).
Result<int64_t> EnsureForwardCursor(storage::Database& db, ForwardKind kind, int64_t now_ms);
// At the daemon's start, before procmond runs: the cursor of every forwarded
// kind exists (created at the current end: history from before forwarding was
// enabled stays on the host) and the cursor of a kind not forwarded is removed
// (enabling it again starts at the end then, not with a backlog).
Status SyncForwardCursors(storage::Database& db, const config::Config& cfg, int64_t now_ms);

// ---- message formats (docs/fleet.md "Forwarding"), pure
inline constexpr std::size_t kMaxForwardMessageBytes = std::size_t{256} << 10;
std::string EventMsgId(std::string_view host_id, int64_t event_id);
std::string ScanMsgId(std::string_view host_id, int64_t scan_id, int chunk);
// The current row of `st` as a JSON object, one member per column: integers,
// reals, NULLs as such; the JSON text columns (command_line, env,
// platform_data, ...) embedded as JSON when they parse; other text as strings.
nlohmann::json RowJson(const storage::Statement& st);
// `j` (an object) as compact JSON of at most `max_bytes` (>= 1024): invalid
// UTF-8 replaced by U+FFFD; when too long, "truncated": true is added, long
// strings are cut at a UTF-8 boundary, and then the largest members are
// replaced by null until it fits (the ids, pid, host_id and event_type stay).
std::string FitJson(nlohmann::json j, std::size_t max_bytes);
// One event message: the row and "host_id".
std::string EventMessage(std::string_view host_id, nlohmann::json row, std::size_t max_bytes);
// The chunks of one scan: {"host_id", "scan_id", "chunk", "chunks", "scan": summary,
// "processes": [rows]}, each at most `max_bytes`, the rows in their order.
std::vector<std::string> ScanMessages(std::string_view host_id, int64_t scan_id,
                                      const nlohmann::json& summary,
                                      const std::vector<std::string>& process_rows, std::size_t max_bytes);

struct ForwarderOptions {
  std::string database_path;
  int64_t busy_timeout_ms = 5000;
  std::string host_id;
  bool events = false;
  bool scans = false;
  int64_t batch_rows = 500;           // events read and published per round
  int64_t poll_ms = 500;              // pause when nothing is new
  int64_t publish_timeout_ms = 3000;  // each publish's acknowledgement
  std::size_t max_message_bytes = kMaxForwardMessageBytes;
  const Clock* clock = &Clock::Real();
};

class FleetForwarder {
 public:
  static std::unique_ptr<FleetForwarder> Start(ForwarderOptions options, fleet::NatsClient* client);
  ~FleetForwarder();  // Stop()
  FleetForwarder(const FleetForwarder&) = delete;
  FleetForwarder& operator=(const FleetForwarder&) = delete;
  // Ends the thread; a publish in progress ends within its time limit.
  void Stop();

 private:
  struct Cursor {
    ForwardKind kind;
    std::optional<int64_t> acked;  // in memory: the last id acknowledged
    int64_t stored = -1;           // what the table holds
  };
  struct Progress {  // the chunks of one scan acknowledged so far
    int64_t scan_id = -1;
    int chunks_acked = 0;
  };
  FleetForwarder(ForwarderOptions options, fleet::NatsClient* client);
  void Loop();
  bool Pause(int64_t ms);  // false when stopping
  bool Stopping();
  Result<bool> Round();
  Status OpenStore();
  Status LoadCursor(Cursor& c);
  Status StoreCursor(Cursor& c);
  Result<bool> ForwardEvents();
  Result<bool> ForwardScans();
  Result<bool> ForwardScan(int64_t scan_id, const nlohmann::json& summary);
  Result<std::vector<std::string>> ScanProcessRows(int64_t scan_id);
  Status Publish(const std::string& subject, const std::string& data, const std::string& msg_id);
  void NoteLost(ForwardKind kind, int64_t first, int64_t last, int64_t count);
  void NoteFailure(const Status& s);
  void NoteRecovery();

  ForwarderOptions opts_;
  fleet::NatsClient* client_;
  std::unique_ptr<storage::Database> db_;
  Cursor events_{ForwardKind::kEvents};
  Cursor scans_{ForwardKind::kScans};
  Progress progress_;
  int64_t failing_since_ms_ = -1;  // forwarder thread only
  int64_t last_failure_log_ms_ = -1;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sentinel::agent
