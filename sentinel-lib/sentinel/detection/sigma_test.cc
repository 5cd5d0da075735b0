#include "sentinel/detection/sigma.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sentinel/base/strings.h"
#include "sentinel/detection/sigma_test_util.h"
#include "sentinel/testing/temp_dir.h"

namespace sentinel::detection {
namespace {

using sigma_testing::Exec;
using sigma_testing::ExecTable;

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// A Sigma rule around `detection` (its lines, indented under detection:).
std::string Doc(const std::string& detection, const std::string& extra = "") {
  return "title: Test rule\n"
         "id: 0f5b4d0c-1111-4a2b-9c3d-123456789abc\n"
         "status: test\n"
         "author: Ada Example\n"
         "logsource:\n"
         "    product: linux\n"
         "    category: process_creation\n"
         "detection:\n" +
         detection + "level: high\n" + extra;
}

class SigmaTest : public ::testing::Test {
 protected:
  // The pids `detection` matches among `execs`: through the translated SQL
  // in the sandbox and through EvaluateSigma, which must agree.
  std::set<int64_t> Match(const std::string& detection, const std::vector<Exec>& execs) {
    auto parsed = ParseSigmaRule(Doc(detection), "t.yml");
    EXPECT_TRUE(parsed.ok()) << parsed.status().message();
    if (!parsed.ok()) return {};
    Rule rule = SigmaToRule(*parsed, "t.yml");
    table_.Insert(execs);
    std::set<int64_t> sql = table_.SqlMatches(rule);
    std::set<int64_t> eval = sigma_testing::EvalMatches(*parsed, execs);
    EXPECT_EQ(sql, eval) << rule.query;
    return sql;
  }

  std::string Refusal(const std::string& text) {
    auto r = ConvertSigmaRule(text, "bad.yml");
    EXPECT_FALSE(r.ok()) << "accepted: " << (r.ok() ? r->query : "");
    return r.ok() ? "" : r.status().message();
  }

