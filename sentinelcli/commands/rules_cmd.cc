#include "sentinelcli/commands/rules_cmd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <set>

#include <nlohmann/json.hpp>

#include "sentinel/alertstore/alert_store.h"
#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/config/fleet_dirs.h"
#include "sentinel/detection/attack_coverage.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/rule.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/detection/rule_store.h"
#include "sentinel/detection/sigma.h"
#include "sentinel/storage/store.h"
#include "sentinelcli/commands/bundle_import.h"

namespace sentinel::cli {
namespace {

namespace fs = std::filesystem;
using detection::Rule;
using detection::RuleState;
using nlohmann::ordered_json;

detection::RuleSet LoadConfiguredRules(const CommandContext& ctx, bool report_problems) {
  const auto& d = ctx.config.config.detection;
  detection::RuleSet set =
      detection::LoadRuleSet(d.builtin_rules, config::RuleDirsWithFleet(ctx.config.config));
  if (report_problems) {
    for (const auto& p : set.problems)
      *ctx.err << "sentinelcli: warning: skipped " << p.status.message() << "\n";
  }
  return set;
}

// Rule states from the store, or none when there is no store yet.
std::map<std::string, RuleState> StatesIfAny(const CommandContext& ctx) {
  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return {};
  auto states = detection::ReadRuleStates(**db);
  return states.ok() ? *states : std::map<std::string, RuleState>{};
}

const Rule* FindRule(const detection::RuleSet& set, const std::string& id) {
  for (const auto& r : set.rules) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

Status UnknownRule(const std::string& id) {
  return InvalidArgumentError("unknown rule id " + QuoteForMessage(id) + " (see `sentinelcli rules list`)");
}

Cell JsonCell(const ordered_json& v, std::string* keep) {
  if (v.is_null()) return Cell::Null();
  if (v.is_number_integer()) return Cell::Integer(v.get<int64_t>());
  if (v.is_number()) return Cell::Real(v.get<double>());
  if (v.is_boolean()) return Cell::Integer(v.get<bool>() ? 1 : 0);
  *keep =
      v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  return Cell::Text(*keep);
}

Status WriteJsonRows(RowWriter& w, const std::vector<std::string>& columns,
                     const std::vector<ordered_json>& rows) {
  RETURN_IF_ERROR(w.Begin(columns));
  std::vector<std::string> keep(columns.size());
  std::vector<Cell> cells(columns.size());
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      auto it = row.find(columns[i]);
      cells[i] = it == row.end() ? Cell::Null() : JsonCell(*it, &keep[i]);
    }
    RETURN_IF_ERROR(w.Row(cells));
  }
  return w.End();
}

ordered_json RuleJson(const Rule& r, const std::map<std::string, RuleState>& states) {
  ordered_json j;
  j["id"] = r.id;
  j["name"] = r.name;
  j["description"] = r.description;
  j["severity"] = std::string(models::SeverityName(r.severity));
  j["category"] = r.category;
  j["tags"] = r.tags;
  j["mitre"] = r.mitre;
  j["enabled"] = detection::EffectiveEnabled(r, states);
  j["dedup_keys"] = r.dedup_keys;
  j["query"] = r.query;
  if (!r.sigma_id.empty()) {
    j["sigma_id"] = r.sigma_id;
    j["author"] = r.author;
    j["status"] = r.status;
    j["references"] = r.references;
    j["falsepositives"] = r.falsepositives;
  }
  j["source"] = std::string(detection::RuleSourceName(r.source));
  j["source_path"] = r.source_path;
  j["checksum"] = r.Checksum();
  auto it = states.find(r.id);
  if (it != states.end()) {
    const RuleState& s = it->second;
    j["version"] = s.version;
    j["stored_checksum"] = s.checksum;
    j["enabled_override"] = s.enabled_override ? ordered_json(*s.enabled_override) : ordered_json(nullptr);
    j["last_run"] = s.last_run_ms ? ordered_json(FormatIso8601Ms(*s.last_run_ms)) : ordered_json(nullptr);
    j["last_duration_ms"] = s.last_duration_ms ? ordered_json(*s.last_duration_ms) : ordered_json(nullptr);
    j["last_error"] = s.last_error ? ordered_json(*s.last_error) : ordered_json(nullptr);
  } else {
    j["version"] = nullptr;
  }
  return j;
}

// Parses a file and checks its query in the sandbox against the schema.
Result<Rule> ValidateFile(storage::Database& schema, const std::string& file) {
  ASSIGN_OR_RETURN(Rule r, detection::LoadRuleFile(file, detection::RuleSource::kUser));
  RETURN_IF_ERROR(detection::ValidateRuleQuery(schema, r));
  return r;
}

Status WriteFileAtomically(const fs::path& target, const std::string& content) {
  const std::string tmp = target.string() + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return UnavailableError(tmp + ": cannot write: " + std::strerror(errno));
    }
  }
  // 0644, as the rules directory is 0755 (docs/install.md): root writes them,
  // and the agent, which runs as its own unprivileged user, must read them.
  if (::chmod(tmp.c_str(), 0644) != 0 || ::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return UnavailableError(target.string() + ": cannot write: " + std::strerror(err));
  }
  return Status::Ok();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// `rules show` as a table: comment lines with the source and the stored
