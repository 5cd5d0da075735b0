#include "sentinel/audit/trail.h"

#include <vector>

#include "sentinel/base/files.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::audit {

Result<std::unique_ptr<AuditTrail>> AuditTrail::Open(std::string actor, const LedgerOptions& options) {
  ASSIGN_OR_RETURN(auto ledger, AuditLedger::Open(options));
  return std::unique_ptr<AuditTrail>(new AuditTrail(std::move(actor), std::move(ledger)));
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
  return std::unique_ptr<AuditTrail>(new AuditTrail(std::move(actor), nullptr));
}

bool AuditTrail::Flush() {
  if (pending_.empty()) return true;
  std::vector<AuditEvent> batch(pending_.begin(), pending_.end());
  auto r = ledger_->AppendBatch(batch);
  if (!r.ok()) {
    ++failures_;
    telemetry::LogError("audit append failed; will retry",
                        {{"actor", actor_}, {"pending", pending_.size()}, {"error", r.status().message()}});
    return false;
  }
  recorded_ += static_cast<int64_t>(batch.size());
  pending_.clear();
  return true;
}

void AuditTrail::Record(const std::string& action, const nlohmann::json& data) {
  if (!ledger_) return;
  Queue(action, data);
  Flush();
}

void AuditTrail::RecordMany(const std::vector<std::pair<std::string, nlohmann::json>>& entries) {
  if (!ledger_ || entries.empty()) return;
  for (const auto& [action, data] : entries) Queue(action, data);
  Flush();
}

void AuditTrail::Queue(const std::string& action, const nlohmann::json& data) {
  auto text = CanonicalEventData(data);
  if (!text.ok()) {
    // Invalid UTF-8 from a hostile name: keep the event, invalid bytes replaced.
    text = CanonicalEventData(
        nlohmann::json{{"unencodable", data.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace)}});
    if (!text.ok()) return;
  }
  if (pending_.size() >= kMaxPending) {
    pending_.pop_front();
    ++dropped_;
    telemetry::LogError("audit backlog full: oldest unrecorded entry dropped",
                        {{"actor", actor_}, {"dropped", dropped_}});
  }
  pending_.push_back({actor_, action, std::move(*text)});
}

}  // namespace sentinel::audit
