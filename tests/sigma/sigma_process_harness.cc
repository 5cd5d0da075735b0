#include "tests/sigma/sigma_process_harness.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "sentinel/storage/sqlite.h"
#include "sentinel/testing/subprocess.h"
#include "tests/sigma/sigma_plan.h"

namespace sentinel::sigma_test {

using namespace std::chrono_literals;

namespace {

// The GECOS field of the users ScenarioUsers creates: one left behind by an
// interrupted run is recognised as the tests' own and removed.
constexpr const char* kUserMarker = "SentinelD Sigma scenario test user";

std::string EncodePlan(const std::vector<ProcessScenario>& scenarios,
                       const std::vector<ScenarioUsers::Ids>& ids, const std::string& scratch) {
  std::string plan;
  PutToken(&plan, kPlanTag);
  PutToken(&plan, scratch);
  PutToken(&plan, std::to_string(scenarios.size()));
  for (size_t i = 0; i < scenarios.size(); ++i) {
    const ProcessScenario& s = scenarios[i];
    PutToken(&plan, s.parent_image);
    PutList(&plan, s.parent_argv);
    PutChild(&plan, ChildSpec{s.image, s.argv, s.cwd, ids[i].uid, ids[i].gid, ids[i].groups,
                              s.login_uid ? std::to_string(*s.login_uid) : ""});
  }
  return plan;
}

// "<index> <parent pid> ok <pid> <exit code>" | "<index> <parent pid> error <what>".
bool ParseResultLine(const std::string& line, std::vector<ReplayedProcess>* out) {
  std::istringstream in(line);
  size_t index = 0;
  std::string verdict;
  ReplayedProcess r;
  if (!(in >> index >> r.parent_pid >> verdict) || index >= out->size()) return false;
  if (verdict == "ok") {
    if (!(in >> r.pid >> r.exit_code)) return false;
  } else {
    std::getline(in, r.error);
    if (r.error.empty()) r.error = "unknown failure";
  }
  (*out)[index] = r;
  return true;
}

std::string Quoted(const std::optional<std::string>& v) {
  return v ? "'" + *v + "'" : "NULL";
}

}  // namespace

std::string JoinArgs(const std::vector<std::string>& argv) {
  std::string out;
  for (size_t i = 0; i < argv.size(); ++i) out += (i ? " " : "") + argv[i];
  return out;
}

std::optional<std::vector<std::string>> SplitCommandLine(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string w; std::getline(in, w, ' ');) {
    if (!w.empty()) words.push_back(w);
  }
  if (words.empty() || JoinArgs(words) != line) return std::nullopt;
  return words;
}

ScenarioUsers::~ScenarioUsers() {
  for (const auto& name : created_) {
    const auto r = testing::Run({"/usr/sbin/userdel", name});
    if (r.exit_code != 0) ADD_FAILURE() << "userdel " << name << " (created by the test): " << r.err;
  }
}

