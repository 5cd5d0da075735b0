// Helpers of the alerting tests: a temporary event store with alerts in it,
// and polling. Test-only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"
#include "sentinel/testing/wait.h"

namespace sentinel::alerting::internal {

class TempEventStore {
 public:
  TempEventStore() : path_(dir_.File("events.db")) {
    auto s = storage::EventStore::Open({path_, storage::OpenMode::kReadWrite, 5000});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) store_ = std::move(s).value();
  }
  const std::string& path() const { return path_; }
  const testing::TempDir& dir() const { return dir_; }
  storage::Database& db() { return store_->db(); }
  storage::EventStore& store() { return *store_; }

  // Commits `n` alerts of `severity`, as a detection cycle would.
  void InsertAlerts(int n, const std::string& severity = "high") {
    Status s = db().Exec("WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " +
                         std::to_string(n) +
                         ") INSERT INTO alerts(alert_time, rule_id, title, severity, affected_processes, "
                         "process_count, raw_data, "
                         "dedup_key) SELECT 1700000000000, 'test-rule', 'Test alert', '" +
                         severity +
                         "', '[{\"pid\":' || i || ',\"name\":\"p\",\"exe_path\":\"/bin/p\"}]', 1, '{}', "
                         "hex(randomblob(8)) FROM k");
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  int64_t Count(const std::string& sql) {
    auto v = db().QueryInt(sql);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? v->value_or(-1) : -1;
  }

 private:
  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<storage::EventStore> store_;
};

// Polls `pred` for up to 30 s (sentinel/testing/wait.h).
template <class Pred>
bool Eventually(Pred pred) {
  return testing::WaitFor(pred, std::chrono::seconds(30));
}

}  // namespace sentinel::alerting::internal
