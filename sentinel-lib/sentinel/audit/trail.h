// AuditTrail: how a component records its security-relevant steps in the
// audit ledger (SPEC §8) without letting a ledger problem stop its real work.
//
// Record() appends one entry (actor = the component) and never throws or
// fails the caller: a failed append is logged as an error, counted, and the
// entry is kept in memory (bounded) and retried before the next append, so
// a briefly locked ledger loses nothing. A trail that could not be opened
// records nothing and says so once.
//
// When the ledger stays unwritable until `max_pending` entries wait, the
// oldest are dropped: counted (dropped(), and process-wide
// AuditEntriesDroppedTotal() for stats and /metrics), logged once per
// episode with the count, and — as soon as an append succeeds again — an
// `audit_entries_dropped` entry {"count": N, "first_dropped_ms",
// "last_dropped_ms"} goes into the ledger ahead of the entries that were
// kept, so the gap is in the ledger itself.
//
// Action names used by SentinelD: component_start, component_stop,
// config_loaded, privileges_dropped, privileges_not_dropped, rule_loaded,
// rule_changed, rule_rejected, rule_enabled, rule_disabled, alert_created,
// alert_dead_lettered, dlq_retry, query_executed, query_rejected,
// bundle_imported, bundle_refused, audit_entries_dropped; with the fleet
// (docs/fleet.md): fleet_query_executed, fleet_query_refused,
// fleet_bundle_applied, fleet_bundle_refused.
//
// Not thread-safe: one thread records through one trail.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sentinel/audit/ledger.h"
#include "sentinel/base/status.h"

namespace sentinel::audit {

class AuditTrail {
 public:
  static constexpr std::size_t kDefaultMaxPending = 10'000;
  // An open trail appending to `options.path` as `actor`, keeping at most
  // `max_pending` (>= 1) unrecorded entries.
  static Result<std::unique_ptr<AuditTrail>> Open(std::string actor, const LedgerOptions& options,
                                                  std::size_t max_pending = kDefaultMaxPending);
  // Open() for a component: with `signing_key_file` non-empty the entries are
  // signed with that Ed25519 key (Signer::LoadPrivateKeyFile refuses a key
  // readable by others). A key problem is InvalidArgument naming the file —
  // a configuration error — except a symbolic link at the key, refused as
  // FailedPrecondition (IsRefusedPath); other errors are those of AuditLedger::Open.
  static Result<std::unique_ptr<AuditTrail>> OpenForComponent(std::string actor, const std::string& path,
                                                              int64_t busy_timeout_ms,
                                                              const std::string& signing_key_file);
  // A trail that records nothing (the ledger could not be opened).
  static std::unique_ptr<AuditTrail> Disabled(std::string actor, std::string reason);
  // A trail whose entries another process appends: sentinelcli hands them to the agent, which
  // signs them (docs/audit-format.md). `forward` gets each batch and says whether it was appended;
  // failures are kept and retried like a locked ledger.
  using Forwarder = std::function<Status(std::span<const AuditEvent>)>;
  static std::unique_ptr<AuditTrail> Forwarding(std::string actor, Forwarder forward);

  void Record(const std::string& action, const nlohmann::json& data);
  // Several entries in one append (one transaction).
  void RecordMany(const std::vector<std::pair<std::string, nlohmann::json>>& entries);

  bool enabled() const { return ledger_ != nullptr || forward_ != nullptr; }
  int64_t failures() const { return failures_; }
  int64_t recorded() const { return recorded_; }
  // Entries dropped because the backlog was full, since the trail opened.
  int64_t dropped() const { return dropped_; }
  // Dropped entries not yet reported by an audit_entries_dropped entry.
  int64_t dropped_unreported() const { return unreported_dropped_; }
  AuditLedger* ledger() { return ledger_.get(); }

 private:
  AuditTrail(std::string actor, std::unique_ptr<AuditLedger> ledger, std::size_t max_pending)
      : actor_(std::move(actor)), ledger_(std::move(ledger)), max_pending_(max_pending) {}
  bool Flush();
  void Queue(const std::string& action, const nlohmann::json& data);

  std::string actor_;
  std::unique_ptr<AuditLedger> ledger_;
  Forwarder forward_;
  std::size_t max_pending_;
  std::deque<AuditEvent> pending_;
  int64_t failures_ = 0;
  int64_t recorded_ = 0;
  int64_t dropped_ = 0;
  int64_t unreported_dropped_ = 0;  // since the last audit_entries_dropped entry
  int64_t first_dropped_ms_ = 0, last_dropped_ms_ = 0;
};

// Entries dropped by every AuditTrail of this process (thread-safe).
int64_t AuditEntriesDroppedTotal();

}  // namespace sentinel::audit
