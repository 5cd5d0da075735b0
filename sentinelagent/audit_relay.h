// The agent's "audit-append" control command: how sentinelcli's actions
// reach a signed audit ledger without the operator's CLI holding the key
// (docs/audit-format.md, "Entries from sentinelcli"; decisions.md).
//
// sentinelcli sends {"cmd": "audit-append", "args": {"entries": [{"action":
// A, "data": {...}}, ...]}} over agent.sock (peers: root, the agent's user,
// the collector's user). The agent appends each entry as actor
// "sentinelcli", signed with its own key when database.audit_signing_key is
// set, with "uid" and "pid" in the data replaced by the peer's credentials
// from SO_PEERCRED (what the client claims is not trusted) and "via":
// "sentinelagent". Only the CLI's actions are accepted (kCliAuditActions),
// at most 16 entries per request. {"args": {"check": true}} opens the ledger
// with the agent's key and appends nothing: sentinelcli asks it before it
// acts on a signed ledger.
//
// Thread-safety: Handle() may be called from the control thread while the
// agent's own trail appends from others (separate connections; the ledger
// serialises appends).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sentinel/audit/signer.h"
#include "sentinel/base/status.h"
#include "sentinel/config/config.h"
#include "sentinel/ipc/frame.h"

namespace sentinel::agent {

inline constexpr std::string_view kAuditAppendCommand = "audit-append";
inline constexpr size_t kMaxRelayedEntries = 16;

// The actions sentinelcli records (SPEC §8).
bool IsCliAuditAction(std::string_view action);

class CliAuditRelay {
 public:
  // `signer` is the key the agent loaded at start-up, before its privilege
  // drop (the agent's user cannot read a root-owned 0600 key afterwards); it
  // is null when database.audit_signing_key is not set or could not be read,
  // and then every request on a signed ledger fails naming the key.
  CliAuditRelay(const config::DatabaseConfig& db, std::shared_ptr<const audit::Signer> signer);

  Result<nlohmann::json> Handle(const ipc::Request& request) const;

 private:
  config::DatabaseConfig db_;
  std::shared_ptr<const audit::Signer> signer_;
  Status signer_status_ = Status::Ok();
};

}  // namespace sentinel::agent