// state, then the rule as YAML with its effective `enabled`.
void WriteRuleYaml(std::ostream& out, const Rule& r, const std::map<std::string, RuleState>& states) {
  Rule shown = r;
  shown.enabled = detection::EffectiveEnabled(r, states);
  out << "# source: " << r.source_path << "\n";
  auto it = states.find(r.id);
  if (it != states.end()) {
    out << "# version: " << it->second.version
        << (it->second.enabled_override ? (*it->second.enabled_override ? "  (enabled by the operator)"
                                                                        : "  (disabled by the operator)")
                                        : "")
        << "\n";
    if (it->second.last_run_ms) {
      out << "# last run: " << FormatIso8601Ms(*it->second.last_run_ms) << " ("
          << it->second.last_duration_ms.value_or(0) << " ms)"
          << (it->second.last_error ? ", error: " + EscapeText(*it->second.last_error) : std::string())
          << "\n";
    }
  }
  out << detection::RuleToYaml(shown);
}

// The files an import of `path` (a rule file or a directory of them) reads.
Result<std::vector<std::string>> ImportSources(const std::string& path) {
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    ASSIGN_OR_RETURN(auto listed, detection::ListRuleFiles(path));
    for (const auto& f : listed) files.push_back(f.string());
    if (files.empty()) return InvalidArgumentError(path + ": no *.yaml rule files");
  } else if (fs::exists(path, ec)) {
    files.push_back(path);
  } else {
    return InvalidArgumentError(path + ": no such file or directory");
  }
  return files;
}

// A validated rule to import and the exact text of its file.
using ImportedRule = std::pair<Rule, std::string>;

// Everything is checked before anything is written: an import is all or
// nothing. InvalidArgument names the first file that cannot be imported: it
// is invalid, repeats an id of the import, or reuses the id of a built-in
// rule or of a rule file other than its destination in `target_dir`.
Result<std::vector<ImportedRule>> CheckImport(storage::Database& schema,
                                              const std::vector<std::string>& files,
                                              const detection::RuleSet& existing, const fs::path& target_dir,
                                              Progress& progress) {
  std::vector<ImportedRule> accepted;
  std::set<std::string> ids;
  progress.SetTotal(static_cast<int64_t>(files.size()));
  for (const auto& f : files) {
    progress.Update(static_cast<int64_t>(accepted.size()));
    auto r = ValidateFile(schema, f);
    if (!r.ok()) return InvalidArgumentError(r.status().message() + " (nothing imported)");
    if (!ids.insert(r->id).second) {
      return InvalidArgumentError(f + ": id: " + QuoteForMessage(r->id) +
                                  " appears twice in the import (nothing imported)");
    }
    const Rule* clash = FindRule(existing, r->id);
    const fs::path dest = target_dir / (r->id + ".yaml");
    if (clash != nullptr &&
        (clash->source == detection::RuleSource::kBuiltin || clash->source_path != dest.string())) {
      return InvalidArgumentError(f + ": id: " + QuoteForMessage(r->id) + " is already defined by " +
                                  clash->source_path + " (nothing imported)");
    }
    accepted.emplace_back(std::move(*r), ReadAll(f));
  }
  return accepted;
}

