// sentinelfleet's own store (console.database, SQLite, DatabaseKind::kFleet):
// every host's alerts as `serve` took them from JetStream, and each host's
// last heartbeat. Schema: storage/migrations.cc (kFleet1), docs/fleet.md
// "The console".
//
// Idempotent by construction: an alert is keyed by (host_id, alert_id), so a
// message JetStream delivers again (no ack before a crash, or a host's retry
// after the stream's duplicate window) is absorbed, never stored twice. Each
// host's alerts are numbered host_seq = 1, 2, ... in the order they arrived.
//
// Everything in a row except host_id (the subject's token, checked) comes
// from the host: attacker-controlled text, stored as received and escaped
// when printed.
//
// Thread-safety: a ConsoleStore is one SQLite connection, used by one thread
// at a time. Several processes may use the file at once (WAL).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::console {

// One alert message of SENTINELD_ALERTS, checked.
struct ReceivedAlert {
  std::string host_id;   // from the subject sentineld.alerts.<host_id>
  std::string alert_id;  // the host's id of the alert
  uint64_t stream_seq = 0;
  std::string body;  // the alert JSON as published (native or OCSF)
};

// Reads one message of SENTINELD_ALERTS. host_id is the subject's last token;
// alert_id is what follows "<host_id>:" in the Nats-Msg-Id header, else the
// body's "id" (native) or finding_info.uid (OCSF). InvalidArgument naming
// what is wrong: a subject that is not sentineld.alerts.<valid host_id>, a
// Nats-Msg-Id of another host, a body that is not a JSON object (or larger
// than kMaxAlertBytes), no alert id.
inline constexpr size_t kMaxAlertBytes = 1 << 20;
Result<ReceivedAlert> ParseAlertMessage(std::string_view subject,
                                        const std::map<std::string, std::string>& headers,
                                        std::string_view data, uint64_t stream_seq);

struct StoredAlert {
  int64_t id = 0;  // the console's id (alerts show ID)
  std::string host_id;
  std::string alert_id;
  int64_t host_seq = 0;
  int64_t stream_seq = 0;
  int64_t received_at_ms = 0;
  std::optional<int64_t> alert_time;  // ms, from the body
  std::string rule_id, severity, title;
  std::string body;
};

struct AlertFilter {
  std::string host_id;              // empty: every host
  std::optional<int64_t> since_ms;  // alert_time >= since (received_at when the body has none)
  std::optional<int64_t> limit;     // at most N, newest first
};

struct HostRow {
  std::string host_id;
  std::string hostname, version, health, last_scan;
  std::optional<int64_t> rules_count;
  std::string rules_checksum;
  std::string bundle;              // the heartbeat's rules.bundle as compact JSON, "" when null
  std::optional<int64_t> sent_at;  // unix seconds, from the host
  int64_t seen_at_ms = 0;          // when the console stored it
  std::string heartbeat;           // the whole value as received
};

// A heartbeat value (JSON object) as the hosts table keeps it; seen_at_ms =
// `now_ms`. InvalidArgument when the key is not a host id or the value not a
// JSON object.
Result<HostRow> HostRowFromHeartbeat(const std::string& host_id, std::string_view value, int64_t now_ms);

// How many events and scans the host has not forwarded yet: the sum of
// `forward.events.pending` and `forward.scans.pending` of its heartbeat
// value (docs/fleet.md "In the heartbeat"); nullopt when it forwards
// neither (`"forward": null`) or the value says nothing readable.
std::optional<int64_t> ForwardPending(std::string_view heartbeat);

class ConsoleStore {
 public:
  // Opens (kReadWrite: creates and migrates) the store at `path`. Errors as
  // storage::OpenStore: NotFound (read-only, missing), FailedPrecondition
  // (another database, newer schema), PermissionDenied.
  static Result<std::unique_ptr<ConsoleStore>> Open(const std::string& path, storage::OpenMode mode,
                                                    int64_t busy_timeout_ms = 5000);

  // Stores a batch in one transaction: an alert whose (host_id, alert_id)
  // is already stored is skipped. Returns how many were new. On error
  // nothing of the batch is stored.
  Result<int64_t> AddAlerts(std::span<const ReceivedAlert> alerts, int64_t now_ms);

  // Records `host_id`'s heartbeat (the JSON value of its key in
  // sentineld_hosts) unless the stored one has a later sent_at, or is this
  // very value again (same sent_at and revision: a watch started again
  // delivers every key's current value, which must not make a silent host
  // look seen now). A value that is not a JSON object is InvalidArgument
  // (nothing stored).
  Status PutHeartbeat(const std::string& host_id, std::string_view value, uint64_t revision, int64_t now_ms);

  // Newest first (the console's arrival order).
  Result<std::vector<StoredAlert>> ListAlerts(const AlertFilter& filter);
  // By the console's id; NotFound naming it.
  Result<StoredAlert> GetAlert(int64_t id);
  // By the host's id of the alert; NotFound naming both.
  Result<StoredAlert> GetHostAlert(const std::string& host_id, const std::string& alert_id);
  // Every host, by host_id.
  Result<std::vector<HostRow>> ListHosts();

  // Deletes the alerts that arrived (received_at_ms, the console's own
  // clock: a host cannot make its alerts expire early) more than
  // `retention_days` before `now_ms`, in storage::DeleteInChunks' short
  // transactions. Each host's newest alert is kept whatever its age, so its
  // host_seq numbering goes on where it was. Returns how many were deleted.
  Result<int64_t> ApplyRetention(int64_t now_ms, int64_t retention_days, int64_t chunk_rows = 2000);

  // The hosts whose latest heartbeat the console stored (seen_at_ms, its own
  // clock) more than `expiry_days` before `now_ms`, by host_id.
  Result<std::vector<std::string>> ExpiredHosts(int64_t now_ms, int64_t expiry_days);
  // Deletes `host_id`'s row of hosts (its alerts stay) when its latest
  // heartbeat was stored before `seen_before_ms` (INT64_MAX: whatever its
  // age). False when no such row was there.
  Result<bool> ForgetHost(const std::string& host_id, int64_t seen_before_ms);

  storage::Database& db() { return *db_; }

 private:
  explicit ConsoleStore(std::unique_ptr<storage::Database> db) : db_(std::move(db)) {}
  Result<bool> InsertAlert(const ReceivedAlert& a, int64_t now_ms);
  std::unique_ptr<storage::Database> db_;
};

}  // namespace sentinel::console
