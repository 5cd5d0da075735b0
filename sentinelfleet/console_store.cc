#include "sentinelfleet/console_store.h"

#include <limits>

#include <nlohmann/json.hpp>

#include "sentinel/base/strings.h"
#include "sentinel/storage/store.h"

namespace sentinel::console {
namespace {

using nlohmann::json;

// "sentineld.alerts."
constexpr std::string_view kAlertPrefix = fleet::kAlertsSubjects.substr(0, fleet::kAlertsSubjects.size() - 1);

constexpr size_t kMaxAlertIdBytes = 128;

std::string TextOf(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return "";
}

// The fields the store indexes, from a native alert (Alert::ToJson) or an
// OCSF Detection Finding (class_uid 2004).
struct AlertSummary {
  std::string alert_id, rule_id, severity, title;
  std::optional<int64_t> alert_time;
};

AlertSummary Summarise(const json& body) {
  AlertSummary s;
  auto field = [&](const json& obj, const char* key) {
    return obj.is_object() && obj.contains(key) ? obj[key] : json();
  };
  if (field(body, "class_uid") == 2004) {
    const json info = field(body, "finding_info");
    s.alert_id = TextOf(field(info, "uid"));
    s.title = TextOf(field(info, "title"));
    s.rule_id = TextOf(field(field(body, "unmapped"), "rule_id"));
    s.severity = ToLower(TextOf(field(body, "severity")));
    if (json t = field(body, "time"); t.is_number_integer()) s.alert_time = t.get<int64_t>();
    return s;
  }
  s.alert_id = TextOf(field(body, "id"));
  s.title = TextOf(field(body, "title"));
  s.rule_id = TextOf(field(body, "rule_id"));
  s.severity = TextOf(field(body, "severity"));
  if (json t = field(body, "alert_time"); t.is_number_integer()) s.alert_time = t.get<int64_t>();
  return s;
}

Result<json> ParseObject(std::string_view data, std::string_view what) {
  json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgumentError(std::string(what) + " is not a JSON object");
  return j;
}

Result<std::string> AlertIdFromHeader(const std::map<std::string, std::string>& headers,
                                      const std::string& host_id) {
  auto it = headers.find("Nats-Msg-Id");
  if (it == headers.end()) return std::string();
  const std::string prefix = host_id + ":";
  if (it->second.compare(0, prefix.size(), prefix) != 0) {
    return InvalidArgumentError("Nats-Msg-Id " + QuoteForMessage(it->second) + " is not of host " + host_id);
  }
  return it->second.substr(prefix.size());
}

constexpr std::string_view kAlertColumns =
    "id, host_id, alert_id, host_seq, stream_seq, received_at_ms, alert_time, rule_id, severity, title, body";

StoredAlert AlertFromRow(storage::Statement& st) {
  StoredAlert a;
  a.id = st.ColumnInt(0);
  a.host_id = st.ColumnText(1);
  a.alert_id = st.ColumnText(2);
  a.host_seq = st.ColumnInt(3);
  a.stream_seq = st.ColumnInt(4);
  a.received_at_ms = st.ColumnInt(5);
  a.alert_time = st.ColumnOptionalInt(6);
  a.rule_id = st.ColumnText(7);
  a.severity = st.ColumnText(8);
  a.title = st.ColumnText(9);
  a.body = st.ColumnText(10);
  return a;
}

Result<std::vector<StoredAlert>> CollectAlerts(storage::Statement& st) {
  std::vector<StoredAlert> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(AlertFromRow(st));
  }
  return out;
}

}  // namespace