// Creates the rules directory (mode 0755, as installed) when it does not exist yet.
Status EnsureRulesDir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return Status::Ok();
  fs::create_directories(dir, ec);
  if (ec) return UnavailableError(dir.string() + ": cannot create: " + ec.message());
  ::chmod(dir.c_str(), 0755);
  return Status::Ok();
}

void RecordImport(const CommandContext& ctx, const std::string& path, const fs::path& target_dir,
                  const std::vector<ImportedRule>& accepted) {
  auto trail = OpenCliTrail(ctx);
  if (!trail) return;
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& [rule, text] : accepted) {
    rules.push_back({{"id", rule.id}, {"checksum", rule.Checksum()}, {"from", rule.source_path}});
  }
  trail->Record("bundle_imported", {{"source", path},
                                    {"target_dir", target_dir.string()},
                                    {"rules", rules},
                                    {"uid", static_cast<int64_t>(::getuid())}});
}

}  // namespace

int RunRulesList(const CommandContext& ctx) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  detection::RuleSet set = LoadConfiguredRules(ctx, true);
  auto states = StatesIfAny(ctx);
  std::vector<ordered_json> rows;
  for (const auto& r : set.rules) {
    ordered_json j = RuleJson(r, states);
    j["mitre"] = Join(r.mitre, ",");
    rows.push_back(std::move(j));
  }
  auto writer = MakeRowWriter(*format, *ctx.out, ctx.term);
  Status s = WriteJsonRows(
      *writer, {"id", "severity", "enabled", "source", "version", "mitre", "last_run", "last_error", "name"},
      rows);
  if (!s.ok()) return FailRuntime(ctx, s);
  return kExitOk;
}

int RunRulesShow(const CommandContext& ctx, const std::string& id) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  detection::RuleSet set = LoadConfiguredRules(ctx, false);
  const Rule* r = FindRule(set, id);
  if (r == nullptr) return Fail(ctx, UnknownRule(id));
  auto states = StatesIfAny(ctx);
  if (*format == Format::kJson) {
    // Escaped like every JSON the CLI prints (unsafe code points as \uXXXX).
    Status s = WriteObject(*format, *ctx.out, RuleJson(*r, states), ctx.term);
    if (!s.ok()) return FailRuntime(ctx, s);
  } else if (*format == Format::kCsv) {
    auto writer = MakeRowWriter(*format, *ctx.out, ctx.term);
    ordered_json j = RuleJson(*r, states);
    std::vector<std::string> cols;
    for (auto it = j.begin(); it != j.end(); ++it) cols.push_back(it.key());
    Status s = WriteJsonRows(*writer, cols, {j});
    if (!s.ok()) return FailRuntime(ctx, s);
  } else {
    WriteRuleYaml(*ctx.out, *r, states);
  }
  ctx.out->flush();
  return kExitOk;
}

int RunRulesValidate(const CommandContext& ctx, const std::vector<std::string>& files) {
  auto schema = detection::OpenSchemaOnlyEventStore();
  if (!schema.ok()) return FailRuntime(ctx, schema.status());
  int bad = 0;
  std::set<std::string> ids;
  for (const auto& f : files) {
    auto r = ValidateFile(**schema, f);
    if (!r.ok()) {
      *ctx.err << "sentinelcli: " << r.status().message() << "\n";
      ++bad;
      continue;
    }
    if (!ids.insert(r->id).second) {
      *ctx.err << "sentinelcli: " << f << ": id: " << QuoteForMessage(r->id)
               << " appears in more than one of the files given\n";
      ++bad;
      continue;
    }
    *ctx.out << f << ": ok (" << r->id << ")\n";
  }
  ctx.out->flush();
  if (bad > 0) {
    *ctx.err << "sentinelcli: " << bad << " of " << files.size() << " rule file(s) invalid\n";
    return kExitUsage;
  }
  return kExitOk;
}

