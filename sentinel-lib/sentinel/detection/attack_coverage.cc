#include "sentinel/detection/attack_coverage.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>
#include <utility>

namespace sentinel::detection {
namespace {

// Enterprise ATT&CK's tactics in matrix order. Newer releases file part of
// Defense Evasion under Stealth and Defense Impairment (the Sigma corpus
// already tags with them); they sit beside it.
constexpr std::array<AttackTactic, 16> kTactics{{
    {"reconnaissance", "Reconnaissance", "TA0043"},
    {"resource-development", "Resource Development", "TA0042"},
    {"initial-access", "Initial Access", "TA0001"},
    {"execution", "Execution", "TA0002"},
    {"persistence", "Persistence", "TA0003"},
    {"privilege-escalation", "Privilege Escalation", "TA0004"},
    {"defense-evasion", "Defense Evasion", "TA0005"},
    {"stealth", "Stealth", ""},
    {"defense-impairment", "Defense Impairment", ""},
    {"credential-access", "Credential Access", "TA0006"},
    {"discovery", "Discovery", "TA0007"},
    {"lateral-movement", "Lateral Movement", "TA0008"},
    {"collection", "Collection", "TA0009"},
    {"command-and-control", "Command and Control", "TA0011"},
    {"exfiltration", "Exfiltration", "TA0010"},
    {"impact", "Impact", "TA0040"},
}};

// The techniques Linux process detection meets (the built-in rules, the
// Sigma corpus, the usual Linux matrix): name and the tactics ATT&CK files
// them under (RC reconnaissance, RD resource development, IA initial access,
// EX execution, PS persistence, PE privilege escalation, DE defense evasion,
// CA credential access, DI discovery, LM lateral movement, CO collection, C2
// command and control, EF exfiltration, IM impact). Sorted by id.
struct KnownTechnique {
  std::string_view id, name, tactics;
  constexpr bool operator<(const KnownTechnique& o) const { return id < o.id; }
};
constexpr KnownTechnique kTechniques[] = {
    {"T1003", "OS Credential Dumping", "CA"},
    {"T1003.007", "Proc Filesystem", "CA"},
    {"T1003.008", "/etc/passwd and /etc/shadow", "CA"},
    {"T1005", "Data from Local System", "CO"},
    {"T1007", "System Service Discovery", "DI"},
    {"T1014", "Rootkit", "DE"},
    {"T1016", "System Network Configuration Discovery", "DI"},
    {"T1018", "Remote System Discovery", "DI"},
    {"T1021", "Remote Services", "LM"},
    {"T1021.004", "SSH", "LM"},
    {"T1027", "Obfuscated Files or Information", "DE"},
    {"T1027.010", "Command Obfuscation", "DE"},
    {"T1027.011", "Fileless Storage", "DE"},
    {"T1033", "System Owner/User Discovery", "DI"},
    {"T1036", "Masquerading", "DE"},
    {"T1036.004", "Masquerade Task or Service", "DE"},
    {"T1036.005", "Match Legitimate Name or Location", "DE"},
    {"T1036.006", "Space after Filename", "DE"},
    {"T1037", "Boot or Logon Initialization Scripts", "PS,PE"},
    {"T1037.004", "RC Scripts", "PS,PE"},
    {"T1040", "Network Sniffing", "CA,DI"},
    {"T1041", "Exfiltration Over C2 Channel", "EF"},
    {"T1046", "Network Service Discovery", "DI"},
    {"T1048", "Exfiltration Over Alternative Protocol", "EF"},
    {"T1048.003", "Exfiltration Over Unencrypted Non-C2 Protocol", "EF"},
    {"T1049", "System Network Connections Discovery", "DI"},
    {"T1053", "Scheduled Task/Job", "EX,PS,PE"},
    {"T1053.002", "At", "EX,PS,PE"},
    {"T1053.003", "Cron", "EX,PS,PE"},
    {"T1053.006", "Systemd Timers", "EX,PS,PE"},
    {"T1055", "Process Injection", "DE,PE"},
    {"T1055.008", "Ptrace System Calls", "DE,PE"},
    {"T1055.009", "Proc Memory", "DE,PE"},
    {"T1056", "Input Capture", "CO,CA"},
    {"T1056.001", "Keylogging", "CO,CA"},
    {"T1057", "Process Discovery", "DI"},
    {"T1059", "Command and Scripting Interpreter", "EX"},
    {"T1059.003", "Windows Command Shell", "EX"},
    {"T1059.004", "Unix Shell", "EX"},
    {"T1059.006", "Python", "EX"},
    {"T1059.007", "JavaScript", "EX"},
    {"T1059.011", "Lua", "EX"},
    {"T1068", "Exploitation for Privilege Escalation", "PE"},
    {"T1069", "Permission Groups Discovery", "DI"},
    {"T1069.001", "Local Groups", "DI"},
    {"T1070", "Indicator Removal", "DE"},
    {"T1070.002", "Clear Linux or Mac System Logs", "DE"},
    {"T1070.003", "Clear Command History", "DE"},
    {"T1070.004", "File Deletion", "DE"},
    {"T1070.006", "Timestomp", "DE"},
    {"T1071", "Application Layer Protocol", "C2"},
    {"T1071.001", "Web Protocols", "C2"},
    {"T1074", "Data Staged", "CO"},
    {"T1074.001", "Local Data Staging", "CO"},
    {"T1078", "Valid Accounts", "DE,PS,PE,IA"},
    {"T1078.003", "Local Accounts", "DE,PS,PE,IA"},
    {"T1082", "System Information Discovery", "DI"},
    {"T1083", "File and Directory Discovery", "DI"},
    {"T1087", "Account Discovery", "DI"},
    {"T1087.001", "Local Account", "DI"},
    {"T1090", "Proxy", "C2"},
    {"T1090.002", "External Proxy", "C2"},
    {"T1095", "Non-Application Layer Protocol", "C2"},
    {"T1098", "Account Manipulation", "PS,PE"},
    {"T1098.004", "SSH Authorized Keys", "PS,PE"},
    {"T1105", "Ingress Tool Transfer", "C2"},
    {"T1110", "Brute Force", "CA"},
    {"T1113", "Screen Capture", "CO"},
    {"T1115", "Clipboard Data", "CO"},
    {"T1124", "System Time Discovery", "DI"},
    {"T1133", "External Remote Services", "PS,IA"},
    {"T1135", "Network Share Discovery", "DI"},
    {"T1136", "Create Account", "PS"},
    {"T1136.001", "Local Account", "PS"},
    {"T1140", "Deobfuscate/Decode Files or Information", "DE"},
    {"T1190", "Exploit Public-Facing Application", "IA"},
    {"T1195", "Supply Chain Compromise", "IA"},
    {"T1195.002", "Compromise Software Supply Chain", "IA"},
    {"T1201", "Password Policy Discovery", "DI"},
    {"T1203", "Exploitation for Client Execution", "EX"},
    {"T1204", "User Execution", "EX"},
    {"T1204.002", "Malicious File", "EX"},
    {"T1217", "Browser Information Discovery", "DI"},
    {"T1218", "System Binary Proxy Execution", "DE"},
    {"T1219", "Remote Access Software", "C2"},
    {"T1222", "File and Directory Permissions Modification", "DE"},
    {"T1222.002", "Linux and Mac File and Directory Permissions Modification", "DE"},
    {"T1485", "Data Destruction", "IM"},
    {"T1489", "Service Stop", "IM"},
    {"T1490", "Inhibit System Recovery", "IM"},
    {"T1496", "Resource Hijacking", "IM"},
    {"T1497", "Virtualization/Sandbox Evasion", "DE,DI"},
    {"T1497.001", "System Checks", "DE,DI"},
    {"T1505", "Server Software Component", "PS"},
    {"T1505.001", "SQL Stored Procedures", "PS"},
    {"T1505.003", "Web Shell", "PS"},
    {"T1518", "Software Discovery", "DI"},
    {"T1518.001", "Security Software Discovery", "DI"},
    {"T1529", "System Shutdown/Reboot", "IM"},
    {"T1531", "Account Access Removal", "IM"},
    {"T1543", "Create or Modify System Process", "PS,PE"},
    {"T1543.002", "Systemd Service", "PS,PE"},
    {"T1546", "Event Triggered Execution", "PE,PS"},
    {"T1546.004", "Unix Shell Configuration Modification", "PE,PS"},
    {"T1546.005", "Trap", "PE,PS"},
    {"T1547", "Boot or Logon Autostart Execution", "PS,PE"},
    {"T1547.006", "Kernel Modules and Extensions", "PS,PE"},
    {"T1548", "Abuse Elevation Control Mechanism", "PE,DE"},
    {"T1548.001", "Setuid and Setgid", "PE,DE"},
    {"T1548.003", "Sudo and Sudo Caching", "PE,DE"},
    {"T1552", "Unsecured Credentials", "CA"},
    {"T1552.001", "Credentials In Files", "CA"},
    {"T1552.003", "Shell History", "CA"},
    {"T1552.004", "Private Keys", "CA"},
    {"T1553", "Subvert Trust Controls", "DE"},
    {"T1553.004", "Install Root Certificate", "DE"},
    {"T1554", "Compromise Host Software Binary", "PS"},
    {"T1556", "Modify Authentication Process", "CA,DE,PS"},
    {"T1556.003", "Pluggable Authentication Modules", "CA,DE,PS"},
    {"T1560", "Archive Collected Data", "CO"},
    {"T1560.001", "Archive via Utility", "CO"},
    {"T1562", "Impair Defenses", "DE"},
    {"T1562.001", "Disable or Modify Tools", "DE"},
    {"T1562.003", "Impair Command History Logging", "DE"},
    {"T1562.004", "Disable or Modify System Firewall", "DE"},
    {"T1562.006", "Indicator Blocking", "DE"},
    {"T1562.012", "Disable or Modify Linux Audit System", "DE"},
    {"T1564", "Hide Artifacts", "DE"},
    {"T1564.001", "Hidden Files and Directories", "DE"},
    {"T1565", "Data Manipulation", "IM"},
    {"T1565.001", "Stored Data Manipulation", "IM"},
    {"T1567", "Exfiltration Over Web Service", "EF"},
    {"T1569", "System Services", "EX"},
    {"T1569.002", "Service Execution", "EX"},
    {"T1570", "Lateral Tool Transfer", "LM"},
    {"T1571", "Non-Standard Port", "C2"},
    {"T1572", "Protocol Tunneling", "C2"},
    {"T1574", "Hijack Execution Flow", "PS,PE,DE"},
    {"T1574.006", "Dynamic Linker Hijacking", "PS,PE,DE"},
    {"T1587", "Develop Capabilities", "RD"},
    {"T1592", "Gather Victim Host Information", "RC"},
    {"T1592.004", "Client Configurations", "RC"},
    {"T1593", "Search Open Websites/Domains", "RC"},
    {"T1593.003", "Code Repositories", "RC"},
    {"T1611", "Escape to Host", "PE"},
    {"T1613", "Container and Resource Discovery", "DI"},
    {"T1614", "System Location Discovery", "DI"},
    {"T1620", "Reflective Code Loading", "DE"},
    {"T1652", "Device Driver Discovery", "DI"},
    {"T1653", "Power Settings", "PS"},
};

static_assert(std::is_sorted(std::begin(kTechniques), std::end(kTechniques)),
              "kTechniques must be sorted by id");

// The two-letter codes of kTechniques, by kTactics index.
constexpr std::array<std::string_view, kTactics.size()> kTacticCodes{
    "RC", "RD", "IA", "EX", "PS", "PE", "DE", "", "", "CA", "DI", "LM", "CO", "C2", "EF", "IM"};
constexpr size_t kDefenseEvasion = 6;

const KnownTechnique* FindTechnique(std::string_view id) {
  auto it = std::lower_bound(std::begin(kTechniques), std::end(kTechniques), id,
                             [](const KnownTechnique& t, std::string_view key) { return t.id < key; });
  return it != std::end(kTechniques) && it->id == id ? &*it : nullptr;
}

// Whether ATT&CK files technique `t` under tactic `tactic` (Stealth and
// Defense Impairment: where it files it under Defense Evasion).
bool FiledUnder(const KnownTechnique& t, size_t tactic) {
  const std::string_view code =
      kTacticCodes[tactic].empty() ? kTacticCodes[kDefenseEvasion] : kTacticCodes[tactic];
  for (size_t i = 0; i + 2 <= t.tactics.size(); i += 3)
    if (t.tactics.substr(i, 2) == code) return true;
  return false;
}

// The rows technique `id` of a rule tagged with `tactics` goes to: the
// rule's tactics that ATT&CK files the technique under, else every tactic
// ATT&CK files it under; for a technique this build does not know, the
// rule's tactics.
std::vector<size_t> PlaceTechnique(std::string_view id, const std::vector<size_t>& tactics) {
  const KnownTechnique* t = FindTechnique(id);
  if (t == nullptr) return tactics;
  std::vector<size_t> out;
  for (size_t tactic : tactics)
    if (FiledUnder(*t, tactic)) out.push_back(tactic);
  if (!out.empty()) return out;
  for (size_t i = 0; i < kTacticCodes.size(); ++i)
    if (!kTacticCodes[i].empty() && FiledUnder(*t, i)) out.push_back(i);
  return out;
}

std::string NormalizedTag(std::string_view tag) {
  std::string t;
  for (char c : tag) t += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t.starts_with("attack.")) t.erase(0, 7);
  return t;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::span<const AttackTactic> AttackTactics() {
  return kTactics;
}

const AttackTactic* FindAttackTactic(std::string_view tag) {
  const std::string t = NormalizedTag(tag);
  for (const AttackTactic& tactic : kTactics)
    if (tactic.tag == t) return &tactic;
  return nullptr;
}

std::string_view AttackTechniqueName(std::string_view id) {
  const KnownTechnique* t = FindTechnique(id);
  return t != nullptr ? t->name : std::string_view{};
}

bool IsAttackTechniqueId(std::string_view id) {
  if (id.size() != 5 && id.size() != 9) return false;
  if (id[0] != 'T' || !AllDigits(id.substr(1, 4))) return false;
  return id.size() == 5 || (id[5] == '.' && AllDigits(id.substr(6)));
}

AttackCoverage BuildAttackCoverage(const std::vector<Rule>& rules) {
  AttackCoverage out;
  // tactic index -> technique -> rules
  std::map<size_t, std::map<std::string, std::set<std::string>>> cells;
  std::set<std::string> techniques;
  for (const Rule& r : rules) {
    ++out.rules;
    std::vector<size_t> tactics;
    for (const std::string& tag : r.tags)
      if (const AttackTactic* t = FindAttackTactic(tag))
        tactics.push_back(static_cast<size_t>(t - kTactics.data()));
    std::vector<std::string> ids;
    for (const std::string& m : r.mitre)
      if (IsAttackTechniqueId(m)) ids.push_back(m);
    if (ids.empty()) {
      out.without_technique.push_back(r.id);
      continue;
    }
    if (tactics.empty()) out.without_tactic.push_back(r.id);
    for (const std::string& id : ids) {
      techniques.insert(id);
      for (size_t t : PlaceTechnique(id, tactics)) cells[t][id].insert(r.id);
    }
  }
  for (auto& [tactic, by_technique] : cells) {
    CoverageRow row{&kTactics[tactic], {}};
    for (auto& [id, rule_ids] : by_technique)
      row.techniques.push_back({id, std::vector<std::string>(rule_ids.begin(), rule_ids.end())});
    out.rows.push_back(std::move(row));
  }
  out.techniques = techniques.size();
  return out;
}

std::string AttackCoverageMarkdown(const AttackCoverage& c) {
  std::string out = std::to_string(c.rules) + " rules, " + std::to_string(c.techniques) + " techniques, " +
                    std::to_string(c.rows.size()) + " tactics.\n\n";
  out += "| tactic | technique | rules |\n| --- | --- | --- |\n";
  for (const CoverageRow& row : c.rows) {
    std::string tactic(row.tactic->name);
    if (!row.tactic->id.empty()) tactic += " (" + std::string(row.tactic->id) + ")";
    for (const CoverageEntry& e : row.techniques) {
      std::string technique = e.technique;
      if (auto name = AttackTechniqueName(e.technique); !name.empty()) technique += " " + std::string(name);
      std::string rules;
      for (const std::string& id : e.rules) rules += (rules.empty() ? "" : ", ") + id;
      out += "| " + tactic + " | " + technique + " | " + rules + " |\n";
    }
  }
  if (!c.without_tactic.empty()) {
    out += "\nRules naming techniques but no tactic tag:";
    for (const std::string& id : c.without_tactic) out += " " + id;
    out += "\n";
  }
  return out;
}

}  // namespace sentinel::detection
