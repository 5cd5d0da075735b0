// Test helper: one writer process for the audit concurrency test.
//
//   audit_append_helper DB ACTOR COUNT BATCH GO_FILE
//
// Waits (up to 20 s) until GO_FILE exists so all writers start together,
// then appends COUNT entries as ACTOR with event_data {"n": k} for k = 0..
// COUNT-1, alternating single appends and batches of BATCH entries. Exit 0
// on success, 1 with the error on stderr.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sentinel/audit/ledger.h"

int main(int argc, char** argv) {
  using namespace sentinel;
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s DB ACTOR COUNT BATCH GO_FILE\n", argv[0]);
    return 2;
  }
  const std::string db = argv[1];
  const std::string actor = argv[2];
  const int count = std::atoi(argv[3]);
  const int batch = std::atoi(argv[4]);
  const std::string go = argv[5];
  if (count < 0 || batch < 1) return 2;

  for (int waited = 0; access(go.c_str(), F_OK) != 0; ++waited) {
    if (waited > 20000) {
      std::fprintf(stderr, "%s: timed out waiting for %s\n", actor.c_str(), go.c_str());
      return 1;
    }
    usleep(1000);
  }

  audit::LedgerOptions opts;
  opts.path = db;
  opts.busy_timeout_ms = 30000;  // four writers on two shared cores
  auto ledger = audit::AuditLedger::Open(opts);
  if (!ledger.ok()) {
    std::fprintf(stderr, "%s: %s\n", actor.c_str(), ledger.status().ToString().c_str());
    return 1;
  }
  int n = 0;
  bool single = true;
  while (n < count) {
    Status s;
    if (single) {
      auto r = (*ledger)->Append(actor, "test.append", nlohmann::json{{"n", n}});
      s = r.status();
      ++n;
    } else {
      std::vector<audit::AuditEvent> events;
      for (int i = 0; i < batch && n < count; ++i, ++n) {
        events.push_back({actor, "test.batch", nlohmann::json{{"n", n}}.dump()});
      }
      auto r = (*ledger)->AppendBatch(events);
      s = r.status();
    }
    if (!s.ok()) {
      std::fprintf(stderr, "%s: append %d: %s\n", actor.c_str(), n, s.ToString().c_str());
      return 1;
    }
    single = !single;
  }
  return 0;
}