  ExecTable table_;
};

Exec Cmd(int64_t pid, std::string image, std::string cmd) {
  Exec e;
  e.pid = pid;
  e.image = std::move(image);
  e.command_line = std::move(cmd);
  return e;
}

using Pids = std::set<int64_t>;

TEST_F(SigmaTest, MatchingIsCaseInsensitiveByDefaultForAsciiOnly) {
  EXPECT_EQ(Match("    sel:\n        CommandLine|contains: 'WGET http'\n    condition: sel\n",
                  {Cmd(1, "/usr/bin/wget", "wget http://x"), Cmd(2, "/usr/bin/wget", "WgEt HTTP://x"),
                   Cmd(3, "/usr/bin/curl", "curl http://x")}),
            (Pids{1, 2}));
  // SQLite LIKE folds ASCII letters only (docs/sigma.md): É is not é.
  EXPECT_EQ(Match("    sel:\n        CommandLine|contains: 'café'\n    condition: sel\n",
                  {Cmd(1, "/bin/echo", "echo CAFé"), Cmd(2, "/bin/echo", "echo CAFÉ")}),
            (Pids{1}));
  EXPECT_EQ(Match("    sel:\n        Image: '/USR/BIN/ID'\n    condition: sel\n",
                  {Cmd(1, "/usr/bin/id", "id"), Cmd(2, "/usr/bin/idx", "idx")}),
            (Pids{1}));
}

TEST_F(SigmaTest, ReIsCaseSensitiveUnlessFlagged) {
  const std::vector<Exec> execs = {Cmd(1, "/sbin/auditctl", "auditctl -D"),
                                   Cmd(2, "/sbin/auditctl", "auditctl -d"),
                                   Cmd(3, "/sbin/auditctl", "auditctl -l")};
  EXPECT_EQ(Match("    sel:\n        CommandLine|re: '-D'\n    condition: sel\n", execs), (Pids{1}));
  EXPECT_EQ(Match("    sel:\n        CommandLine|re|i: '-D'\n    condition: sel\n", execs), (Pids{1, 2}));
  // An unanchored search; ^ anchors; m and s as RE2 flags.
  EXPECT_EQ(Match("    sel:\n        CommandLine|re: '^auditctl -[dl]$'\n    condition: sel\n", execs),
            (Pids{2, 3}));
  EXPECT_EQ(Match("    sel:\n        CommandLine|re|s: 'a.b'\n    condition: sel\n",
                  {Cmd(1, "/bin/x", "a\nb"), Cmd(2, "/bin/x", "ab")}),
            (Pids{1}));
  EXPECT_EQ(Match("    sel:\n        CommandLine|re|m: '^b$'\n    condition: sel\n",
                  {Cmd(1, "/bin/x", "a\nb"), Cmd(2, "/bin/x", "ab")}),
            (Pids{1}));
}

TEST_F(SigmaTest, WildcardsInsideContainsAndStartswith) {
  const std::vector<Exec> execs = {Cmd(1, "/bin/sed", "sed -i /^x/d /etc/ssh/sshd.conf"),
                                   Cmd(2, "/bin/sed", "sed -i s/a/b/ /etc/conf"),
                                   Cmd(3, "/bin/sed", "xsed -i /^ /etc/a.conf")};
  EXPECT_EQ(Match("    sel:\n        CommandLine|contains: '/etc/*.conf'\n    condition: sel\n", execs),
            (Pids{1, 3}));
  EXPECT_EQ(Match("    sel:\n        CommandLine|startswith: 'sed -i /^*'\n    condition: sel\n", execs),
            (Pids{1}));
  // ? is one character, a multi-byte one included.
  EXPECT_EQ(Match("    sel:\n        CommandLine: 'a?c'\n    condition: sel\n",
                  {Cmd(1, "/bin/x", "abc"), Cmd(2, "/bin/x", "aéc"), Cmd(3, "/bin/x", "ac"),
                   Cmd(4, "/bin/x", "abbc")}),
            (Pids{1, 2}));
  // Bytes that are not UTF-8 count as SQLite's LIKE reads them: a stray
  // continuation byte is one character, a lead byte takes the continuation
  // bytes after it (the evaluator must agree: the prefilter relies on it).
  EXPECT_EQ(Match("    sel:\n        CommandLine: 'a??c'\n    condition: sel\n", {Cmd(1, "/bin/x",
                                                                                      "a\x80\x80"
                                                                                      "c"),
                                                                                  Cmd(2, "/bin/x",
                                                                                      "a\xC3\x80\x80"
                                                                                      "c"),
                                                                                  Cmd(3, "/bin/x",
                                                                                      "a\xC3\x80"
                                                                                      "bc")}),
            (Pids{1, 3}));
  EXPECT_EQ(
      Match("    sel:\n        CommandLine|contains: 'x?y'\n    condition: sel\n",
            {Cmd(1, "/bin/x", "\x80x\xBFy"), Cmd(2, "/bin/x", "x\xE0\x83\xA9y"), Cmd(3, "/bin/x", "xy")}),
      (Pids{1, 2}));
}

TEST_F(SigmaTest, BackslashIsLiteralUnlessBeforeAWildcardOrBackslash) {
  const std::vector<Exec> execs = {Cmd(1, "/bin/bash", "bash"), Cmd(2, "C:\\bash", "bash"),
                                   Cmd(3, "/x/a*b", "a*b"), Cmd(4, "/x/axb", "axb"),
                                   Cmd(5, "/x/a\\b", "a\\xb")};
  EXPECT_EQ(Match("    sel:\n        Image|endswith: '\\bash'\n    condition: sel\n", execs), (Pids{2}));
  EXPECT_EQ(Match("    sel:\n        CommandLine|contains: 'a\\*b'\n    condition: sel\n", execs), (Pids{3}));
  // \\* is a backslash followed by the wildcard.
  EXPECT_EQ(Match("    sel:\n        CommandLine|contains: 'a\\\\*b'\n    condition: sel\n", execs),
            (Pids{5}));
}

TEST_F(SigmaTest, PercentUnderscoreAndQuotesInValuesAreLiteral) {
  const std::vector<Exec> execs = {Cmd(1, "/bin/x", "chmod 50% a_b"), Cmd(2, "/bin/x", "chmod 500 axb"),
                                   Cmd(3, "/bin/x", "echo it's")};
  EXPECT_EQ(Match("    sel:\n        CommandLine|contains: '50%'\n    condition: sel\n", execs), (Pids{1}));
  EXPECT_EQ(Match("    sel:\n        CommandLine|endswith: 'a_b'\n    condition: sel\n", execs), (Pids{1}));
  EXPECT_EQ(Match("    sel:\n        CommandLine|contains: \"it's\"\n    condition: sel\n", execs),
            (Pids{3}));
  EXPECT_EQ(Match("    sel:\n        CommandLine|cased|contains: \"it's\"\n    condition: sel\n", execs),
            (Pids{3}));
}

TEST_F(SigmaTest, ValuesKeepTheirSpaces) {
  EXPECT_EQ(Match("    sel:\n        CommandLine|contains: ' -c '\n    condition: sel\n",
                  {Cmd(1, "/bin/sh", "sh -c id"), Cmd(2, "/bin/sh", "sh -c"), Cmd(3, "/bin/sh", "sh -cid")}),
            (Pids{1}));
}

TEST_F(SigmaTest, NotOfAMissingFieldHolds) {
  Exec no_parent = Cmd(1, "/bin/sh", "sh");
  Exec sshd_child = Cmd(2, "/bin/sh", "sh");
  sshd_child.parent_image = "/usr/sbin/sshd";
  Exec other_child = Cmd(3, "/bin/sh", "sh");
  other_child.parent_image = "/usr/bin/python3";
  const std::vector<Exec> execs = {no_parent, sshd_child, other_child};
  EXPECT_EQ(Match("    selection:\n        Image|endswith: '/sh'\n    filter:\n        ParentImage|endswith: "
                  "'/sshd'\n"
                  "    condition: selection and not filter\n",
                  execs),
            (Pids{1, 3}));
  // `not` over an OR / AND of terms on missing fields.
  EXPECT_EQ(Match("    filter_a:\n        ParentImage|endswith: '/sshd'\n    filter_b:\n        "
                  "ParentCommandLine|contains: 'x'\n"
                  "    condition: not 1 of filter_*\n",
                  execs),
            (Pids{1, 3}));
  EXPECT_EQ(
      Match("    filter:\n        ParentImage|endswith: '/sshd'\n        ParentCommandLine|contains: 'x'\n"
            "    condition: not filter\n",
            execs),
      (Pids{1, 2, 3}));
  // null matches a missing or empty field; exists checks presence.
  Exec empty_cwd = Cmd(4, "/bin/sh", "sh");
  empty_cwd.cwd = "";
  Exec no_cwd = Cmd(5, "/bin/sh", "sh");
  no_cwd.cwd = std::nullopt;
  EXPECT_EQ(
      Match("    sel:\n        CurrentDirectory: null\n    condition: sel\n", {no_parent, empty_cwd, no_cwd}),
      (Pids{4, 5}));
  EXPECT_EQ(Match("    sel:\n        CurrentDirectory|exists: true\n    condition: sel\n",
                  {no_parent, empty_cwd, no_cwd}),
            (Pids{1, 4}));
  EXPECT_EQ(Match("    sel:\n        CurrentDirectory|exists: false\n    condition: sel\n",
                  {no_parent, empty_cwd, no_cwd}),
            (Pids{5}));
}

TEST_F(SigmaTest, ListOfMapsIsAnOr) {
  EXPECT_EQ(Match("    sel:\n        - Image|endswith: '/nc'\n          CommandLine|contains: ' -e '\n"
                  "        - Image|endswith: '/ncat'\n    condition: sel\n",
                  {Cmd(1, "/bin/nc", "nc -e /bin/sh x 1"), Cmd(2, "/bin/nc", "nc -l 1"),
                   Cmd(3, "/usr/bin/ncat", "ncat"), Cmd(4, "/bin/sh", "sh -c 'nc -e'")}),
            (Pids{1, 3}));
}

TEST_F(SigmaTest, SameFieldTwiceWithDifferentModifiers) {
  EXPECT_EQ(Match("    sel:\n        CommandLine|contains|all:\n            - ' -a '\n            - ' -b '\n"
                  "        CommandLine|contains:\n            - 'x'\n            - 'y'\n    condition: sel\n",
                  {Cmd(1, "/bin/t", "t -a -b x"), Cmd(2, "/bin/t", "t -a y"), Cmd(3, "/bin/t", "t -b -a y "),
                   Cmd(4, "/bin/t", "t -a -b z")}),
            (Pids{1, 3}));
}

TEST_F(SigmaTest, OfBindsTighterThanOrAndNotTighterThanAnd) {
  const std::vector<Exec> execs = {Cmd(1, "/usr/bin/img", "plain"), Cmd(2, "/bin/other", "aaa bbb"),
                                   Cmd(3, "/bin/other", "aaa only"), Cmd(4, "/usr/bin/img", "aaa bbb")};
  const std::string ids =
      "    selection_img:\n        Image|endswith: '/img'\n"
      "    selection_cli_a:\n        CommandLine|contains: 'aaa'\n"
      "    selection_cli_b:\n        CommandLine|contains: 'bbb'\n";
  EXPECT_EQ(Match(ids + "    condition: selection_img or all of selection_cli_*\n", execs), (Pids{1, 2, 4}));
  EXPECT_EQ(Match(ids + "    condition: 1 of selection_cli_* and not selection_img\n", execs), (Pids{2, 3}));
  EXPECT_EQ(
      Match(
          ids + "    condition: not selection_img and selection_cli_b or selection_img and selection_cli_a\n",
          execs),
      (Pids{2, 4}));
  EXPECT_EQ(Match(ids + "    condition: all of them\n", execs), (Pids{4}));
  EXPECT_EQ(Match(ids + "    condition: 1 of them\n", execs), (Pids{1, 2, 3, 4}));
  // `them` leaves out identifiers starting with _.
  EXPECT_EQ(Match(ids + "    _never:\n        Image: '/nowhere'\n    condition: all of them\n", execs),
            (Pids{4}));
  EXPECT_EQ(
      Match(ids + "    condition:\n        - selection_img and selection_cli_a\n        - selection_cli_b\n",
            execs),
      (Pids{2, 4}));
}

TEST_F(SigmaTest, NestedMultiLineCondition) {
  // The shape of the corpus's CVE-2025-55182 rule, written over several lines.
  const std::string det =
      "    selection_parent:\n        ParentImage|endswith: '/node'\n"
      "    selection_generic_img:\n        Image|endswith: '/curl'\n"
      "    selection_generic_cli:\n        CommandLine|contains: '/etc/passwd'\n"
      "    selection_specific_sh:\n        Image|endswith: '/sh'\n"
      "    filter_main_default_shell_flag:\n        CommandLine|contains: ' -c '\n"
      "    selection_specific_cli:\n        CommandLine|contains: 'id'\n"
      "    selection_generic_child_cli:\n        CommandLine|contains: 'whoami'\n"
      "    condition: selection_parent and ( 1 of selection_generic_* or (selection_specific_sh and not\n"
      "        filter_main_default_shell_flag) or (all of selection_specific_* and "
      "selection_generic_child_cli) )\n";
  auto child = [](int64_t pid, std::string image, std::string cmd, std::string parent) {
    Exec e = Cmd(pid, std::move(image), std::move(cmd));
    e.parent_image = std::move(parent);
    return e;
  };
  EXPECT_EQ(Match(det, {child(1, "/usr/bin/curl", "curl x", "/usr/bin/node"),
                        child(2, "/usr/bin/curl", "curl x", "/usr/bin/python3"),
                        child(3, "/bin/sh", "sh script", "/usr/bin/node"),
                        child(4, "/bin/sh", "sh -c ls", "/usr/bin/node"),
                        child(5, "/bin/sh", "sh -c id; whoami", "/usr/bin/node"),
                        child(6, "/bin/cat", "cat /etc/passwd", "/usr/bin/node")}),
            (Pids{1, 3, 5, 6}));
}

TEST_F(SigmaTest, CasedUsesGlobWithItsSpecialCharactersEscaped) {
  const std::vector<Exec> execs = {Cmd(1, "/bin/x", "run ABC[1]*?"), Cmd(2, "/bin/x", "run abc[1]*?"),
                                   Cmd(3, "/bin/x", "run ABC1xy")};
  EXPECT_EQ(
      Match("    sel:\n        CommandLine|cased|contains: 'ABC[1]\\*\\?'\n    condition: sel\n", execs),
      (Pids{1}));
  // An unescaped * stays a wildcard: endswith 'C*' is "has a capital C".
  EXPECT_EQ(Match("    sel:\n        CommandLine|cased|endswith: 'C*'\n    condition: sel\n", execs),
            (Pids{1, 3}));
  EXPECT_EQ(Match("    sel:\n        CommandLine|cased|startswith: 'run ABC'\n    condition: sel\n", execs),
            (Pids{1, 3}));
}

TEST_F(SigmaTest, NumericFieldsCompareAsNumbers) {
  Exec root = Cmd(1, "/bin/sh", "sh");
  root.login_uid = 0;
  Exec user = Cmd(2, "/bin/sh", "sh");
  Exec unset = Cmd(3, "/bin/sh", "sh");
  unset.login_uid = std::nullopt;
  EXPECT_EQ(Match("    sel:\n        LogonId: 0\n    condition: sel\n", {root, user, unset}), (Pids{1}));
  EXPECT_EQ(Match("    sel:\n        ProcessId: 2\n    condition: sel\n", {root, user, unset}), (Pids{2}));
  EXPECT_EQ(Match("    sel:\n        User: ROOT\n    condition: sel\n", {root, user}), (Pids{}));
}

TEST_F(SigmaTest, WindashCoversEveryDash) {
  EXPECT_EQ(Match("    sel:\n        CommandLine|windash|contains: ' -exec '\n    condition: sel\n",
                  {Cmd(1, "/bin/find", "find . -exec sh"), Cmd(2, "/bin/find", "find . /exec sh"),
                   Cmd(3, "/bin/find", "find . \u2013exec sh"), Cmd(4, "/bin/find", "find . exec sh")}),
            (Pids{1, 2, 3}));
}

TEST_F(SigmaTest, Base64OffsetFindsTheValueAtAnyOffset) {
  // base64 of "<prefix>curl http" for prefixes of 0, 1 and 2 bytes (python3 -c base64.b64encode).
  const std::vector<Exec> execs = {
      Cmd(1, "/bin/sh", "echo Y3VybCBodHRwOi8veA== | base64 -d"),   // "curl http://x"
      Cmd(2, "/bin/sh", "echo eGN1cmwgaHR0cDovL3g= | base64 -d"),   // "xcurl http://x"
      Cmd(3, "/bin/sh", "echo eHhjdXJsIGh0dHA6Ly94 | base64 -d"),   // "xxcurl http://x"
      Cmd(4, "/bin/sh", "echo d2dldCBodHRwOi8veA== | base64 -d")};  // "wget http://x"
  EXPECT_EQ(
      Match("    sel:\n        CommandLine|base64offset|contains: 'curl http'\n    condition: sel\n", execs),
      (Pids{1, 2, 3}));
  EXPECT_EQ(
      Match("    sel:\n        CommandLine|base64|contains: 'curl http://x'\n    condition: sel\n", execs),
      (Pids{1}));
}

TEST_F(SigmaTest, TheRuleKeepsTheSigmaMetadata) {
  auto r = ConvertSigmaRule(Doc("    sel:\n        Image|endswith: '/id'\n    condition: sel\n",
                                "tags:\n    - attack.discovery\n    - attack.t1033\n    - attack.t1059.004\n"
                                "references:\n    - https://example.org/a\nfalsepositives:\n    - Admins\n"),
                            "t.yml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->id, "sigma-0f5b4d0c-1111-4a2b-9c3d-123456789abc");
  EXPECT_EQ(r->name, "Test rule");
  EXPECT_EQ(r->severity, models::Severity::kHigh);
  EXPECT_EQ(r->on, RuleTrigger::kExec);
  EXPECT_EQ(r->dedup_keys, (std::vector<std::string>{"pid", "start_time"}));
  EXPECT_EQ(r->mitre, (std::vector<std::string>{"T1033", "T1059.004"}));
  EXPECT_EQ(r->tags, (std::vector<std::string>{"attack.discovery", "attack.t1033", "attack.t1059.004"}));
  EXPECT_EQ(r->author, "Ada Example");
  EXPECT_EQ(r->status, "test");
  EXPECT_EQ(r->references, (std::vector<std::string>{"https://example.org/a"}));
  EXPECT_EQ(r->falsepositives, (std::vector<std::string>{"Admins"}));
  EXPECT_NE(r->query.find("CASE WHEN id IS NULL THEN 'scan' ELSE 'event' END AS source"), std::string::npos);
  // The native YAML reads back as the same rule (what `rules convert --output` writes).
  auto back = ParseRule(RuleToYaml(*r), "back.yaml");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->Checksum(), r->Checksum());
  EXPECT_EQ(back->author, r->author);
  EXPECT_EQ(back->sigma_id, "0f5b4d0c-1111-4a2b-9c3d-123456789abc");
  EXPECT_EQ(back->references, r->references);
  EXPECT_EQ(back->falsepositives, r->falsepositives);
  // informational -> low
  auto info = ConvertSigmaRule(
      Replace(Doc("    sel:\n        Image: x\n    condition: sel\n"), "level: high", "level: informational"),
      "t.yml");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->severity, models::Severity::kLow);
}

TEST_F(SigmaTest, CheaperTermsComeFirst) {
  auto r = ConvertSigmaRule(
      Doc("    sel:\n        CommandLine|re: 'x+'\n        CommandLine|contains:\n"
          "            - a\n            - b\n            - c\n        Image|endswith: '/node'\n"
          "    filter:\n        Image: '/usr/bin/node'\n    condition: sel and not filter\n"),
      "t.yml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto at = [&](std::string_view s) { return r->query.find(s); };
  EXPECT_LT(at("exe_path LIKE '%/node'"), at("command_text LIKE '%a%'"));
  EXPECT_LT(at("command_text LIKE '%c%'"), at("regexp("));
  EXPECT_LT(at("regexp("), at("IS NOT TRUE"));
}

TEST_F(SigmaTest, RefusalsNameTheFileTheConstructAndWhy) {
  const std::string sel = "    sel:\n        Image: x\n    condition: sel\n";
  EXPECT_EQ(Refusal(Replace(Doc(sel), "category: process_creation", "category: file_event")),
            "bad.yml: logsource: product: linux, category: file_event is not supported (only product: linux, "
            "category: process_creation)");
  EXPECT_EQ(Refusal(Replace(Doc(sel), "product: linux", "product: windows")).substr(0, 22),
            "bad.yml: logsource: pr");
  EXPECT_NE(Refusal(Doc("    sel:\n        Image: x\n    condition: sel | count() > 5\n"))
                .find("bad.yml: detection.condition: aggregation"),
            std::string::npos);
  EXPECT_NE(Refusal(Doc("    a:\n        Image: x\n    b:\n        Image: y\n    condition: a near b\n"))
                .find("detection.condition: near is not supported"),
            std::string::npos);
  EXPECT_NE(Refusal(Doc(sel + "    timeframe: 5m\n")).find("detection.timeframe: time windows"),
            std::string::npos);
  EXPECT_NE(Refusal(Doc("    sel:\n        DestinationIp|cidr: 10.0.0.0/8\n    condition: sel\n"))
                .find("field \"DestinationIp\" is not supported"),
            std::string::npos);
  EXPECT_EQ(
      Refusal(Doc("    sel:\n        CommandLine|cidr: 10.0.0.0/8\n    condition: sel\n")),
      "bad.yml: detection.sel.CommandLine|cidr: modifier \"cidr\" is not supported (no IP address field in "
      "process creation)");
  EXPECT_NE(Refusal(Doc("    sel:\n        CommandLine|utf16le|base64: x\n    condition: sel\n"))
                .find("modifier \"utf16le\" is not supported"),
            std::string::npos);
  EXPECT_NE(Refusal(Doc("    sel:\n        OriginalFileName: x.exe\n    condition: sel\n"))
                .find("detection.sel.OriginalFileName: field \"OriginalFileName\" is not supported"),
            std::string::npos);
  EXPECT_NE(Refusal(Doc("    keywords:\n        - mimikatz\n    condition: keywords\n"))
                .find("detection.keywords: keyword (field-less) search is not supported"),
            std::string::npos);
  EXPECT_NE(
      Refusal(Doc(sel) + "---\ntitle: c\ncorrelation:\n    type: event_count\n").find("2 YAML documents"),
      std::string::npos);
  EXPECT_NE(Refusal(Doc("    sel:\n        Image: x\n    condition: 2 of sel*\n"))
                .find("\"2\" of is not supported"),
            std::string::npos);
  EXPECT_NE(Refusal(Doc("    sel:\n        Image: x\n    condition: sel and other\n"))
                .find("unknown search identifier \"other\""),
            std::string::npos);
  EXPECT_NE(Refusal(Doc("    sel:\n        Image: x\n    condition: 1 of filter_*\n"))
                .find("pattern \"filter_*\" matches no search identifier"),
            std::string::npos);
  EXPECT_NE(Refusal(Doc("    sel:\n        CommandLine|re: '(a)\\1'\n    condition: sel\n"))
                .find("detection.sel.CommandLine|re: regexp(): invalid pattern"),
            std::string::npos);
  EXPECT_NE(Refusal(Doc("    sel:\n        Image: x\n    condition: (sel\n")).find("missing )"),
            std::string::npos);
  EXPECT_NE(Refusal(Replace(Doc(sel), "level: high", "level: severe")).find("bad.yml: level:"),
            std::string::npos);
}

TEST_F(SigmaTest, ADetectionThatExpandsWithoutBoundIsRefused) {
  // 200 values named 101 times by the condition: 20,200 terms.
  std::string det = "    big:\n        CommandLine|contains:\n";
  for (int i = 0; i < 200; ++i) det += "            - v" + std::to_string(i) + "\n";
  std::string cond = "big";
  for (int i = 0; i < 100; ++i) cond += " and big";
  EXPECT_NE(Refusal(Doc(det + "    condition: " + cond + "\n"))
                .find("expands to more than 20000 terms, 96 KiB of values or 100000 regular"),
            std::string::npos);
  EXPECT_TRUE(ConvertSigmaRule(Doc(det + "    condition: big and big\n"), "ok.yml").ok());
  // 40 patterns of several thousand instructions each (`.` is a UTF-8 decoder).
  std::string re = "    re:\n        CommandLine|re:\n";
  for (int i = 0; i < 40; ++i) re += "            - '" + std::to_string(i) + ".{1000}'\n";
  EXPECT_NE(Refusal(Doc(re + "    condition: re\n")).find("100000 regular expression instructions"),
            std::string::npos);
  // 30 values of 4 KiB: 120 KiB.
  std::string wide = "    wide:\n        CommandLine|contains:\n";
  for (int i = 0; i < 30; ++i) wide += "            - '" + std::to_string(i) + std::string(4096, 'x') + "'\n";
  EXPECT_NE(Refusal(Doc(wide + "    condition: wide\n"))
                .find("detection.wide.CommandLine|contains: the detection expands"),
            std::string::npos);
}

TEST(SigmaDocumentTest, TellsSigmaFromNativeRules) {
  EXPECT_TRUE(IsSigmaDocument(Doc("    sel:\n        Image: x\n    condition: sel\n")));
  EXPECT_FALSE(IsSigmaDocument("id: proc-x\nname: x\nseverity: low\nquery: SELECT 1\n"));
  EXPECT_FALSE(IsSigmaDocument("logsource: {product: linux}\n"));
  EXPECT_FALSE(IsSigmaDocument("{{{ not yaml"));
}

TEST(RuleTest, ASigmaFileInARulesDirIsTranslatedOnLoad) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("sigma.yml"),
                     "title: Netcat listener\n"
                     "id: 7C1D0B4E-0000-4000-8000-000000000001\n"
                     "author: Ada Example\n"
                     "logsource:\n  product: linux\n  category: process_creation\n"
                     "detection:\n  sel:\n    Image|endswith: /nc\n    CommandLine|contains: ' -l'\n"
                     "  condition: sel\nlevel: medium\ntags: [attack.t1095]\n");
  testing::WriteFile(dir.File("refused.yml"),
                     "title: x\nid: 1\nlogsource: {product: windows, category: process_creation}\n"
                     "detection: {sel: {Image: x}, condition: sel}\n");
  RuleSet set = LoadRuleSet(false, {dir.path()});
  ASSERT_EQ(set.rules.size(), 1u);
  const Rule& r = set.rules[0];
  EXPECT_EQ(r.id, "sigma-7c1d0b4e-0000-4000-8000-000000000001");
  EXPECT_EQ(r.on, RuleTrigger::kExec);
  EXPECT_EQ(r.author, "Ada Example");
  EXPECT_EQ(r.mitre, (std::vector<std::string>{"T1095"}));
  EXPECT_EQ(r.source_path, dir.File("sigma.yml"));
  ASSERT_EQ(set.problems.size(), 1u);
  EXPECT_NE(set.problems[0].status.message().find(dir.File("refused.yml") + ": logsource: product: windows"),
            std::string::npos)
      << set.problems[0].status.message();
}

}  // namespace
}  // namespace sentinel::detection
