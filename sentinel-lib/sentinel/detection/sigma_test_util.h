// Test helper for the Sigma tests: exec events as rows of a real
// exec_events table (the schema-only event store of rule_runner.h), a
// translated rule run over them through the real sandbox (RunRule), and the
// same events through EvaluateSigma, to compare.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sentinel/detection/rule_runner.h"
#include "sentinel/detection/sigma.h"

namespace sentinel::detection::sigma_testing {

// One exec; nullopt fields are NULL in the table and missing for Sigma.
struct Exec {
  int64_t pid = 0;
  std::optional<std::string> image;
  std::optional<std::string> command_line;
  std::optional<std::string> parent_image;
  std::optional<std::string> parent_command_line;
  std::optional<std::string> user = "alice";
  std::optional<std::string> cwd = "/home/alice";
  std::optional<int64_t> login_uid = 1000;
  int64_t ppid = 1;
};

inline SigmaEvent ToEvent(const Exec& e) {
  SigmaEvent ev;
  auto set = [&](SigmaField f, std::optional<std::string> v) {
    ev[static_cast<std::size_t>(f)] = std::move(v);
  };
  set(SigmaField::kImage, e.image);
  set(SigmaField::kCommandLine, e.command_line);
  set(SigmaField::kParentImage, e.parent_image);
  set(SigmaField::kParentCommandLine, e.parent_command_line);
  set(SigmaField::kUser, e.user);
  set(SigmaField::kCurrentDirectory, e.cwd);
  if (e.login_uid) set(SigmaField::kLogonId, std::to_string(*e.login_uid));
  set(SigmaField::kProcessId, std::to_string(e.pid));
  set(SigmaField::kParentProcessId, std::to_string(e.ppid));
  return ev;
}

class ExecTable {
 public:
  ExecTable() {
    auto db = OpenSchemaOnlyEventStore();
    EXPECT_TRUE(db.ok()) << db.status().message();
    if (db.ok()) db_ = std::move(*db);
  }

  storage::Database& db() { return *db_; }

  void Insert(const std::vector<Exec>& execs) {
    ASSERT_TRUE(db_->Exec("DELETE FROM temp.exec_events").ok());
    for (const auto& e : execs) {
      auto st = db_->Prepare(
          "INSERT INTO temp.exec_events(id, event_time_ms, event_type, pid, ppid, name, exe_path, "
          "command_line, "
          "command_text, parent_exe_path, parent_command_text, user_name, cwd, login_uid, start_time) "
          "VALUES (?1, 1000, 'exec', ?2, ?3, 'x', ?4, json_array(?5), ?5, ?6, ?7, ?8, ?9, ?10, ?2 * 10)");
      ASSERT_TRUE(st.ok()) << st.status().message();
      ASSERT_TRUE(st->BindInt(1, e.pid).ok());
      ASSERT_TRUE(st->BindInt(2, e.pid).ok());
      ASSERT_TRUE(st->BindInt(3, e.ppid).ok());
      ASSERT_TRUE(st->BindOptionalText(4, e.image).ok());
      ASSERT_TRUE(st->BindOptionalText(5, e.command_line).ok());
      ASSERT_TRUE(st->BindOptionalText(6, e.parent_image).ok());
      ASSERT_TRUE(st->BindOptionalText(7, e.parent_command_line).ok());
      ASSERT_TRUE(st->BindOptionalText(8, e.user).ok());
      ASSERT_TRUE(st->BindOptionalText(9, e.cwd).ok());
      ASSERT_TRUE(st->BindOptionalInt(10, e.login_uid).ok());
      ASSERT_TRUE(st->Run().ok());
    }
  }

  // The pids the rule's SQL finds, through the sandbox.
  std::set<int64_t> SqlMatches(const Rule& rule) {
    std::set<int64_t> out;
    auto res = RunRule(*db_, rule, RunParams{}, RunLimits{});
    EXPECT_TRUE(res.ok()) << rule.source_path << ": " << res.status().message();
    if (!res.ok()) return out;
    for (const auto& row : res->rows) out.insert(row.at("pid").get<int64_t>());
    return out;
  }

 private:
  std::unique_ptr<storage::Database> db_;
};

inline std::set<int64_t> EvalMatches(const SigmaRule& rule, const std::vector<Exec>& execs) {
  std::set<int64_t> out;
  for (const auto& e : execs) {
    if (EvaluateSigma(rule.detection, ToEvent(e))) out.insert(e.pid);
  }
  return out;
}

}  // namespace sentinel::detection::sigma_testing