std::optional<ScenarioUsers::Ids> ScenarioUsers::Resolve(const std::string& name, std::string* error) {
  const passwd* pw = ::getpwnam(name.c_str());
  if (pw != nullptr && pw->pw_gecos != nullptr && std::string(pw->pw_gecos) == kUserMarker &&
      std::find(created_.begin(), created_.end(), name) == created_.end()) {
    created_.push_back(name);  // left behind by an interrupted run of these tests
  }
  if (pw == nullptr) {
    const auto r = testing::Run({"/usr/sbin/useradd", "--system", "--no-create-home", "--shell",
                                 "/usr/sbin/nologin", "--comment", kUserMarker, name});
    if (r.exit_code != 0) {
      *error = "useradd " + name + " failed (exit " + std::to_string(r.exit_code) + "): " + r.err;
      return std::nullopt;
    }
    created_.push_back(name);
    pw = ::getpwnam(name.c_str());
    if (pw == nullptr) {
      *error = "user " + name + " not found after useradd";
      return std::nullopt;
    }
  }
  Ids ids{pw->pw_uid, pw->pw_gid, {}};
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (::getgrouplist(name.c_str(), pw->pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
    ::getgrouplist(name.c_str(), pw->pw_gid, groups.data(), &n);
  }
  groups.resize(static_cast<size_t>(std::max(n, 0)));
  ids.groups = groups;
  return ids;
}

std::string ProbeBin() {
  return std::string(SENTINEL_BINARY_DIR) + "/tests/sigma/sigma_probe";
}

std::optional<std::vector<ReplayedProcess>> ReplayProcesses(const std::vector<ProcessScenario>& scenarios,
                                                            const std::string& scratch_dir,
                                                            ScenarioUsers& users, std::string* error) {
  std::vector<ScenarioUsers::Ids> ids;
  for (const auto& s : scenarios) {
    auto id = users.Resolve(s.user, error);
    if (!id) return std::nullopt;
    ids.push_back(*id);
  }
  const auto r =
      testing::Run({ProbeBin()}, {"SENTINEL_SIGMA_PROBE=stage"}, EncodePlan(scenarios, ids, scratch_dir));
  if (r.exit_code != 0) {
    *error = "sigma_probe stage exited " + std::to_string(r.exit_code) + ": " + r.err;
    return std::nullopt;
  }
  std::vector<ReplayedProcess> out(scenarios.size());
  for (auto& o : out) o.error = "no result from the stage";
  for (const auto& line : itest::SplitLines(r.out)) {
    if (!ParseResultLine(line, &out)) {
      *error = "unreadable line from sigma_probe stage: " + line;
      return std::nullopt;
    }
  }
  return out;
}

std::string HostPathState(const std::vector<ProcessScenario>& scenarios) {
  std::set<std::string> paths;
  for (const auto& s : scenarios) paths.insert({s.image, s.parent_image, s.cwd});
  std::string out;
  for (const auto& p : paths) {
    struct stat st {};
    out += p + ": ";
    if (::lstat(p.c_str(), &st) != 0) {
      out += "missing\n";
      continue;
    }
    out +=
        std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + " mode " + std::to_string(st.st_mode);
    if (!S_ISDIR(st.st_mode)) {  // a directory's times move with whatever else the host does in it
      out += " size " + std::to_string(st.st_size) + " mtime " + std::to_string(st.st_mtim.tv_sec) + "." +
             std::to_string(st.st_mtim.tv_nsec) + " ctime " + std::to_string(st.st_ctim.tv_sec) + "." +
             std::to_string(st.st_ctim.tv_nsec);
    }
    out += "\n";
  }
  return out;
}

std::string CompareExec(const ExecRow& row, const ProcessScenario& s) {
  std::string diff;
  auto check = [&](const char* field, const std::optional<std::string>& got, const std::string& want) {
    if (got != want)
      diff += std::string(field) + " is " + Quoted(got) + ", the scenario has '" + want + "'; ";
  };
  check("exe_path", row.exe_path, s.image);
  check("command_text", row.command_text, JoinArgs(s.argv));
  check("parent_exe_path", row.parent_exe_path, s.parent_image);
  check("parent_command_text", row.parent_command_text, JoinArgs(s.parent_argv));
  check("cwd", row.cwd, s.cwd);
  check("user_name", row.user_name, s.user);
  if (s.login_uid && row.login_uid != static_cast<int64_t>(*s.login_uid)) {
    diff += "login_uid is " + (row.login_uid ? std::to_string(*row.login_uid) : std::string("NULL")) +
            ", the scenario has " + std::to_string(*s.login_uid) + "; ";
  }
  return diff;
}

// ---- DetectionPipeline -----------------------------------------------------

DetectionPipeline::DetectionPipeline(itest::Sandbox& sb) : sb_(sb) {
  ::chmod(sb_.path().c_str(), 0755);
  EXPECT_TRUE(itest::MakeServiceDir(sb_.File("data")));
  db_ = sb_.File("data/events.db");
  rules_dir_ = sb_.File("rules.d");
  // root 0755, as installed (docs/install.md): `rules convert`, run as root,
  // writes its files 0644, so the agent (dropped to itest::kServiceUser)
  // reads them.
  EXPECT_TRUE(::mkdir(rules_dir_.c_str(), 0755) == 0 && ::chmod(rules_dir_.c_str(), 0755) == 0)
      << rules_dir_ << ": " << std::strerror(errno);
}

DetectionPipeline::~DetectionPipeline() {
  Stop();
}

std::vector<std::string> DetectionPipeline::Env(std::vector<std::string> extra) const {
  extra.push_back("SENTINELD_DATABASE__PATH=" + db_);
  extra.push_back("SENTINELD_DATABASE__AUDIT_PATH=" + sb_.File("data/audit.db"));
  extra.push_back("SENTINELD_DETECTION__RULES_DIRS=[" + rules_dir_ + "]");
  extra.push_back("SENTINELD_DETECTION__BUILTIN_RULES=false");  // only the rules under test
  extra.push_back("SENTINELD_IPC__SOCKET_DIR=" + sb_.File("ipc"));
  extra.push_back("SENTINELD_TELEMETRY__LOG_FORMAT=text");
  extra.push_back("SENTINELD_TELEMETRY__HTTP_LISTEN=");
  return sb_.ProcmondEnv(extra);
}

itest::RunResult DetectionPipeline::Convert(const std::string& sigma_file) const {
  return sb_.Cli({"rules", "convert", sigma_file, "--output", rules_dir_}, Env({}));
}

void DetectionPipeline::Start() {
  procmond_ = std::make_unique<itest::Child>(
      std::vector<std::string>{itest::ProcmondBin()},
      Env({"SENTINELD_COLLECTION__INTERVAL_SECS=3600", "SENTINELD_COLLECTION__REALTIME_SOURCE=ebpf"}), "",
      sb_.File("procmond.err"));
  ASSERT_TRUE(itest::WaitFor(
      [&] {
        return itest::Contains(testing::ReadFile(sb_.File("procmond.err")), "real-time event source started");
      },
      30s))
      << Logs();
  agent_ = std::make_unique<itest::Child>(
      std::vector<std::string>{itest::AgentBin(), "--no-collector"},
      Env({"SENTINELD_ALERTING__DEDUP_WINDOW_SECS=0", "SENTINELD_DETECTION__INTERVAL_SECS=3600"}),
      sb_.File("agent.out"), sb_.File("agent.err"));
  ASSERT_TRUE(itest::WaitFor(
      [&] {
        return itest::Contains(testing::ReadFile(sb_.File("agent.err")), "real-time detector subscribed");
      },
      30s))
      << Logs();
}

void DetectionPipeline::Stop() {
  for (auto* child : {&agent_, &procmond_}) {
    if (!*child) continue;
    (*child)->Signal(SIGTERM);
    (*child)->Wait(30s);
    child->reset();
  }
}

std::optional<ExecRow> DetectionPipeline::WaitForExec(pid_t pid, std::chrono::milliseconds timeout) const {
  std::optional<ExecRow> row;
  itest::WaitFor(
      [&] {
        auto db = storage::Database::Open(db_, storage::OpenMode::kReadOnly);
        if (!db.ok()) return false;
        auto st = (*db)->Prepare(
            "SELECT id, start_time, exe_path, command_text, parent_exe_path, parent_command_text, cwd, "
            "user_name, login_uid FROM process_events WHERE event_type = 'exec' AND pid = ? "
            "ORDER BY id DESC LIMIT 1");
        if (!st.ok() || !st->BindInt(1, pid).ok()) return false;
        auto step = st->Step();
        if (!step.ok() || !*step) return false;
        row = ExecRow{st->ColumnInt(0),          st->ColumnInt(1),          st->ColumnOptionalText(2),
                      st->ColumnOptionalText(3), st->ColumnOptionalText(4), st->ColumnOptionalText(5),
                      st->ColumnOptionalText(6), st->ColumnOptionalText(7), st->ColumnOptionalInt(8)};
        return true;
      },
      timeout);
  return row;
}

std::set<std::string> DetectionPipeline::WaitEvaluated(const std::set<std::string>& rule_ids, int64_t id,
                                                       std::chrono::milliseconds timeout) const {
  std::set<std::string> behind = rule_ids;
  auto check = [&] {
    auto db = storage::Database::Open(db_, storage::OpenMode::kReadOnly);
    if (!db.ok()) return false;
    auto st = (*db)->Prepare("SELECT last_event_id >= ? FROM detection_cursors WHERE rule_id = ?");
    if (!st.ok()) return false;
    for (auto it = behind.begin(); it != behind.end();) {
      st->Reset();
      if (!st->BindInt(1, id).ok() || !st->BindText(2, *it).ok()) return false;
      auto step = st->Step();
      if (!step.ok()) return false;
      it = *step && st->ColumnInt(0) == 1 ? behind.erase(it) : std::next(it);
    }
    return behind.empty();
  };
  itest::WaitFor(check, timeout);
  return behind;
}

DetectionPipeline::AlertCounts DetectionPipeline::Alerts(const std::string& rule_id, pid_t pid,
                                                         int64_t start_time) const {
  AlertCounts counts;
  auto db = storage::Database::Open(db_, storage::OpenMode::kReadOnly);
  if (!db.ok()) return counts;
  auto st = (*db)->Prepare(
      "SELECT count(*), coalesce(sum(json_extract(raw_data, '$.start_time') IS ?), 0) FROM alerts "
      "WHERE rule_id = ? AND json_extract(raw_data, '$.pid') = ?");
  if (!st.ok() || !st->BindInt(1, start_time).ok() || !st->BindText(2, rule_id).ok() ||
      !st->BindInt(3, pid).ok())
    return counts;
  auto step = st->Step();
  if (step.ok() && *step) counts = AlertCounts{st->ColumnInt(0), st->ColumnInt(1)};
  return counts;
}

std::string DetectionPipeline::DescribeAlerts(const std::string& rule_id) const {
  auto db = storage::Database::Open(db_, storage::OpenMode::kReadOnly);
  if (!db.ok()) return "(no database)";
  auto st = (*db)->Prepare(
      "SELECT json_extract(raw_data, '$.pid'), json_extract(raw_data, '$.start_time'), "
      "json_extract(raw_data, '$.exe_path') FROM alerts WHERE rule_id = ? ORDER BY id");
  if (!st.ok() || !st->BindText(1, rule_id).ok()) return "(query failed)";
  std::string out;
  while (true) {
    auto step = st->Step();
    if (!step.ok() || !*step) break;
    out +=
        "pid " + st->ColumnText(0) + " start_time " + st->ColumnText(1) + " exe " + st->ColumnText(2) + "\n";
  }
  return out.empty() ? "(none)" : out;
}

std::string DetectionPipeline::Logs() const {
  return "--- procmond.err\n" + testing::ReadFile(sb_.File("procmond.err")) + "--- agent.err\n" +
         testing::ReadFile(sb_.File("agent.err"));
}

// ---- cases.yaml ------------------------------------------------------------

namespace {

std::optional<ProcessScenario> ScenarioFrom(const YAML::Node& n, std::string* error) {
  ProcessScenario s;
  for (const char* key :
       {"image", "argv", "command_line", "parent_image", "parent_command_line", "user", "cwd", "why"}) {
    if (!n[key]) {
      *error = std::string("missing '") + key + "'";
      return std::nullopt;
    }
  }
  s.image = n["image"].as<std::string>();
  s.argv = n["argv"].as<std::vector<std::string>>();
  s.parent_image = n["parent_image"].as<std::string>();
  s.cwd = n["cwd"].as<std::string>();
  s.user = n["user"].as<std::string>();
  if (n["logon_id"]) s.login_uid = n["logon_id"].as<uint32_t>();
  const std::string command_line = n["command_line"].as<std::string>();
  if (JoinArgs(s.argv) != command_line) {
    *error = "command_line '" + command_line + "' is not argv joined by spaces ('" + JoinArgs(s.argv) + "')";
    return std::nullopt;
  }
  const std::string parent_line = n["parent_command_line"].as<std::string>();
  auto parent_argv = SplitCommandLine(parent_line);
  if (!parent_argv) {
    *error = "parent_command_line '" + parent_line + "' cannot be split into words that join back to it";
    return std::nullopt;
  }
  s.parent_argv = *parent_argv;
  return s;
}

}  // namespace

std::optional<std::vector<SigmaCase>> LoadCases(const std::string& cases_yaml, std::string* error) {
  const std::string dir = std::filesystem::path(cases_yaml).parent_path().string();
  std::vector<SigmaCase> out;
  try {
    const YAML::Node root = YAML::LoadFile(cases_yaml);
    for (const auto& rule : root["cases"]) {
      const std::string rule_file = dir + "/" + rule["rule_file"].as<std::string>();
      const std::string sigma_id = YAML::LoadFile(rule_file)["id"].as<std::string>();
      for (const bool match : {true, false}) {
        int n = 0;
        for (const auto& entry : rule[match ? "match" : "nomatch"]) {
          SigmaCase c;
          c.rule_file = rule_file;
          c.rule_id = "sigma-" + sigma_id;
          c.must_match = match;
          c.label =
              rule["rule_file"].as<std::string>() + (match ? " match #" : " nomatch #") + std::to_string(++n);
          c.why = entry["why"] ? entry["why"].as<std::string>() : "";
          auto s = ScenarioFrom(entry, error);
          if (!s) {
            *error = c.label + ": " + *error;
            return std::nullopt;
          }
          c.process = *s;
          out.push_back(std::move(c));
        }
      }
    }
  } catch (const YAML::Exception& e) {
    *error = cases_yaml + ": " + e.what();
    return std::nullopt;
  }
  return out;
}

}  // namespace sentinel::sigma_test
