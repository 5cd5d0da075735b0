#include "sentinel/health/health.h"

#include <array>
#include <chrono>
#include <optional>
#include <thread>

#include "sentinel/audit/ledger.h"
#include "sentinel/base/features.h"
#include "sentinel/crypto/hex.h"
#include "sentinel/ipc/control_socket.h"
#include "sentinel/storage/store.h"

namespace sentinel::health {

namespace {

std::string Secs(int64_t ms) {
  return std::to_string(ms / 1000) + " s";
}

bool ParseDigest(const std::string& hex, crypto::Blake3Digest* out) {
  auto bytes = crypto::FromHex(hex);
  if (!bytes || bytes->size() != out->size()) return false;
  std::copy(bytes->begin(), bytes->end(), out->begin());
  return true;
}

// A read-only open can fail for a moment while a writer closes or
// checkpoints the WAL ("disk I/O error"); a health check must not report
// that blip as an unhealthy store, so it tries three times, 100 ms apart.
Result<std::unique_ptr<storage::Database>> OpenForCheck(storage::DatabaseKind kind, const std::string& path,
                                                        int64_t busy_timeout_ms) {
  for (int attempt = 1;; ++attempt) {
    auto db = storage::OpenStore(kind, {path, storage::OpenMode::kReadOnly, busy_timeout_ms});
    if (db.ok() || attempt == 3 || db.status().code() == StatusCode::kNotFound) return db;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

bool HealthReport::healthy() const {
  for (const auto& c : components)
    if (c.status != "ok") return false;
  return !components.empty();
}

std::vector<FeatureState> BuildFeatures() {
  std::vector<FeatureState> out;
  for (const FeatureInfo& f : kFeatures) out.push_back({std::string(f.name), f.built});
  return out;
}

nlohmann::ordered_json HealthToJson(const HealthReport& report) {
  nlohmann::ordered_json j;
  j["status"] = report.healthy() ? "healthy" : "unhealthy";
  j["source"] = report.source;
  j["generated_at_ms"] = report.generated_at_ms;
  nlohmann::ordered_json comps = nlohmann::ordered_json::array();
  for (const auto& c : report.components) {
    comps.push_back({{"name", c.name}, {"status", c.status}, {"detail", c.detail}});
  }
  j["components"] = std::move(comps);
  nlohmann::ordered_json features = nlohmann::ordered_json::object();
  for (const auto& f : report.features) features[f.name] = f.built;
  j["features"] = std::move(features);
  return j;
}

Result<HealthReport> HealthFromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("components") || !j["components"].is_array()) {
    return DataLossError("health reply has no \"components\" array");
  }
  HealthReport r;
  r.source = j.value("source", "");
  if (j.contains("generated_at_ms") && j["generated_at_ms"].is_number_integer())
    r.generated_at_ms = j["generated_at_ms"].get<int64_t>();
  for (const auto& c : j["components"]) {
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string() || !c.contains("status") ||
        !c["status"].is_string()) {
      return DataLossError("health reply has a component without a name or status");
    }
    ComponentHealth h{c["name"].get<std::string>(), c["status"].get<std::string>(), ""};
    if (c.contains("detail") && c["detail"].is_string()) h.detail = c["detail"].get<std::string>();
    r.components.push_back(std::move(h));
  }
  if (j.contains("features") && j["features"].is_object()) {
    // The features this build knows, in its order (JSON objects keep none); other names are
    // not shown (nothing from the reply reaches a terminal unchecked).
    r.features.clear();
    for (const FeatureInfo& f : kFeatures) {
      auto it = j["features"].find(std::string(f.name));
      if (it != j["features"].end() && it->is_boolean()) {
        r.features.push_back({std::string(f.name), it->get<bool>()});
      }
    }
  }
  return r;
}

namespace {

// procmond answered: it judges its own write paths (docs/operations.md "Health").
ComponentHealth CollectorFromReply(const nlohmann::json& reply) {
  ComponentHealth h{"collector", "ok", "procmond answering"};
  const auto& res = reply["result"];
  if (!res.is_object()) return h;
  if (res.contains("pid")) h.detail += " (pid " + res["pid"].dump() + ")";
  if (res.value("status", "ok") == "ok") return h;
  h.status = "unhealthy";
  std::string problems;
  if (auto p = res.find("problems"); p != res.end() && p->is_array()) {
    for (const auto& item : *p) {
      if (item.is_string()) problems += (problems.empty() ? "" : "; ") + item.get<std::string>();
    }
  }
  h.detail += ": " + (problems.empty() ? std::string("reports itself unhealthy") : problems);
  return h;
}

// procmond did not answer (`why`): judged by the age of the last completed scan.
ComponentHealth CollectorFromScanAge(const config::Config& cfg, const std::string& why, int64_t now_ms) {
  ComponentHealth h{"collector", "unhealthy", ""};
  const int64_t limit_ms = static_cast<int64_t>(kScanAgeFactor * cfg.collection.interval_secs * 1000);
  auto db = OpenForCheck(storage::DatabaseKind::kEvents, cfg.database.path, cfg.database.busy_timeout_ms);
  if (!db.ok()) {
    h.detail = why + "; no scan age either: " + db.status().message();
    return h;
  }
  auto last = (*db)->QueryInt("SELECT MAX(completed_at_ms) FROM scan_metadata WHERE status = 'completed'");
  if (!last.ok() || !last->has_value()) {
    h.detail = why + "; no completed scan in " + cfg.database.path;
    return h;
  }
  const int64_t age = now_ms - **last;
  if (age < limit_ms) {
    h.status = "ok";
    h.detail = "last scan " + Secs(age) + " ago (limit " + Secs(limit_ms) + "); " + why;
  } else {
    h.detail = "last scan " + Secs(age) + " ago, older than " + Secs(limit_ms) +
               " (2.5 x collection.interval_secs); " + why;
  }
  return h;
}

}  // namespace

ComponentHealth CheckCollector(const config::Config& cfg, const Result<nlohmann::json>& procmond_health,
                               int64_t now_ms) {
  if (procmond_health.ok() && procmond_health->value("ok", false))
    return CollectorFromReply(*procmond_health);
  const std::string why =
      procmond_health.ok() ? "procmond answered with an error" : procmond_health.status().message();
  return CollectorFromScanAge(cfg, why, now_ms);
}

ComponentHealth CheckDatabase(const config::DatabaseConfig& dbc) {
  ComponentHealth h{"database", "unhealthy", ""};
  auto db = OpenForCheck(storage::DatabaseKind::kEvents, dbc.path, dbc.busy_timeout_ms);
  if (!db.ok()) {
    h.detail = db.status().message();
    return h;
  }
  auto version = storage::InspectSchema(**db, storage::DatabaseKind::kEvents);
  if (!version.ok()) {
    h.detail = version.status().message();
    return h;
  }
  const int latest = storage::LatestSchemaVersion(storage::DatabaseKind::kEvents);
  if (*version != latest) {
    h.detail =
        dbc.path + ": schema version " + std::to_string(*version) + ", expected " + std::to_string(latest);
    return h;
  }
  h.status = "ok";
  h.detail = dbc.path + ": schema version " + std::to_string(*version);
  return h;
}

namespace {

// Walks the ledger's tail in sequence order: each entry's hashes, and its
// link to the entry before it.
struct AuditTailWalk {
  int64_t checked = 0, first = 0, last = 0;
  std::optional<crypto::Blake3Digest> prev_entry;

