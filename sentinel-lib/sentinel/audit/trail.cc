#include "sentinel/audit/trail.h"

#include <atomic>
#include <vector>

#include "sentinel/base/files.h"
#include "sentinel/base/time.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::audit {

namespace {
std::atomic<int64_t> g_dropped_total{0};
}  // namespace

int64_t AuditEntriesDroppedTotal() {
  return g_dropped_total.load(std::memory_order_relaxed);
}

Result<std::unique_ptr<AuditTrail>> AuditTrail::Open(std::string actor, const LedgerOptions& options,
                                                     std::size_t max_pending) {
  if (max_pending == 0) return InvalidArgumentError("audit trail: max_pending must be at least 1");
  ASSIGN_OR_RETURN(auto ledger, AuditLedger::Open(options));
  return std::unique_ptr<AuditTrail>(new AuditTrail(std::move(actor), std::move(ledger), max_pending));
}

Result<std::unique_ptr<AuditTrail>> AuditTrail::OpenForComponent(std::string actor, const std::string& path,
                                                                 int64_t busy_timeout_ms,
                                                                 const std::string& signing_key_file) {
  LedgerOptions options;
  options.path = path;
  options.busy_timeout_ms = busy_timeout_ms;
  if (!signing_key_file.empty()) {
    auto signer = Signer::LoadPrivateKeyFile(signing_key_file);
    if (!signer.ok()) {
      if (IsRefusedPath(signer.status())) return signer.status();  // a planted link: not a config error
      return InvalidArgumentError("database.audit_signing_key: " + signer.status().message());
    }
    options.signer = std::shared_ptr<const Signer>(std::move(*signer));
  }
  return Open(std::move(actor), options);
}

std::unique_ptr<AuditTrail> AuditTrail::Disabled(std::string actor, std::string reason) {
  telemetry::LogError("audit ledger unavailable: security events are not recorded",
                      {{"actor", actor}, {"reason", reason}});
  return std::unique_ptr<AuditTrail>(new AuditTrail(std::move(actor), nullptr, kDefaultMaxPending));
}

std::unique_ptr<AuditTrail> AuditTrail::Forwarding(std::string actor, Forwarder forward) {
  auto trail = std::unique_ptr<AuditTrail>(new AuditTrail(std::move(actor), nullptr, kDefaultMaxPending));
  trail->forward_ = std::move(forward);
  return trail;
}

bool AuditTrail::Flush() {
  if (pending_.empty() && unreported_dropped_ == 0) return true;
  std::vector<AuditEvent> batch;
  batch.reserve(pending_.size() + 1);
  if (unreported_dropped_ > 0) {
    // The gap goes into the ledger first, in the same transaction as what was kept after it.
    auto text = CanonicalEventData({{"count", unreported_dropped_},
                                    {"first_dropped_ms", first_dropped_ms_},
                                    {"last_dropped_ms", last_dropped_ms_},
                                    {"max_pending", max_pending_}});
    if (text.ok()) batch.push_back({actor_, "audit_entries_dropped", std::move(*text)});
  }
  batch.insert(batch.end(), pending_.begin(), pending_.end());
  int64_t first_sequence = 0;
  Status appended = Status::Ok();
  if (ledger_) {
    auto r = ledger_->AppendBatch(batch);
    if (r.ok()) first_sequence = r->first_sequence;
    appended = r.status();
  } else {
    appended = forward_(batch);
  }
  if (!appended.ok()) {
    ++failures_;
    telemetry::LogError("audit append failed; will retry",
                        {{"actor", actor_}, {"pending", pending_.size()}, {"error", appended.message()}});
    return false;
  }
  recorded_ += static_cast<int64_t>(pending_.size());
  pending_.clear();
  if (unreported_dropped_ > 0) {
    telemetry::LogWarn(
        "audit ledger writable again; the dropped entries are recorded as audit_entries_dropped",
        {{"actor", actor_}, {"dropped", unreported_dropped_}, {"sequence", first_sequence}});
    unreported_dropped_ = 0;
  }
  return true;
}

void AuditTrail::Record(const std::string& action, const nlohmann::json& data) {
  if (!enabled()) return;
  // The backlog first (one attempt, as before): a ledger that is writable again drops nothing more.
  const bool writable = pending_.empty() && unreported_dropped_ == 0 ? true : Flush();
  Queue(action, data);
  if (writable) Flush();
}

void AuditTrail::RecordMany(const std::vector<std::pair<std::string, nlohmann::json>>& entries) {
  if (!enabled() || entries.empty()) return;
  const bool writable = pending_.empty() && unreported_dropped_ == 0 ? true : Flush();
  for (const auto& [action, data] : entries) Queue(action, data);
  if (writable) Flush();
}

void AuditTrail::Queue(const std::string& action, const nlohmann::json& data) {
  auto text = CanonicalEventData(data);
  if (!text.ok()) {
    // Invalid UTF-8 from a hostile name: keep the event, invalid bytes replaced.
    text = CanonicalEventData(
        nlohmann::json{{"unencodable", data.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace)}});
    if (!text.ok()) return;
  }
  if (pending_.size() >= max_pending_) {
    pending_.pop_front();
    ++dropped_;
    g_dropped_total.fetch_add(1, std::memory_order_relaxed);
    const int64_t now = NowMs();
    if (unreported_dropped_++ == 0) {
      // Once per episode: until an append succeeds again (and records the count).
      first_dropped_ms_ = now;
      telemetry::LogError(
          "audit backlog full: dropping the oldest unrecorded entries until the ledger "
          "can be written; their count will be recorded as audit_entries_dropped",
          {{"actor", actor_}, {"max_pending", max_pending_}, {"dropped_total", dropped_}});
    }
    last_dropped_ms_ = now;
  }
  pending_.push_back({actor_, action, std::move(*text)});
}

}  // namespace sentinel::audit
