#include "sentinelcli/output/process_tree_text.h"

#include <cerrno>
#include <string>
#include <string_view>

#include "sentinel/base/escape.h"
#include "sentinel/base/time.h"
#include "sentinelcli/output/internal/value_format.h"
#include "sentinelcli/output/internal/writers.h"

namespace sentinel::cli {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kReset = "\x1b[0m";
constexpr std::string_view kBold = "\x1b[1m";
constexpr size_t kMinArgvWidth = 12;

std::string_view SeverityColour(std::string_view severity) {
  if (severity == "critical") return "\x1b[1;31m";
  if (severity == "high") return "\x1b[31m";
  if (severity == "medium") return "\x1b[33m";
  if (severity == "low") return "\x1b[36m";
  return {};
}

const ordered_json& Member(const ordered_json& j, const char* key) {
  static const ordered_json null_value;
  if (!j.is_object()) return null_value;
  auto it = j.find(key);
  return it == j.end() ? null_value : *it;
}

std::string Text(const ordered_json& v) {
  if (v.is_string()) return EscapeText(v.get_ref<const std::string&>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return {};
}

std::string Time(const ordered_json& v) {
  return v.is_number_integer() ? FormatIso8601Ms(v.get<int64_t>()) : std::string("?");
}

// The arguments joined by spaces, each escaped; "[name]" without argv.
std::string Argv(const ordered_json& argv, const ordered_json& name, const ordered_json& exe) {
  std::string out;
  if (argv.is_array() && !argv.empty()) {
    for (const auto& a : argv) {
      if (!out.empty()) out += ' ';
      const std::string arg = a.is_string() ? EscapeText(a.get_ref<const std::string&>()) : Text(a);
      const bool quote = arg.empty() || arg.find(' ') != std::string::npos;
      if (quote) out += '\'';
      out += arg;
      if (quote) out += '\'';
    }
    return out;
  }
  if (name.is_string()) return "[" + Text(name) + "]";
  if (exe.is_string()) return "[" + Text(exe) + "]";
  return "[?]";
}

std::string User(const ordered_json& node) {
  const ordered_json& name = Member(node, "user_name");
  if (name.is_string()) return Text(name);
  const ordered_json& uid = Member(node, "user_id");
  if (uid.is_number_integer()) return "uid " + Text(uid);
  return "?";
}

class TreeText {
 public:
  TreeText(std::string& out, const TerminalInfo& term) : out_(out), term_(term) {}

  void Node(const ordered_json& node, const std::string& prefix, const std::string& connector) {
    Line(node, prefix + connector);
    const std::string inner = prefix + (connector == "├─ " ? "│  " : connector.empty() ? "" : "   ");
    const ordered_json& children = Member(node, "children");
    const int64_t omitted = Member(node, "children_omitted").is_number_integer()
                                ? Member(node, "children_omitted").get<int64_t>()
                                : 0;
    const size_t count = children.is_array() ? children.size() : 0;
    Execs(node, inner + (count > 0 || omitted > 0 ? "│  " : "   "));
    for (size_t i = 0; i < count; ++i) {
      const bool last = i + 1 == count && omitted == 0;
      Node(children[i], inner, last ? "└─ " : "├─ ");
    }
    if (omitted > 0) {
      out_ += inner + "└─ … " + std::to_string(omitted) + " more " + (omitted == 1 ? "child" : "children") +
              " not shown\n";
    }
  }

 private:
  void Line(const ordered_json& node, const std::string& lead) {
    const bool target = Member(node, "is_target") == true;
    std::string head;
    if (target) head += "▶ ";
    head += Time(Member(node, "start_time")) + "  pid " + Text(Member(node, "pid")) + "  " + User(node);
    const ordered_json& code = Member(node, "exit_code");
    if (code.is_number_integer()) head += "  exit " + Text(code);
    head += "  ";
    std::string tags, plain_tags;
    const ordered_json& alerts = Member(node, "alerts");
    if (alerts.is_array()) {
      for (const auto& a : alerts) {
        const std::string tag = "[ALERT #" + Text(Member(a, "id")) + " " + Text(Member(a, "severity")) + " " +
                                Text(Member(a, "rule_id")) + "]";
        plain_tags += "  " + tag;
        const std::string_view colour =
            term_.color
                ? SeverityColour(Member(a, "severity").is_string() ? Member(a, "severity").get<std::string>()
                                                                   : std::string())
                : std::string_view();
        tags += "  ";
        tags += colour.empty() ? tag : std::string(colour) + tag + std::string(kReset);
      }
    }
    std::string argv = Argv(Member(node, "command_line"), Member(node, "name"), Member(node, "exe_path"));
    Fit(argv,
        internal::DisplayWidth(lead) + internal::DisplayWidth(head) + internal::DisplayWidth(plain_tags));
    if (target && term_.color) {
      out_ += lead + std::string(kBold) + head + argv + std::string(kReset) + tags + "\n";
    } else {
      out_ += lead + head + argv + tags + "\n";
    }
  }

  // Each exec of a process that exec'd more than once.
  void Execs(const ordered_json& node, const std::string& prefix) {
    const ordered_json& execs = Member(node, "execs");
    if (!execs.is_array() || execs.size() < 2) return;
    for (const auto& e : execs) {
      std::string head = prefix + "· exec " + Time(Member(e, "time")) + "  ";
      std::string argv = Argv(Member(e, "command_line"), ordered_json(), Member(e, "exe_path"));
      Fit(argv, internal::DisplayWidth(head));
      out_ += head + argv + "\n";
    }
  }

  // Cuts the arguments so the line fits the terminal (never below kMinArgvWidth).
  void Fit(std::string& argv, size_t rest) const {
    if (term_.width <= 0) return;
    const size_t width = static_cast<size_t>(term_.width);
    const size_t room = rest + kMinArgvWidth >= width ? kMinArgvWidth : width - rest;
    internal::DisplayText t{argv, internal::DisplayWidth(argv)};
    internal::TruncateToWidth(t, room);
    argv = std::move(t.text);
  }

  std::string& out_;
  const TerminalInfo& term_;
};

}  // namespace

Status WriteProcessTreeText(std::ostream& out, const ordered_json& tree, const TerminalInfo& term) {
  const ordered_json& root = Member(tree, "root");
  if (!root.is_object()) return InvalidArgumentError("a process tree needs a \"root\" object");
  std::string text;
  try {
    TreeText(text, term).Node(root, "", "");
  } catch (const std::exception& e) {
    return InternalError(std::string("formatting the process tree: ") + e.what());
  }
  if (Member(tree, "truncated") == true) {
    text += "(limits reached: some of the tree is not shown; the JSON form counts what was left out)\n";
  }
  errno = 0;
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.flush();
  if (out.fail()) return internal::OutputError(errno);
  return Status::Ok();
}

}  // namespace sentinel::cli