namespace {

// The rule `rules test` runs: a file (a path or *.yaml), else an id of the configured rule set.
Result<Rule> RuleToTest(const CommandContext& ctx, const std::string& id_or_file) {
  std::error_code ec;
  if (fs::is_regular_file(id_or_file, ec) || id_or_file.find('/') != std::string::npos ||
      EndsWith(id_or_file, ".yaml") || EndsWith(id_or_file, ".yml")) {
    auto r = detection::LoadRuleFile(id_or_file, detection::RuleSource::kUser);
    if (!r.ok() && r.status().code() == StatusCode::kNotFound)
      return InvalidArgumentError(r.status().message());
    return r;
  }
  detection::RuleSet set = LoadConfiguredRules(ctx, false);
  const Rule* r = FindRule(set, id_or_file);
  if (r == nullptr) return UnknownRule(id_or_file);
  return *r;
}

// Process events ids per worker batch of `rules test --since` (bounded memory in the worker).
constexpr int64_t kTestBatchIds = 100'000;

// The exec events of ids (after_id, max id] through `worker` in batches; one row per dedup key.
Result<detection::RuleResult> RunOverExecEvents(detection::QueryWorker& worker, const Rule& rule,
                                                const detection::RunParams& params,
                                                const detection::RunLimits& limits, int64_t after_id,
                                                int64_t up_to_id, int64_t* exec_events) {
  detection::RuleResult out;
  std::set<std::string> seen;
  for (int64_t from = after_id; from < up_to_id; from += kTestBatchIds) {
    const int64_t to = std::min(up_to_id, from + kTestBatchIds);
    ASSIGN_OR_RETURN(int64_t n, worker.LoadExecBatch(from, to, params.scan_id, limits.guard.timeout_ms));
    *exec_events += n;
    if (n == 0) continue;
    ASSIGN_OR_RETURN(auto part, worker.RunRule(rule, params, limits));
    out.columns = part.columns;
    out.duration_ms += part.duration_ms;
    out.truncated = out.truncated || part.truncated;
    for (auto& row : part.rows) {
      if (out.rows.size() >= limits.max_rows) {
        out.truncated = true;
        break;
      }
      if (seen.insert(alerting::DedupKey(rule, row)).second) out.rows.push_back(std::move(row));
    }
  }
  return out;
}

// The id range of the events since `since_ms`: (after, up_to].
Result<std::pair<int64_t, int64_t>> EventIdsSince(storage::Database& db, int64_t since_ms) {
  ASSIGN_OR_RETURN(auto st,
                   db.Prepare("SELECT coalesce((SELECT min(id) - 1 FROM process_events "
                              "WHERE event_time_ms >= ?1), 0), coalesce(max(id), 0) FROM process_events"));
  RETURN_IF_ERROR(st.BindInt(1, since_ms));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::make_pair(int64_t{0}, int64_t{0});
  return std::make_pair(st.ColumnInt(0), std::max(st.ColumnInt(0), st.ColumnInt(1)));
}

int FailRuleRun(const CommandContext& ctx, const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kDeadlineExceeded ||
                 s.code() == StatusCode::kResourceExhausted
             ? Fail(ctx, InvalidArgumentError(s.message()))
             : FailRuntime(ctx, s);
}

}  // namespace