Result<HostRow> HostRowFromHeartbeat(const std::string& host_id, std::string_view value, int64_t now_ms) {
  if (!fleet::IsValidHostId(host_id)) {
    return InvalidArgumentError("heartbeat key " + QuoteForMessage(host_id) + " is not a host id");
  }
  ASSIGN_OR_RETURN(json hb, ParseObject(value, "heartbeat of host " + host_id));
  HostRow h;
  h.host_id = host_id;
  h.hostname = TextOf(hb.value("hostname", json()));
  h.version = TextOf(hb.value("version", json()));
  h.health = TextOf(hb.value("health", json()));
  h.last_scan = TextOf(hb.value("last_scan", json()));
  if (json t = hb.value("sent_at", json()); t.is_number_integer()) h.sent_at = t.get<int64_t>();
  const json rules = hb.value("rules", json());
  if (rules.is_object()) {
    if (json n = rules.value("count", json()); n.is_number_integer()) h.rules_count = n.get<int64_t>();
    h.rules_checksum = TextOf(rules.value("checksum", json()));
    if (json b = rules.value("bundle", json()); b.is_object()) {
      h.bundle = b.dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  h.seen_at_ms = now_ms;
  h.heartbeat = std::string(value);
  return h;
}

std::optional<int64_t> ForwardPending(std::string_view heartbeat) {
  const json hb = json::parse(heartbeat, nullptr, /*allow_exceptions=*/false);
  if (!hb.is_object()) return std::nullopt;
  const json forward = hb.value("forward", json());
  if (!forward.is_object()) return std::nullopt;
  std::optional<int64_t> total;
  for (const char* kind : {"events", "scans"}) {
    const json k = forward.value(kind, json());
    if (!k.is_object()) continue;
    const json pending = k.value("pending", json());
    if (!pending.is_number_integer() || pending.get<int64_t>() < 0) continue;
    // Saturating: the value is the host's word, and a sum that overflows is no count.
    const int64_t n = pending.get<int64_t>();
    const int64_t sum = total.value_or(0);
    total = sum > std::numeric_limits<int64_t>::max() - n ? std::numeric_limits<int64_t>::max() : sum + n;
  }
  return total;
}

Result<ReceivedAlert> ParseAlertMessage(std::string_view subject,
                                        const std::map<std::string, std::string>& headers,
                                        std::string_view data, uint64_t stream_seq) {
  if (subject.substr(0, kAlertPrefix.size()) != kAlertPrefix ||
      !fleet::IsValidHostId(subject.substr(kAlertPrefix.size()))) {
    return InvalidArgumentError("alert on subject " + QuoteForMessage(subject) +
                                ": expected sentineld.alerts.<host_id>");
  }
  ReceivedAlert a;
  a.host_id = std::string(subject.substr(kAlertPrefix.size()));
  a.stream_seq = stream_seq;
  const std::string where = "alert " + std::to_string(stream_seq) + " of host " + a.host_id;
  if (data.size() > kMaxAlertBytes) {
    return InvalidArgumentError(where + ": " + std::to_string(data.size()) + " bytes, more than " +
                                std::to_string(kMaxAlertBytes));
  }
  ASSIGN_OR_RETURN(json body, ParseObject(data, where));
  ASSIGN_OR_RETURN(a.alert_id, AlertIdFromHeader(headers, a.host_id));
  if (a.alert_id.empty()) a.alert_id = Summarise(body).alert_id;
  if (a.alert_id.empty() || a.alert_id.size() > kMaxAlertIdBytes) {
    return InvalidArgumentError(where + ": no alert id (Nats-Msg-Id, \"id\" or finding_info.uid) of 1 to " +
                                std::to_string(kMaxAlertIdBytes) + " bytes");
  }
  a.body = std::string(data);
  return a;
}

Result<std::unique_ptr<ConsoleStore>> ConsoleStore::Open(const std::string& path, storage::OpenMode mode,
                                                         int64_t busy_timeout_ms) {
  ASSIGN_OR_RETURN(auto db, storage::OpenStore(storage::DatabaseKind::kFleet, {path, mode, busy_timeout_ms}));
  return std::unique_ptr<ConsoleStore>(new ConsoleStore(std::move(db)));
}

Result<bool> ConsoleStore::InsertAlert(const ReceivedAlert& a, int64_t now_ms) {
  const AlertSummary s = Summarise(json::parse(a.body, nullptr, false));
  // host_seq: one more than the host's last; the UNIQUE key makes a second
  // delivery a no-op (changes() == 0) before any number is taken.
  ASSIGN_OR_RETURN(
      auto st, db_->PrepareCached(
                   "INSERT INTO alerts(host_id, alert_id, host_seq, stream_seq, received_at_ms, alert_time,"
                   " rule_id, severity, title, body)"
                   " SELECT ?1, ?2, COALESCE((SELECT MAX(host_seq) FROM alerts WHERE host_id = ?1), 0) + 1,"
                   " ?3, ?4, ?5, ?6, ?7, ?8, ?9"
                   " ON CONFLICT(host_id, alert_id) DO NOTHING"));
  RETURN_IF_ERROR(st.BindText(1, a.host_id));
  RETURN_IF_ERROR(st.BindText(2, a.alert_id));
  RETURN_IF_ERROR(st.BindInt(3, static_cast<int64_t>(a.stream_seq)));
  RETURN_IF_ERROR(st.BindInt(4, now_ms));
  RETURN_IF_ERROR(st.BindOptionalInt(5, s.alert_time));
  RETURN_IF_ERROR(st.BindText(6, s.rule_id));
  RETURN_IF_ERROR(st.BindText(7, s.severity));
  RETURN_IF_ERROR(st.BindText(8, s.title));
  RETURN_IF_ERROR(st.BindText(9, a.body));
  RETURN_IF_ERROR(st.Run());
  return db_->Changes() > 0;
}

Result<int64_t> ConsoleStore::AddAlerts(std::span<const ReceivedAlert> alerts, int64_t now_ms) {
  ASSIGN_OR_RETURN(auto tx, storage::Transaction::Begin(*db_));
  int64_t added = 0;
  for (const ReceivedAlert& a : alerts) {
    ASSIGN_OR_RETURN(bool inserted, InsertAlert(a, now_ms));
    if (inserted) ++added;
  }
  RETURN_IF_ERROR(tx.Commit());
  return added;
}

Status ConsoleStore::PutHeartbeat(const std::string& host_id, std::string_view value, uint64_t revision,
                                  int64_t now_ms) {
  ASSIGN_OR_RETURN(HostRow h, HostRowFromHeartbeat(host_id, value, now_ms));
  ASSIGN_OR_RETURN(
      auto st,
      db_->PrepareCached(
          "INSERT INTO hosts(host_id, hostname, version, health, last_scan, rules_count, rules_checksum,"
          " bundle, sent_at, revision, seen_at_ms, heartbeat)"
          " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
          " ON CONFLICT(host_id) DO UPDATE SET hostname = excluded.hostname, version = excluded.version,"
          " health = excluded.health, last_scan = excluded.last_scan, rules_count = excluded.rules_count,"
          " rules_checksum = excluded.rules_checksum, bundle = excluded.bundle, sent_at = excluded.sent_at,"
          " revision = excluded.revision, seen_at_ms = excluded.seen_at_ms, heartbeat = excluded.heartbeat"
          " WHERE hosts.sent_at IS NULL OR excluded.sent_at > hosts.sent_at"
          " OR (excluded.sent_at = hosts.sent_at AND excluded.revision IS NOT hosts.revision)"));
  RETURN_IF_ERROR(st.BindText(1, h.host_id));
  RETURN_IF_ERROR(st.BindText(2, h.hostname));
  RETURN_IF_ERROR(st.BindText(3, h.version));
  RETURN_IF_ERROR(st.BindText(4, h.health));
  RETURN_IF_ERROR(st.BindText(5, h.last_scan));
  RETURN_IF_ERROR(st.BindOptionalInt(6, h.rules_count));
  RETURN_IF_ERROR(st.BindText(7, h.rules_checksum));
  RETURN_IF_ERROR(st.BindText(8, h.bundle));
  RETURN_IF_ERROR(st.BindOptionalInt(9, h.sent_at));
  RETURN_IF_ERROR(st.BindInt(10, static_cast<int64_t>(revision)));
  RETURN_IF_ERROR(st.BindInt(11, now_ms));
  RETURN_IF_ERROR(st.BindText(12, h.heartbeat));
  return st.Run();
}

Result<std::vector<StoredAlert>> ConsoleStore::ListAlerts(const AlertFilter& filter) {
  std::string sql = "SELECT " + std::string(kAlertColumns) + " FROM alerts WHERE 1";
  if (!filter.host_id.empty()) sql += " AND host_id = :host";
  if (filter.since_ms) sql += " AND COALESCE(alert_time, received_at_ms) >= :since";
  sql += " ORDER BY id DESC";
  if (filter.limit) sql += " LIMIT " + std::to_string(*filter.limit);
  ASSIGN_OR_RETURN(auto st, db_->Prepare(sql));
  if (!filter.host_id.empty()) RETURN_IF_ERROR(st.BindText(st.ParameterIndex(":host"), filter.host_id));
  if (filter.since_ms) RETURN_IF_ERROR(st.BindInt(st.ParameterIndex(":since"), *filter.since_ms));
  return CollectAlerts(st);
}

Result<StoredAlert> ConsoleStore::GetAlert(int64_t id) {
  ASSIGN_OR_RETURN(auto st,
                   db_->Prepare("SELECT " + std::string(kAlertColumns) + " FROM alerts WHERE id = ?"));
  RETURN_IF_ERROR(st.BindInt(1, id));
  ASSIGN_OR_RETURN(auto found, CollectAlerts(st));
  if (found.empty()) return NotFoundError("no alert " + std::to_string(id) + " in " + db_->path());
  return std::move(found.front());
}

Result<StoredAlert> ConsoleStore::GetHostAlert(const std::string& host_id, const std::string& alert_id) {
  ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT " + std::string(kAlertColumns) +
                                         " FROM alerts WHERE host_id = ? AND alert_id = ?"));
  RETURN_IF_ERROR(st.BindText(1, host_id));
  RETURN_IF_ERROR(st.BindText(2, alert_id));
  ASSIGN_OR_RETURN(auto found, CollectAlerts(st));
  if (found.empty()) {
    return NotFoundError("no alert " + QuoteForMessage(alert_id) + " of host " + QuoteForMessage(host_id) +
                         " in " + db_->path());
  }
  return std::move(found.front());
}

