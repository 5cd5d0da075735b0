#include "sentinel/config/internal/feature_checks.h"

namespace sentinel::config::internal {

std::vector<FeatureUse> FeatureUses(const Config& config) {
  std::vector<FeatureUse> uses;
  const auto& sinks = config.alerting.sinks;
  for (size_t i = 0; i < sinks.size(); ++i) {
    const std::string path = "alerting.sinks[" + std::to_string(i) + "].type";
    const std::string& type = sinks[i].type;
    if (type == "webhook") uses.push_back({path, Feature::kWebhook, "a webhook sink"});
    if (type == "email") uses.push_back({path, Feature::kEmail, "an email sink"});
    if (type == "nats") uses.push_back({path, Feature::kFleet, "a nats sink"});
  }
  if (!config.database.audit_signing_key.empty()) {
    uses.push_back({"database.audit_signing_key", Feature::kAuditSigning, "signing the audit ledger"});
  }
  if (config.collection.realtime_source == "ebpf") {
    uses.push_back({"collection.realtime_source", Feature::kEbpf, "the eBPF real-time source"});
  }
  if (config.collection.scan_source == "ebpf") {
    uses.push_back({"collection.scan_source", Feature::kEbpf, "the eBPF scan source"});
  }
  if (!config.telemetry.http_listen.empty()) {
    uses.push_back(
        {"telemetry.http_listen", Feature::kHttp, "the HTTP endpoint (web UI, /metrics, /health)"});
  }
  if (!config.fleet.servers.empty()) uses.push_back({"fleet.servers", Feature::kFleet, "the fleet"});
  if (!config.fleet.trusted_keys.empty()) {
    uses.push_back({"fleet.trusted_keys", Feature::kFleet, "signed fleet queries and rule bundles"});
  }
  if (!config.console.signing_key.empty()) {
    uses.push_back({"console.signing_key", Feature::kFleet, "the fleet console (sentinelfleet)"});
  }
  if (!config.console.http_listen.empty()) {
    uses.push_back({"console.http_listen", Feature::kHttp, "the console's web UI"});
  }
  return uses;
}

std::optional<FeatureUse> FirstMissingFeature(const Config& config, bool (*built)(Feature)) {
  for (FeatureUse& use : FeatureUses(config)) {
    if (!built(use.feature)) return std::move(use);
  }
  return std::nullopt;
}

}  // namespace sentinel::config::internal