  // What is wrong with the entry at the current row of `st` (columns of
  // CheckAuditTail's query), or nullopt when it verifies.
  std::optional<std::string> Check(storage::Statement& st) {
    const int64_t seq = st.ColumnInt(0);
    crypto::Blake3Digest payload{}, prev{}, entry{};
    if (!ParseDigest(st.ColumnText(5), &payload) || !ParseDigest(st.ColumnText(7), &entry) ||
        (!st.IsNull(6) && !ParseDigest(st.ColumnText(6), &prev))) {
      return "malformed hash";
    }
    if (audit::PayloadHash(st.ColumnText(4)) != payload) return "payload changed";
    if (prev_entry && seq != last + 1) return "entry missing before it";
    if (prev_entry && prev != *prev_entry) return "chain broken";
    if (audit::EntryHash(seq, st.ColumnInt(1), st.ColumnText(2), st.ColumnText(3), payload, prev) != entry) {
      return "entry changed";
    }
    prev_entry = entry;
    if (checked == 0) first = seq;
    last = seq;
    ++checked;
    return std::nullopt;
  }
};

}  // namespace

ComponentHealth CheckAuditTail(const config::DatabaseConfig& dbc, int entries) {
  ComponentHealth h{"audit", "unhealthy", ""};
  auto db = OpenForCheck(storage::DatabaseKind::kAudit, dbc.audit_path, dbc.busy_timeout_ms);
  if (!db.ok()) {
    h.detail = db.status().message();
    return h;
  }
  auto st = (*db)->Prepare(
      "SELECT sequence, timestamp, actor, action, event_data, payload_hash, prev_hash, entry_hash FROM"
      " (SELECT * FROM audit_ledger ORDER BY sequence DESC LIMIT ?1) ORDER BY sequence");
  if (!st.ok()) {
    h.detail = st.status().message();
    return h;
  }
  if (Status s = st->BindInt(1, entries); !s.ok()) {
    h.detail = s.message();
    return h;
  }
  AuditTailWalk walk;
  while (true) {
    auto row = st->Step();
    if (!row.ok()) {
      h.detail = row.status().message();
      return h;
    }
    if (!*row) break;
    if (auto problem = walk.Check(*st)) {
      h.detail = dbc.audit_path + ": sequence " + std::to_string(st->ColumnInt(0)) + ": " + *problem +
                 " (run sentinelcli audit verify)";
      return h;
    }
  }
  h.status = "ok";
  h.detail = walk.checked == 0 ? "empty ledger"
                               : "last " + std::to_string(walk.checked) + " entries verify (sequences " +
                                     std::to_string(walk.first) + ".." + std::to_string(walk.last) + ")";
  return h;
}

HealthReport OfflineReport(const config::Config& cfg, const std::string& agent_error, int64_t now_ms) {
  HealthReport r;
  r.source = "sentinelcli";
  r.generated_at_ms = now_ms;
  auto procmond = ipc::Call(ipc::SocketPath(cfg.ipc.socket_dir, ipc::kProcmondSocket), "health", 1000);
  r.components.push_back(CheckCollector(cfg, procmond, now_ms));
  r.components.push_back({"agent", "unhealthy", agent_error});
  r.components.push_back(CheckDatabase(cfg.database));
  for (const auto& s : cfg.alerting.sinks) {
    if (!s.enabled) continue;
    r.components.push_back({"sink:" + s.name, "unknown", "circuit state is known only to the running agent"});
  }
  r.components.push_back(CheckAuditTail(cfg.database));
  return r;
}

}  // namespace sentinel::health