Result<std::vector<HostRow>> ConsoleStore::ListHosts() {
  ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT host_id, hostname, version, health, last_scan, rules_count,"
                                         " rules_checksum, bundle, sent_at, seen_at_ms, heartbeat"
                                         " FROM hosts ORDER BY host_id"));
  std::vector<HostRow> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    HostRow h;
    h.host_id = st.ColumnText(0);
    h.hostname = st.ColumnText(1);
    h.version = st.ColumnText(2);
    h.health = st.ColumnText(3);
    h.last_scan = st.ColumnText(4);
    h.rules_count = st.ColumnOptionalInt(5);
    h.rules_checksum = st.ColumnText(6);
    h.bundle = st.ColumnText(7);
    h.sent_at = st.ColumnOptionalInt(8);
    h.seen_at_ms = st.ColumnInt(9);
    h.heartbeat = st.ColumnText(10);
    out.push_back(std::move(h));
  }
  return out;
}

Result<int64_t> ConsoleStore::ApplyRetention(int64_t now_ms, int64_t retention_days, int64_t chunk_rows) {
  if (retention_days < 1) return InvalidArgumentError("console alert retention must be >= 1 day");
  const int64_t cutoff = now_ms - retention_days * 86'400'000;
  return storage::DeleteInChunks(
      *db_,
      "DELETE FROM alerts WHERE id IN (SELECT a.id FROM alerts a"
      " WHERE a.received_at_ms < ?1"
      " AND a.host_seq < (SELECT MAX(b.host_seq) FROM alerts b WHERE b.host_id = a.host_id)"
      " LIMIT ?2)",
      cutoff, chunk_rows);
}

Result<std::vector<std::string>> ConsoleStore::ExpiredHosts(int64_t now_ms, int64_t expiry_days) {
  if (expiry_days < 1) return InvalidArgumentError("host expiry must be >= 1 day");
  ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT host_id FROM hosts WHERE seen_at_ms < ? ORDER BY host_id"));
  RETURN_IF_ERROR(st.BindInt(1, now_ms - expiry_days * 86'400'000));
  std::vector<std::string> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(st.ColumnText(0));
  }
  return out;
}

Result<bool> ConsoleStore::ForgetHost(const std::string& host_id, int64_t seen_before_ms) {
  ASSIGN_OR_RETURN(auto st, db_->Prepare("DELETE FROM hosts WHERE host_id = ? AND seen_at_ms < ?"));
  RETURN_IF_ERROR(st.BindText(1, host_id));
  RETURN_IF_ERROR(st.BindInt(2, seen_before_ms));
  RETURN_IF_ERROR(st.Run());
  return db_->Changes() > 0;
}

}  // namespace sentinel::console