int RunRulesTest(const CommandContext& ctx, const std::string& id_or_file, const std::string& since) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  auto rule = RuleToTest(ctx, id_or_file);
  if (!rule.ok()) return Fail(ctx, rule.status());
  std::optional<int64_t> since_ms;
  if (!since.empty()) {
    if (rule->on != detection::RuleTrigger::kExec) {
      return Fail(ctx,
                  InvalidArgumentError("--since: rule " + rule->id +
                                       " is evaluated on scans (on: scan); --since is for on: exec rules"));
    }
    auto t = ParseTimePoint(since, NowMs());
    if (!t.ok()) return Fail(ctx, t.status().WithContext("--since"));
    since_ms = *t;
  }
  auto db = OpenEventsReadOnly(ctx);
  if (!db.ok()) return FailRuntime(ctx, db.status());
  detection::RunParams params;
  params.now_ms = NowMs();
  if (Status s = detection::FillScanIds(**db, &params); !s.ok()) return FailRuntime(ctx, s);
  detection::RunLimits limits;
  limits.guard.timeout_ms = ctx.config.config.detection.rule_timeout_secs * 1000;
  // Run as the agent runs it: in a query worker over the same frozen
  // snapshot of the latest scan, killed at the time limit.
  detection::WorkerSetup setup;
  setup.database_path = (*db)->path();
  setup.busy_timeout_ms = ctx.config.config.database.busy_timeout_ms;
  setup.rule_snapshot = true;
  setup.scan_id = params.scan_id;
  auto worker = detection::QueryWorker::Start(setup);
  if (!worker.ok()) return FailRuntime(ctx, worker.status());
  int64_t exec_events = 0;
  Result<detection::RuleResult> result = InternalError("not run");
  std::string over =
      params.scan_id ? " over scan " + std::to_string(*params.scan_id) : " (no completed scan)";
  if (since_ms) {
    auto ids = EventIdsSince(**db, *since_ms);
    if (!ids.ok()) return FailRuntime(ctx, ids.status());
    result = RunOverExecEvents(**worker, *rule, params, limits, ids->first, ids->second, &exec_events);
    over = " over " + std::to_string(exec_events) + " exec event(s) since " + since;
  } else {
    result = (*worker)->RunRule(*rule, params, limits);
  }
  if (!result.ok()) return FailRuleRun(ctx, result.status());
  auto writer = MakeRowWriter(*format, *ctx.out, ctx.term);
  Status s = WriteJsonRows(*writer, result->columns, result->rows);
  if (!s.ok()) return FailRuntime(ctx, s);
  *ctx.err << "rule " << rule->id << ": " << result->rows.size() << " finding(s)"
           << (result->truncated ? " (truncated)" : "") << " in " << result->duration_ms << " ms" << over
           << "; no alert was created\n";
  return kExitOk;
}

int RunRulesEnable(const CommandContext& ctx, const std::string& id, bool enabled) {
  detection::RuleSet set = LoadConfiguredRules(ctx, false);
  const Rule* r = FindRule(set, id);
  if (r == nullptr) return Fail(ctx, UnknownRule(id));
  const auto& dbc = ctx.config.config.database;
  std::error_code ec;
  if (!fs::exists(dbc.path, ec)) {
    return FailRuntime(ctx,
                       NotFoundError(dbc.path + ": event store does not exist (start sentinelagent once)"));
  }
  auto db = storage::OpenStore(storage::DatabaseKind::kEvents,
                               {dbc.path, storage::OpenMode::kReadWrite, dbc.busy_timeout_ms});
  if (!db.ok()) return FailRuntime(ctx, db.status());
  Status s = detection::SetRuleEnabled(**db, *r, enabled, NowMs());
  if (!s.ok()) return FailRuntime(ctx, s);
  if (auto trail = OpenCliTrail(ctx)) {
    trail->Record(enabled ? "rule_enabled" : "rule_disabled",
                  {{"rule", id}, {"uid", static_cast<int64_t>(::getuid())}});
  }
  *ctx.out << "rule " << id << (enabled ? " enabled" : " disabled") << "\n";
  return kExitOk;
}

