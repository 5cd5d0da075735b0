#include "sentinelagent/audit_relay.h"

#include <vector>

#include "sentinel/audit/ledger.h"
#include "sentinel/telemetry/log.h"

namespace sentinel::agent {

bool IsCliAuditAction(std::string_view action) {
  static constexpr std::string_view kActions[] = {"query_executed", "query_rejected",       "rule_enabled",
                                                  "rule_disabled",  "bundle_imported",      "bundle_refused",
                                                  "dlq_retry",      "audit_entries_dropped"};
  for (std::string_view a : kActions) {
    if (a == action) return true;
  }
  return false;
}

CliAuditRelay::CliAuditRelay(const config::DatabaseConfig& db, std::shared_ptr<const audit::Signer> signer)
    : db_(db), signer_(std::move(signer)) {
  if (!db_.audit_signing_key.empty() && !signer_) {
    signer_status_ = FailedPreconditionError("database.audit_signing_key: " + db_.audit_signing_key +
                                             " was not loaded at start-up");
  }
}

Result<nlohmann::json> CliAuditRelay::Handle(const ipc::Request& request) const {
  RETURN_IF_ERROR(signer_status_);
  const nlohmann::json& args = request.args;
  if (!args.is_object()) return InvalidArgumentError("audit-append: expected \"args\" with \"entries\"");
  const bool check = args.value("check", false);
  std::vector<audit::AuditEvent> events;
  if (!check) {
    auto entries = args.find("entries");
    if (entries == args.end() || !entries->is_array() || entries->empty() ||
        entries->size() > kMaxRelayedEntries) {
      return InvalidArgumentError("audit-append: \"entries\" must be a list of 1 to " +
                                  std::to_string(kMaxRelayedEntries) + " entries");
    }
    for (const nlohmann::json& e : *entries) {
      if (!e.is_object()) return InvalidArgumentError("audit-append: an entry must be an object");
      auto action = e.find("action");
      auto data = e.find("data");
      if (action == e.end() || !action->is_string() || !IsCliAuditAction(action->get<std::string>())) {
        return InvalidArgumentError(
            "audit-append: action must be one of sentinelcli's (query_executed, "
            "query_rejected, rule_enabled, rule_disabled, bundle_imported, bundle_refused, dlq_retry, "
            "audit_entries_dropped)");
      }
      nlohmann::json d = data == e.end() || data->is_null() ? nlohmann::json::object() : *data;
      if (!d.is_object()) return InvalidArgumentError("audit-append: data must be an object");
      // Who asked is what the kernel says, not what the payload claims.
      d["uid"] = request.peer_uid;
      d["pid"] = request.peer_pid;
      d["via"] = "sentinelagent";
      ASSIGN_OR_RETURN(std::string text, audit::CanonicalEventData(d));
      events.push_back({"sentinelcli", action->get<std::string>(), std::move(text)});
    }
  }
  audit::LedgerOptions o;
  o.path = db_.audit_path;
  o.busy_timeout_ms = db_.busy_timeout_ms;
  o.signer = signer_;
  ASSIGN_OR_RETURN(auto ledger, audit::AuditLedger::Open(o));
  ASSIGN_OR_RETURN(std::string recorded_key, audit::RecordedPublicKeyHex(ledger->db()));
  if (!recorded_key.empty() && signer_ == nullptr) {
    return FailedPreconditionError("audit ledger " + db_.audit_path +
                                   " is signed and this agent has no database.audit_signing_key");
  }
  if (check) return nlohmann::json{{"appended", 0}, {"signed", !recorded_key.empty()}};
  ASSIGN_OR_RETURN(audit::Appended a, ledger->AppendBatch(events));
  telemetry::LogInfo("audit entries appended for sentinelcli", {{"uid", request.peer_uid},
                                                                {"pid", request.peer_pid},
                                                                {"first_sequence", a.first_sequence},
                                                                {"count", events.size()}});
  return nlohmann::json{{"appended", events.size()},
                        {"first_sequence", a.first_sequence},
                        {"last_sequence", a.last_sequence},
                        {"signed", !recorded_key.empty()}};
}

}  // namespace sentinel::agent
