// Which settings need a build-time feature (sentinel/base/features.h), so that a configuration
// naming a feature this build lacks is refused at load, never silently ignored (config.h,
// docs/building.md "Build features"). Private to the config module. Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sentinel/base/features.h"
#include "sentinel/config/config.h"

namespace sentinel::config::internal {

// One setting that needs a feature: the key path as messages name it, the feature, and what the
// setting asks for ("a webhook sink").
struct FeatureUse {
  std::string path;  // "alerting.sinks[2].type", "telemetry.http_listen"
  Feature feature;
  std::string what;
};

// Every feature-dependent setting of `config`, in schema order:
//   alerting.sinks[i].type       webhook -> webhook, email -> email, nats -> fleet
//   database.audit_signing_key   set -> audit-signing
//   collection.realtime_source   ebpf -> ebpf;  collection.scan_source  ebpf -> ebpf
//   telemetry.http_listen        set -> http
//   fleet.servers, fleet.trusted_keys, console.signing_key   set -> fleet
std::vector<FeatureUse> FeatureUses(const Config& config);

// The first use whose feature `built` says is missing (the configuration's loader passes
// sentinel::Built; tests pass others).
std::optional<FeatureUse> FirstMissingFeature(const Config& config, bool (*built)(Feature));

}  // namespace sentinel::config::internal