int RunRulesImport(const CommandContext& ctx, const std::string& path) {
  if (std::string bundle; ReadBundleFile(path, &bundle)) return RunBundleImport(ctx, path, bundle);
  const auto& dirs = ctx.config.config.detection.rules_dirs;
  if (dirs.empty())
    return Fail(ctx, InvalidArgumentError("detection.rules_dirs is empty: nowhere to import rules to"));
  auto files = ImportSources(path);
  if (!files.ok()) return Fail(ctx, files.status());
  auto schema = detection::OpenSchemaOnlyEventStore();
  if (!schema.ok()) return FailRuntime(ctx, schema.status());
  const fs::path target_dir = dirs.front();
  // Each file's query is compiled against the schema: a directory of many takes a while.
  auto progress = MakeProgress(ctx, "checking rule files", "files", /*streams_to_stdout=*/false);
  auto accepted = CheckImport(**schema, *files, LoadConfiguredRules(ctx, false), target_dir, *progress);
  progress->Finish();
  if (!accepted.ok()) return Fail(ctx, accepted.status());
  if (Status s = EnsureRulesDir(target_dir); !s.ok()) return FailRuntime(ctx, s);
  for (const auto& [rule, text] : *accepted) {
    Status s = WriteFileAtomically(target_dir / (rule.id + ".yaml"), text);
    if (!s.ok()) return FailRuntime(ctx, s);
    *ctx.out << "imported " << rule.id << " -> " << (target_dir / (rule.id + ".yaml")).string() << "\n";
  }
  RecordImport(ctx, path, target_dir, *accepted);
  *ctx.out << accepted->size() << " rule(s) imported; a running sentinelagent loads them on SIGHUP\n";
  return kExitOk;
}

int RunRulesExport(const CommandContext& ctx, const std::string& output_dir) {
  detection::RuleSet set = LoadConfiguredRules(ctx, true);
  auto states = StatesIfAny(ctx);
  if (output_dir.empty()) {
    bool first = true;
    for (const auto& r : set.rules) {
      Rule shown = r;
      shown.enabled = detection::EffectiveEnabled(r, states);
      if (!first) *ctx.out << "---\n";
      first = false;
      *ctx.out << detection::RuleToYaml(shown);
    }
    ctx.out->flush();
    return kExitOk;
  }
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  if (ec) return FailRuntime(ctx, UnavailableError(output_dir + ": cannot create: " + ec.message()));
  for (const auto& r : set.rules) {
    Rule shown = r;
    shown.enabled = detection::EffectiveEnabled(r, states);
    Status s = WriteFileAtomically(fs::path(output_dir) / (r.id + ".yaml"), detection::RuleToYaml(shown));
    if (!s.ok()) return FailRuntime(ctx, s);
  }
  *ctx.out << set.rules.size() << " rule(s) exported to " << output_dir << "\n";
  return kExitOk;
}

namespace {

ordered_json CoverageJson(const detection::AttackCoverage& c) {
  ordered_json tactics = ordered_json::array();
  for (const auto& row : c.rows) {
    ordered_json techniques = ordered_json::array();
    for (const auto& e : row.techniques) {
      techniques.push_back({{"id", e.technique},
                            {"name", std::string(detection::AttackTechniqueName(e.technique))},
                            {"rules", e.rules}});
    }
    tactics.push_back({{"tactic", std::string(row.tactic->tag)},
                       {"name", std::string(row.tactic->name)},
                       {"id", std::string(row.tactic->id)},
                       {"techniques", std::move(techniques)}});
  }
  return {{"rules", c.rules},
          {"techniques", c.techniques},
          {"tactics", std::move(tactics)},
          {"without_tactic", c.without_tactic},
          {"without_technique", c.without_technique}};
}

// The Sigma files `rules convert` reads: the file, or every *.yml / *.yaml
// under the directory (recursively, sorted, hidden names skipped).
Result<std::vector<std::string>> ConvertSources(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    if (!fs::exists(path, ec)) return InvalidArgumentError(path + ": no such file or directory");
    return std::vector<std::string>{path};
  }
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(path, fs::directory_options::none, ec);
  if (ec) return InvalidArgumentError(path + ": cannot list: " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return InvalidArgumentError(path + ": cannot list: " + ec.message());
    const std::string name = it->path().filename().string();
    if (name.starts_with(".")) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    const std::string ext = it->path().extension().string();
    if ((ext == ".yml" || ext == ".yaml") && it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return InvalidArgumentError(path + ": no *.yml or *.yaml files");
  return files;
}

// One Sigma file translated and checked in the sandbox.
Result<Rule> ConvertFile(storage::Database& schema, const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return InvalidArgumentError(file + ": file: cannot read (not a regular file)");
  if (static_cast<std::size_t>(st.st_size) > detection::kMaxRuleFileBytes)
    return InvalidArgumentError(file + ": file: larger than " + std::to_string(detection::kMaxRuleFileBytes) +
                                " bytes");
  const std::string text = ReadAll(file);
  if (!detection::IsSigmaDocument(text))
    return InvalidArgumentError(file + ": file: not a Sigma rule (needs logsource and detection)");
  ASSIGN_OR_RETURN(Rule r, detection::ConvertSigmaRule(text, file));
  RETURN_IF_ERROR(detection::ValidateRuleQuery(schema, r));
  return r;
}

}  // namespace

int RunRulesCoverage(const CommandContext& ctx, bool builtin_only, bool markdown) {
  auto format = ResolveFormat(ctx.global, Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  detection::RuleSet set = builtin_only ? detection::LoadRuleSet(true, {}) : LoadConfiguredRules(ctx, true);
  const detection::AttackCoverage c = detection::BuildAttackCoverage(set.rules);
  if (markdown) {
    *ctx.out << detection::AttackCoverageMarkdown(c);
  } else if (*format == Format::kJson) {
    *ctx.out << CoverageJson(c).dump(2) << "\n";
  } else {
    std::vector<ordered_json> rows;
    for (const auto& row : c.rows) {
      for (const auto& e : row.techniques) {
        rows.push_back({{"tactic", std::string(row.tactic->tag)},
                        {"technique", e.technique},
                        {"name", std::string(detection::AttackTechniqueName(e.technique))},
                        {"rules", Join(e.rules, ",")}});
      }
    }
    auto writer = MakeRowWriter(*format, *ctx.out, ctx.term);
    Status s = WriteJsonRows(*writer, {"tactic", "technique", "name", "rules"}, rows);
    if (!s.ok()) return FailRuntime(ctx, s);
  }
  ctx.out->flush();
  return kExitOk;
}

int RunRulesConvert(const CommandContext& ctx, const std::string& path, const std::string& output_dir) {
  auto files = ConvertSources(path);
  if (!files.ok()) return Fail(ctx, files.status());
  auto schema = detection::OpenSchemaOnlyEventStore();
  if (!schema.ok()) return FailRuntime(ctx, schema.status());
  if (!output_dir.empty()) {
    std::error_code ec;
    fs::create_directories(output_dir, ec);
    if (ec) return FailRuntime(ctx, UnavailableError(output_dir + ": cannot create: " + ec.message()));
  }
  std::size_t refused = 0, written = 0;
  std::set<std::string> ids;
  for (const auto& f : *files) {
    auto r = ConvertFile(**schema, f);
    if (r.ok() && !ids.insert(r->id).second)
      r = InvalidArgumentError(f + ": id: " + QuoteForMessage(r->id) + " appears in more than one file");
    if (!r.ok()) {
      *ctx.err << "sentinelcli: " << r.status().message() << "\n";
      ++refused;
      continue;
    }
    const std::string yaml = detection::RuleToYaml(*r);
    if (output_dir.empty()) {
      *ctx.out << (written > 0 ? "---\n" : "") << yaml;
    } else if (Status s = WriteFileAtomically(fs::path(output_dir) / (r->id + ".yaml"), yaml); !s.ok()) {
      return FailRuntime(ctx, s);
    }
    ++written;
  }
  ctx.out->flush();
  if (!output_dir.empty()) *ctx.err << written << " rule(s) written to " << output_dir << "\n";
  if (refused > 0) {
    *ctx.err << "sentinelcli: " << refused << " of " << files->size() << " file(s) refused\n";
    return kExitUsage;
  }
  return kExitOk;
}

}  // namespace sentinel::cli
