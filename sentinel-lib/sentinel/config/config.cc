#include "sentinel/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _WIN32
#include <io.h>
#include <windows.h>
#endif
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <utility>

#include "sentinel/base/escape.h"
#include "sentinel/base/features.h"
#include "sentinel/base/files.h"
#include "sentinel/base/strings.h"
#include "sentinel/config/internal/feature_checks.h"
#include "sentinel/config/internal/schema.h"
#include "sentinel/crypto/sha256.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX leaves it undeclared

namespace sentinel::config {
namespace {

using internal::BoolRule;
using internal::Describe;
using internal::IntRule;
using internal::Key;
using internal::ListRule;
using internal::MapRule;
using internal::SectionRule;
using internal::SinkListRule;
using internal::StrRule;

constexpr size_t kMaxFileBytes = size_t{1} << 20;
constexpr std::string_view kEnvPrefix = "SENTINELD_";
// SENTINELD_ variables the product itself sets or reads that are not configuration keys:
// procmond learns its supervisor's pid (sentinelagent/supervisor.h), the install step can be
// skipped (cmake/InstallSystem.cmake). Any other SENTINELD_ name must be a configuration key.
constexpr std::array<std::string_view, 2> kProductEnvVars = {"SENTINELD_SUPERVISOR_PID",
                                                             "SENTINELD_SKIP_SETUP"};

// ---------------------------------------------------------------------------------------------
// Small helpers.

std::string JoinPath(std::string_view prefix, std::string_view key) {
  std::string out(prefix);
  if (!out.empty()) out += '.';
  out += key;
  return out;
}

std::string Quoted(std::string_view s) {
  return QuoteForMessage(s);
}

bool IsPlainScalar(const YAML::Node& n) {
  return n.IsScalar() && n.Tag() == "?";
}

std::optional<bool> ParseBoolWord(std::string_view s) {
  std::string w = ToLower(s);
  if (w == "true" || w == "yes" || w == "on") return true;
  if (w == "false" || w == "no" || w == "off") return false;
  return std::nullopt;
}

// How a value appears after "got": numbers and booleans bare, other text quoted, containers named.
std::string Render(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined: return "nothing";
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Sequence: return n.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: break;
  }
  const std::string& text = n.Scalar();
  bool bare =
      IsPlainScalar(n) && text.size() <= 80 && (ParseInt64(text) || ParseDouble(text) || ParseBoolWord(text));
  return bare ? text : Quoted(text);
}

std::string ChoicesText(std::span<const std::string_view> choices) {
  std::string out = "one of ";
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i) out += ", ";
    out += choices[i].empty() ? std::string("\"\"") : std::string(choices[i]);
  }
  return out;
}

// What a rule accepts, worded for "expected ..." (also Keys().expected).
std::string Expected(const IntRule& r) {
  if (r.max != internal::kNoLimit) {
    return "an integer from " + std::to_string(r.min) + " to " + std::to_string(r.max);
  }
  if (r.min == 1) return "a positive integer";
  if (r.min == 0) return "a non-negative integer";
  return "an integer of at least " + std::to_string(r.min);
}
std::string Expected(const BoolRule&) {
  return "true or false";
}
std::string Expected(const StrRule& r) {
  return r.choices.empty() ? std::string(r.expected) : ChoicesText(r.choices);
}
std::string Expected(const ListRule& r) {
  return std::string(r.expected);
}
std::string Expected(const MapRule& r) {
  return std::string(r.expected);
}
std::string Expected(const SectionRule&) {
  return "a mapping";
}
std::string Expected(const SinkListRule&) {
  return "a list of sinks (mappings with name and type)";
}

// A type mismatch names the kind of integer only, so the message reads like the SPEC's
// "expected a positive integer, got "fast""; the full range is given when a number is out of it.
std::string ExpectedIntKind(const IntRule& r) {
  if (r.min == 1) return "a positive integer";
  if (r.min == 0) return "a non-negative integer";
  return "an integer";
}

struct SinkScope {
  unsigned mask = internal::kAnySink;
  std::string_view type;  // empty outside sink entries
};

SinkScope ScopeOf(std::string_view type) {
  for (size_t i = 0; i < internal::kSinkTypes.size(); ++i) {
    if (internal::kSinkTypes[i] == type) return {1u << i, internal::kSinkTypes[i]};
  }
  return {};
}

bool Applies(const Key& key, const SinkScope& scope) {
  return (key.sink_types & scope.mask) != 0;
}

std::string Article(std::string_view word) {
  return (!word.empty() && std::string_view("aeiou").find(word[0]) != std::string_view::npos) ? "an" : "a";
}

// ---------------------------------------------------------------------------------------------
// Applying one layer.

// Everything applied so far: the config, and for each key path the layer that set it last, so a
// rule spanning two keys can blame the later one.
struct LoadState {
  Config config;
  std::vector<std::string> sources;          // LoadedConfig::sources
  std::vector<std::string> message_sources;  // by layer rank, as messages name them
  std::map<std::string, size_t> origin;      // key path -> layer rank (absent: built-in default)
};

// One layer being applied: where its values come from, for messages.
class Layer {
 public:
  Layer(LoadState& state, std::string message_source, std::string source_entry)
      : state_(state), rank_(state.message_sources.size()) {
    state.message_sources.push_back(std::move(message_source));
    state.sources.push_back(std::move(source_entry));
  }

  const std::string& source() const { return state_.message_sources[rank_]; }

  Status Fail(std::string_view path, std::string_view what) const {
    std::string msg = source() + ": ";
    if (!path.empty()) msg.append(path).append(": ");
    msg.append(what);
    return InvalidArgumentError(std::move(msg));
  }

  void Set(const std::string& path) { state_.origin[path] = rank_; }

 private:
  LoadState& state_;
  size_t rank_;
};

template <class T>
Status ApplyMapping(const YAML::Node& node, const std::string& path, T& out, Layer& layer, SinkScope scope);

Status ParseString(const YAML::Node& n, const StrRule& rule, const std::string& path, std::string& out,
                   const Layer& layer) {
  if (!n.IsScalar()) return layer.Fail(path, "expected " + Expected(rule) + ", got " + Render(n));
  const std::string& text = n.Scalar();
  // URLs may carry credentials (userinfo, ?token=, webhook path tokens): never echoed (base RedactUrl).
  const bool url = rule.valid == internal::IsHttpUrl || rule.valid == internal::IsSmtpUrl ||
                   rule.valid == internal::IsNatsUrl;
  const std::string shown = Quoted(url ? RedactUrl(text) : text);
  if (!internal::IsCleanText(text)) {
    return layer.Fail(path, "expected UTF-8 text without control characters, got " + shown);
  }
  bool ok = rule.choices.empty()
                ? (rule.valid == nullptr || rule.valid(text))
                : std::find(rule.choices.begin(), rule.choices.end(), text) != rule.choices.end();
  if (!ok) return layer.Fail(path, "expected " + Expected(rule) + ", got " + shown);
  out = text;
  return Status::Ok();
}

template <class T>
requires std::is_integral_v<T> &&(!std::is_same_v<T, bool>)Status
    Parse(const YAML::Node& n, const IntRule& rule, const std::string& path, T& out, Layer& layer) {
  std::optional<int64_t> v = IsPlainScalar(n) ? ParseInt64(n.Scalar()) : std::nullopt;
  if (!v) return layer.Fail(path, "expected " + ExpectedIntKind(rule) + ", got " + Render(n));
  if (*v < rule.min || *v > rule.max) {
    return layer.Fail(path, "expected " + Expected(rule) + ", got " + std::to_string(*v));
  }
  out = static_cast<T>(*v);  // in range: the rules of int members fit an int
  return Status::Ok();
}

Status Parse(const YAML::Node& n, const BoolRule& rule, const std::string& path, bool& out, Layer& layer) {
  std::optional<bool> v = IsPlainScalar(n) ? ParseBoolWord(n.Scalar()) : std::nullopt;
  if (!v) return layer.Fail(path, "expected " + Expected(rule) + ", got " + Render(n));
  out = *v;
  return Status::Ok();
}

Status Parse(const YAML::Node& n, const StrRule& rule, const std::string& path, std::string& out,
             Layer& layer) {
  return ParseString(n, rule, path, out, layer);
}

Status Parse(const YAML::Node& n, const ListRule& rule, const std::string& path,
             std::vector<std::string>& out, Layer& layer) {
  if (!n.IsNull() && !n.IsSequence())
    return layer.Fail(path, "expected " + Expected(rule) + ", got " + Render(n));
  if (rule.non_empty && n.size() == 0) {
    return layer.Fail(path, "expected " + Expected(rule) + ", got " + Render(n));
  }
  std::vector<std::string> items;
  for (size_t i = 0; i < n.size(); ++i) {
    std::string item_path = path + "[" + std::to_string(i) + "]";
    std::string item;
    RETURN_IF_ERROR(ParseString(n[i], rule.element, item_path, item, layer));
    if (std::find(items.begin(), items.end(), item) != items.end()) {
      return layer.Fail(item_path, Quoted(item) + " is listed twice");
    }
    items.push_back(std::move(item));
  }
  out = std::move(items);  // lists are replaced whole
  return Status::Ok();
}

Status Parse(const YAML::Node& n, const MapRule& rule, const std::string& path,
             std::map<std::string, std::string>& out, Layer& layer) {
  if (n.IsNull()) return Status::Ok();
  if (!n.IsMap()) return layer.Fail(path, "expected " + Expected(rule) + ", got " + Render(n));
  std::set<std::string> seen;
  for (const auto& entry : n) {
    std::string name;
    RETURN_IF_ERROR(ParseString(entry.first, rule.key, path, name, layer));
    std::string entry_path = JoinPath(path, name);
    if (!seen.insert(name).second) return layer.Fail(entry_path, "duplicate key");
    std::string value;
    RETURN_IF_ERROR(ParseString(entry.second, rule.value, entry_path, value, layer));
    out[name] = std::move(value);  // maps are merged key by key
  }
  return Status::Ok();
}

template <class S>
Status Parse(const YAML::Node& n, const SectionRule&, const std::string& path, S& out, Layer& layer) {
  return ApplyMapping(n, path, out, layer, SinkScope{});
}

// Collects the keys a struct declares, to refuse unknown ones and list the known ones.
class KeyNames {
 public:
  template <class T, class R>
  void operator()(const Key& key, const T&, const R&) {
    keys_.push_back(key);
  }

  // The distinct names valid in `scope`, in declaration order.
  std::vector<std::string> Names(const SinkScope& scope) const {
    std::vector<std::string> names;
    for (const Key& key : keys_) {
      if (Applies(key, scope) && std::find(names.begin(), names.end(), key.name) == names.end()) {
        names.emplace_back(key.name);
      }
    }
    return names;
  }

  Status Check(const std::string& name, const std::string& path, const SinkScope& scope,
               const Layer& layer) const {
    bool declared = false;
    for (const Key& key : keys_) {
      if (key.name != name) continue;
      if (Applies(key, scope)) return Status::Ok();
      declared = true;
    }
    if (declared) {
      return layer.Fail(path, "not valid for " + Article(scope.type) + " " + std::string(scope.type) +
                                  " sink (valid keys: " + Join(Names(scope), ", ") + ")");
    }
    std::string which =
        scope.type.empty() ? "known keys" : "known keys of " + std::string(scope.type) + " sinks";
    return layer.Fail(path, "unknown key (" + which + ": " + Join(Names(scope), ", ") + ")");
  }

  const std::vector<Key>& keys() const { return keys_; }

 private:
  std::vector<Key> keys_;
};

// A sink entry: name and type first (the type decides which other keys are allowed), then the
// keys of that type, then the type's required keys.
Status ParseSink(const YAML::Node& n, const std::string& path, SinkConfig& out, Layer& layer) {
  if (!n.IsMap()) {
    return layer.Fail(path, "expected a sink definition (a mapping with name and type), got " + Render(n));
  }
  if (!n["name"].IsDefined()) return layer.Fail(path + ".name", "required: every sink needs a unique name");
  if (!n["type"].IsDefined()) {
    return layer.Fail(path + ".type", "required: expected " + Expected(internal::kSinkType));
  }
  std::string type;
  RETURN_IF_ERROR(ParseString(n["type"], internal::kSinkType, path + ".type", type, layer));
  SinkScope scope = ScopeOf(type);
  SinkConfig sink = internal::DefaultSink(type);
  RETURN_IF_ERROR(ApplyMapping(n, path, sink, layer, scope));
  KeyNames names;
  Describe(names, std::as_const(sink));
  for (const Key& key : names.keys()) {
    if (key.required && Applies(key, scope) && !n[std::string(key.name)].IsDefined()) {
      return layer.Fail(JoinPath(path, key.name), "required for " + Article(type) + " " + type + " sink");
    }
  }
  // Keys of one sink that only make sense together (or apart).
  if (!sink.hmac_secret_env.empty() && !sink.hmac_secret_file.empty()) {
    return layer.Fail(path + ".hmac_secret_file",
                      "expected at most one of hmac_secret_env and hmac_secret_file");
  }
  if (sink.starttls && StartsWith(sink.smtp_url, "smtps://")) {
    return layer.Fail(path + ".starttls", "expected false with an smtps:// smtp_url (TLS from the start)");
  }
  if (!sink.password_env.empty() && sink.username.empty()) {
    return layer.Fail(path + ".password_env", "expected a username to go with it");
  }
  out = std::move(sink);
  return Status::Ok();
}

Status Parse(const YAML::Node& n, const SinkListRule& rule, const std::string& path,
             std::vector<SinkConfig>& out, Layer& layer) {
  if (!n.IsNull() && !n.IsSequence())
    return layer.Fail(path, "expected " + Expected(rule) + ", got " + Render(n));
  std::vector<SinkConfig> sinks;
  std::map<std::string, size_t> index_by_name;
  for (size_t i = 0; i < n.size(); ++i) {
    std::string sink_path = path + "[" + std::to_string(i) + "]";
    SinkConfig sink;
    RETURN_IF_ERROR(ParseSink(n[i], sink_path, sink, layer));
    auto [it, inserted] = index_by_name.emplace(sink.name, i);
    if (!inserted) {
      return layer.Fail(sink_path + ".name", "duplicate sink name " + Quoted(sink.name) + " (also " + path +
                                                 "[" + std::to_string(it->second) + "])");
    }
    sinks.push_back(std::move(sink));
  }
  out = std::move(sinks);  // lists are replaced whole
  return Status::Ok();
}

// Applies the keys present in one mapping to the members they name.
class Applier {
 public:
  Applier(const YAML::Node& node, const std::string& path, Layer& layer, SinkScope scope)
      : node_(node), path_(path), layer_(layer), scope_(scope) {}

  template <class T, class R>
  void operator()(const Key& key, T& member, const R& rule) {
    if (!status_.ok() || !Applies(key, scope_)) return;
    const YAML::Node value = node_[std::string(key.name)];  // const: lookup must not insert
    if (!value.IsDefined()) return;
    std::string path = JoinPath(path_, key.name);
    status_ = Parse(value, rule, path, member, layer_);
    if (status_.ok()) layer_.Set(path);
  }

  const Status& status() const { return status_; }

 private:
  const YAML::Node& node_;
  const std::string& path_;
  Layer& layer_;
  SinkScope scope_;
  Status status_;
};

template <class T>
Status ApplyMapping(const YAML::Node& node, const std::string& path, T& out, Layer& layer, SinkScope scope) {
  if (node.IsNull()) return Status::Ok();  // "section:" with everything commented out
  if (!node.IsMap()) {
    return layer.Fail(path, std::string("expected a mapping") + (path.empty() ? " at the top level" : "") +
                                ", got " + Render(node));
  }
  KeyNames names;
  Describe(names, std::as_const(out));
  // Unknown keys first, in file order, so a typo is reported as a typo rather than as a
  // consequence of it. yaml-cpp keeps duplicate keys silently; they are refused here.
  std::set<std::string> seen;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) return layer.Fail(path, "expected text keys, got " + Render(entry.first));
    const std::string& name = entry.first.Scalar();
    std::string key_path = JoinPath(path, name);
    if (!seen.insert(name).second) return layer.Fail(key_path, "duplicate key");
    RETURN_IF_ERROR(names.Check(name, key_path, scope, layer));
  }
  Applier applier(node, path, layer, scope);
  Describe(applier, out);
  return applier.status();
}

// Applies a whole document (file) or a wrapped single value (environment, command line).
Status ApplyRoot(const YAML::Node& root, Layer& layer, LoadState& state) {
  try {
    return ApplyMapping(root, "", state.config, layer, SinkScope{});
  } catch (const YAML::Exception& e) {  // not expected from reads of a parsed tree; never let it out
    return layer.Fail("", e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Sources.

// The file's text; nullopt when `optional` and the file does not exist.
Result<std::optional<std::string>> ReadConfigFile(const std::string& path, bool optional) {
  auto cannot_read = [&path](std::string_view why) {
    return InvalidArgumentError(path + ": cannot read: " + std::string(why));
  };
  // O_NONBLOCK: opening a FIFO must not hang; anything but a regular file is refused below.
#ifdef _WIN32
  UniqueFd owned(::_open(path.c_str(), _O_RDONLY | _O_BINARY | _O_NOINHERIT));
#else
  UniqueFd owned(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
#endif
  const int fd = owned.get();
  if (fd < 0) {
    int err = errno;
    if (optional && (err == ENOENT || err == ENOTDIR)) return std::optional<std::string>();
    return cannot_read(std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return cannot_read(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return cannot_read(std::strerror(EISDIR));
  if (!S_ISREG(st.st_mode)) return cannot_read("not a regular file");
  std::string text;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return cannot_read(std::strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes) return InvalidArgumentError(path + ": larger than 1 MiB, refused");
  }
  return std::optional<std::string>(std::move(text));
}

// Where each document of a YAML stream starts; the events themselves are not needed.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
  }
  void OnMapEnd() override {}
};

Status ApplyDocument(const std::string& text, const std::string& path, LoadState& state) {
  Layer layer(state, path, path);
  YAML::Node root;
  try {
    // Not YAML::LoadAll: yaml-cpp 0.7 (Debian 12) returns endless empty documents for some
    // malformed streams (a lone ",": jbeder/yaml-cpp#1040, found by fuzz/config_fuzz), allocating
    // until memory runs out. A document that starts where the previous one did read nothing.
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts docs;
    while (parser.HandleNextDocument(docs)) {
      const size_t n = docs.starts.size();
      if (n >= 2 && docs.starts[n - 1].pos == docs.starts[n - 2].pos) {
        const YAML::Mark& at = docs.starts[n - 1];
        return layer.Fail("", "line " + std::to_string(at.line + 1) + ", column " +
                                  std::to_string(at.column + 1) +
                                  ": not valid YAML (the parser read no document there)");
      }
    }
    if (docs.starts.size() > 1) {
      return layer.Fail("", "expected one YAML document, found " + std::to_string(docs.starts.size()));
    }
    if (docs.starts.size() == 1) root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return layer.Fail("", e.msg);
    return layer.Fail("", "line " + std::to_string(e.mark.line + 1) + ", column " +
                              std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return ApplyRoot(root, layer, state);
}

// Applies one value given as YAML text at a key path ({"collection", "interval_secs"}).
Status ApplyValue(const std::vector<std::string>& keys, const std::string& text, Layer& layer,
                  LoadState& state) {
  std::string path = Join(keys, ".");
  YAML::Node node;
  try {
    // An empty value is the empty string (e.g. http_listen "" to disable), not YAML's null.
    node = Trim(text).empty() ? YAML::Load("\"\"") : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return layer.Fail(path, "invalid YAML value (" + e.msg + "): " + Quoted(text));
  }
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
    YAML::Node parent(YAML::NodeType::Map);
    parent[*it] = node;
    node.reset(parent);  // rebind; operator= would write through to the child
  }
  return ApplyRoot(node, layer, state);
}

// Splits "COLLECTION__INTERVAL_SECS" on "__" into lower-case keys.
std::vector<std::string> EnvKeys(std::string_view rest) {
  std::vector<std::string> keys;
  while (true) {
    size_t sep = rest.find("__");
    keys.push_back(ToLower(rest.substr(0, sep)));
    if (sep == std::string_view::npos) return keys;
    rest.remove_prefix(sep + 2);
  }
}

// The top-level section names, upper-cased as in environment variable names.
std::vector<std::string> EnvSectionNames() {
  KeyNames names;
  const Config defaults;
  Describe(names, defaults);
  std::vector<std::string> out;
  for (const std::string& name : names.Names(SinkScope{})) out.push_back(ToUpper(name));
  return out;
}

// A SENTINELD_ variable that is not SENTINELD_<SECTION>__<KEY>[__<SUBKEY>] and not one of the
// product's own: refused, so a misspelt or half-written variable never goes unnoticed.
Status CheckEnvName(const std::string& name, const std::vector<std::string>& keys, const Layer& layer) {
  const std::string form = "expected SENTINELD_<SECTION>__<KEY>[__<SUBKEY>]";
  if (std::any_of(keys.begin(), keys.end(), [](const std::string& k) { return k.empty(); })) {
    return layer.Fail("", "not a configuration variable (" + form + ")");
  }
  if (keys.size() > 1) return Status::Ok();  // unknown sections and keys are reported as such later
  const std::vector<std::string> sections = EnvSectionNames();
  const std::string section = ToUpper(keys[0]);
  if (std::find(sections.begin(), sections.end(), section) != sections.end()) {
    return layer.Fail("", "names the section " + keys[0] + " but no key (expected " + name +
                              "__<KEY>, e.g. SENTINELD_COLLECTION__INTERVAL_SECS)");
  }
  std::string product;
  for (std::string_view own : kProductEnvVars) product += (product.empty() ? "" : ", ") + std::string(own);
  return layer.Fail("", "not a configuration variable: no section " + Quoted(keys[0]) + " (" + form +
                            " with SECTION one of " + Join(sections, ", ") +
                            "; the other SENTINELD_ variables are " + product + ")");
}

Status ApplyEnvironment(const std::vector<std::string>& environment, LoadState& state) {
  std::vector<std::pair<std::string, std::string>> vars;
  for (const std::string& entry : environment) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    std::string name = entry.substr(0, eq);
    if (!StartsWith(name, kEnvPrefix)) continue;
    if (std::find(kProductEnvVars.begin(), kProductEnvVars.end(), name) != kProductEnvVars.end()) continue;
    vars.emplace_back(std::move(name), entry.substr(eq + 1));
  }
  // Name order makes the result independent of environ's order and lets a deeper variable
  // (SENTINELD_ALERTING__RETRY__MAX_ATTEMPTS) refine a whole-section one (SENTINELD_ALERTING__RETRY).
  std::stable_sort(vars.begin(), vars.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [name, value] : vars) {
    Layer layer(state, "environment " + name, "environment " + name);
    std::vector<std::string> keys = EnvKeys(std::string_view(name).substr(kEnvPrefix.size()));
    RETURN_IF_ERROR(CheckEnvName(name, keys, layer));
    RETURN_IF_ERROR(ApplyValue(keys, value, layer, state));
  }
  return Status::Ok();
}

Status ApplyOverrides(const std::vector<std::pair<std::string, std::string>>& overrides, LoadState& state) {
  for (const auto& [path, value] : overrides) {
    Layer layer(state, "command line", "command line " + path);
    std::vector<std::string> keys = Split(path, '.');
    if (std::any_of(keys.begin(), keys.end(), [](const std::string& k) { return k.empty(); })) {
      return layer.Fail("",
                        "invalid key path " + Quoted(path) + " (expected dotted keys such as database.path)");
    }
    RETURN_IF_ERROR(ApplyValue(keys, value, layer, state));
  }
  return Status::Ok();
}

// A nats sink needs the fleet's servers; a client certificate needs its key (and the reverse).
template <class Fail>
Status CheckFleet(const LoadState& state, const Fail& fail) {
  auto rank = [&state](const std::string& path) -> size_t {
    auto it = state.origin.find(path);
    return it == state.origin.end() ? 0 : it->second;
  };
  const Config& c = state.config;
  const auto& sinks = c.alerting.sinks;
  const bool nats_sink =
      std::any_of(sinks.begin(), sinks.end(), [](const SinkConfig& s) { return s.type == "nats"; });
  if (nats_sink && c.fleet.servers.empty()) {
    const std::string servers = "fleet.servers";
    const std::string sinks_path = "alerting.sinks";
    const bool sinks_later = rank(sinks_path) >= rank(servers);
    return fail(sinks_later ? rank(sinks_path) : rank(servers), sinks_later ? sinks_path : servers,
                sinks_later ? "a sink of type nats needs fleet.servers"
                            : "expected at least one server: alerting.sinks has a sink of type nats");
  }
  const FleetTlsConfig& tls = c.fleet.tls;
  if (tls.cert.empty() != tls.key.empty()) {
    const std::string given = tls.cert.empty() ? "fleet.tls.key" : "fleet.tls.cert";
    return fail(
        rank(given), given,
        std::string("expected together with ") + (tls.cert.empty() ? "fleet.tls.cert" : "fleet.tls.key"));
  }
  return Status::Ok();
}

// A setting that needs a feature this build lacks (internal/feature_checks.h) is refused, naming
// the layer that set it, the key, the feature and the CMake option, e.g.
//   config.yaml: alerting.sinks[1].type: a webhook sink: the webhook feature is not in this build
//   (rebuild with -DSENTINEL_SINK_WEBHOOK=ON)
Status CheckFeatures(const LoadState& state, bool (*built)(Feature)) {
  const std::optional<internal::FeatureUse> missing = internal::FirstMissingFeature(state.config, built);
  if (!missing) return Status::Ok();
  auto it = state.origin.find(missing->path);
  const size_t at = it == state.origin.end() ? 0 : it->second;
  return InvalidArgumentError(state.message_sources[at] + ": " + missing->path + ": " + missing->what + ": " +
                              NotBuiltReason(missing->feature));
}

// Rules that span two keys, checked on the effective config. The key set by the later layer is
// blamed, since that layer made the pair inconsistent.
Status CheckAcrossKeys(const LoadState& state) {
  auto rank = [&state](const std::string& path) -> size_t {
    auto it = state.origin.find(path);
    return it == state.origin.end() ? 0 : it->second;
  };
  auto fail = [&state](size_t at, const std::string& path, const std::string& what) {
    return InvalidArgumentError(state.message_sources[at] + ": " + path + ": " + what);
  };
  const Config& c = state.config;

  const std::string initial = "alerting.retry.initial_backoff_ms";
  const std::string max = "alerting.retry.max_backoff_ms";
  const RetryConfig& retry = c.alerting.retry;
  if (retry.initial_backoff_ms > retry.max_backoff_ms) {
    if (rank(initial) >= rank(max)) {
      return fail(rank(initial), initial,
                  "expected at most " + max + " (" + std::to_string(retry.max_backoff_ms) + "), got " +
                      std::to_string(retry.initial_backoff_ms));
    }
    return fail(rank(max), max,
                "expected at least " + initial + " (" + std::to_string(retry.initial_backoff_ms) + "), got " +
                    std::to_string(retry.max_backoff_ms));
  }

  RETURN_IF_ERROR(CheckFleet(state, fail));

  const std::string events = "database.path";
  const std::string audit = "database.audit_path";
  if (c.database.path == c.database.audit_path) {
    bool audit_later = rank(audit) >= rank(events);
    return fail(audit_later ? rank(audit) : rank(events), audit_later ? audit : events,
                "expected a different file from " + (audit_later ? events : audit) + ", got " +
                    Quoted(c.database.path));
  }
  return Status::Ok();
}

Result<LoadedConfig> LoadLayers(const LoadOptions& options) {
  LoadState state;
  state.message_sources.emplace_back("built-in defaults");
  state.sources.emplace_back("built-in defaults");
  auto apply_file = [&state](const std::string& path, bool optional) -> Status {
    ASSIGN_OR_RETURN(std::optional<std::string> text, ReadConfigFile(path, optional));
    if (!text) return Status::Ok();
    return ApplyDocument(*text, path, state);
  };
  for (const std::string& path : options.optional_files) RETURN_IF_ERROR(apply_file(path, /*optional=*/true));
  if (options.explicit_file) RETURN_IF_ERROR(apply_file(*options.explicit_file, /*optional=*/false));
  RETURN_IF_ERROR(ApplyEnvironment(options.environment, state));
  RETURN_IF_ERROR(ApplyOverrides(options.overrides, state));
  RETURN_IF_ERROR(CheckFeatures(state, options.feature_built));
  RETURN_IF_ERROR(CheckAcrossKeys(state));
  LoadedConfig loaded{std::move(state.config), std::move(state.sources), ""};
  loaded.hash = Hash(loaded.config);
  return loaded;
}

// ---------------------------------------------------------------------------------------------
// Writers.

template <class T>
requires std::is_integral_v<T> &&(!std::is_same_v<T, bool>)nlohmann::json
    JsonValue(const T& v, const IntRule&) {
  return static_cast<int64_t>(v);
}
nlohmann::json JsonValue(bool v, const BoolRule&) {
  return v;
}
nlohmann::json JsonValue(const std::string& v, const StrRule&) {
  return v;
}
nlohmann::json JsonValue(const std::vector<std::string>& v, const ListRule&) {
  return v;
}
nlohmann::json JsonValue(const std::map<std::string, std::string>& v, const MapRule&) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, val] : v) out[k] = val;
  return out;
}

class JsonWriter {
 public:
  JsonWriter(nlohmann::json& out, SinkScope scope) : out_(out), scope_(scope) {}

  template <class T, class R>
  void operator()(const Key& key, const T& member, const R& rule) {
    if (Applies(key, scope_)) out_[std::string(key.name)] = Value(member, rule);
  }

  template <class S>
  static nlohmann::json Value(const S& section, const SectionRule&) {
    nlohmann::json out = nlohmann::json::object();
    JsonWriter writer(out, SinkScope{});
    Describe(writer, section);
    return out;
  }
  static nlohmann::json Value(const std::vector<SinkConfig>& sinks, const SinkListRule&) {
    nlohmann::json out = nlohmann::json::array();
    for (const SinkConfig& sink : sinks) {
      nlohmann::json entry = nlohmann::json::object();
      JsonWriter writer(entry, ScopeOf(sink.type));
      Describe(writer, sink);
      out.push_back(std::move(entry));
    }
    return out;
  }
  template <class T, class R>
  static nlohmann::json Value(const T& member, const R& rule) {
    return JsonValue(member, rule);
  }

 private:
  nlohmann::json& out_;
  SinkScope scope_;
};

// Strings are always double-quoted so that a value such as "null", "yes" or "" reads back as the
// same string.
class YamlWriter {
 public:
  YamlWriter(YAML::Emitter& out, SinkScope scope) : out_(out), scope_(scope) {}

  template <class T, class R>
  void operator()(const Key& key, const T& member, const R& rule) {
    if (!Applies(key, scope_)) return;
    out_ << YAML::Key << std::string(key.name) << YAML::Value;
    Write(member, rule);
  }

 private:
  template <class T>
  requires std::is_integral_v<T> &&(!std::is_same_v<T, bool>)void Write(const T& v, const IntRule&) {
    out_ << static_cast<long long>(v);  // NOLINT(google-runtime-int): yaml-cpp's overload set
  }
  void Write(bool v, const BoolRule&) { out_ << (v ? "true" : "false"); }
  void Write(const std::string& v, const StrRule&) { out_ << YAML::DoubleQuoted << v; }
  void Write(const std::vector<std::string>& v, const ListRule&) {
    out_ << YAML::Flow << YAML::BeginSeq;
    for (const std::string& item : v) out_ << YAML::DoubleQuoted << item;
    out_ << YAML::EndSeq;
  }
  void Write(const std::map<std::string, std::string>& v, const MapRule&) {
    out_ << YAML::BeginMap;
    for (const auto& [k, val] : v)
      out_ << YAML::Key << YAML::DoubleQuoted << k << YAML::Value << YAML::DoubleQuoted << val;
    out_ << YAML::EndMap;
  }
  template <class S>
  void Write(const S& section, const SectionRule&) {
    out_ << YAML::BeginMap;
    YamlWriter writer(out_, SinkScope{});
    Describe(writer, section);
    out_ << YAML::EndMap;
  }
  void Write(const std::vector<SinkConfig>& sinks, const SinkListRule&) {
    out_ << YAML::BeginSeq;
    for (const SinkConfig& sink : sinks) {
      out_ << YAML::BeginMap;
      YamlWriter writer(out_, ScopeOf(sink.type));
      Describe(writer, sink);
      out_ << YAML::EndMap;
    }
    out_ << YAML::EndSeq;
  }

  YAML::Emitter& out_;
  SinkScope scope_;
};

// Collects KeyInfo for Keys().
class KeyLister {
 public:
  KeyLister(std::vector<KeyInfo>& out, std::string prefix, SinkScope scope, bool in_sink,
            bool restart = false)
      : out_(out), prefix_(std::move(prefix)), scope_(scope), in_sink_(in_sink), restart_(restart) {}

  template <class T, class R>
  void operator()(const Key& key, const T& member, const R& rule) {
    // In a sink, each key is listed once: in the pass for the first sink type it belongs to.
    if (in_sink_ && (key.sink_types & (~key.sink_types + 1)) != scope_.mask) return;
    KeyInfo info;
    info.path = JoinPath(prefix_, key.name);
    info.type = TypeName(rule);
    // A required sink key has no default; the placeholder of the pass's sink would mislead.
    if (!(in_sink_ && key.required)) info.default_value = JsonWriter::Value(member, rule).dump();
    info.expected = Expected(rule);
    info.description = std::string(key.doc);
    if (in_sink_) {
      for (size_t i = 0; i < internal::kSinkTypes.size(); ++i) {
        if (key.sink_types & (1u << i)) info.sink_types.emplace_back(internal::kSinkTypes[i]);
      }
      info.required = key.required;
    }
    info.restart = restart_ || key.restart;
    std::string path = info.path;
    const bool restart = info.restart;
    out_.push_back(std::move(info));
    Nested(path, member, rule, restart);
  }

 private:
  static std::string TypeName(const IntRule&) { return "integer"; }
  static std::string TypeName(const BoolRule&) { return "boolean"; }
  static std::string TypeName(const StrRule&) { return "string"; }
  static std::string TypeName(const ListRule&) { return "list of strings"; }
  static std::string TypeName(const MapRule&) { return "map of strings"; }
  static std::string TypeName(const SectionRule&) { return "section"; }
  static std::string TypeName(const SinkListRule&) { return "list of sinks"; }

  template <class S>
  void Nested(const std::string& path, const S& section, const SectionRule&, bool restart) {
    KeyLister lister(out_, path, SinkScope{}, false, restart);
    Describe(lister, section);
  }
  void Nested(const std::string& path, const std::vector<SinkConfig>&, const SinkListRule&, bool restart) {
    for (std::string_view type : internal::kSinkTypes) {
      KeyLister lister(out_, path + "[]", ScopeOf(type), true, restart);
      const SinkConfig defaults = internal::DefaultSink(type);
      Describe(lister, defaults);
    }
  }
  template <class T, class R>
  void Nested(const std::string&, const T&, const R&, bool) {}

  std::vector<KeyInfo>& out_;
  std::string prefix_;
  SinkScope scope_;
  bool in_sink_;
  bool restart_;
};

// ---------------------------------------------------------------------------------------------
// Reloading.

// One restart-only key of a config: its path, its value (to compare) and its member (to copy).
struct RestartOnlyValue {
  std::string path;
  nlohmann::json value;
  const void* member;
};

// Lists the restart-only keys (a marked section: each of its keys) in declaration order.
class RestartOnlyLister {
 public:
  RestartOnlyLister(std::vector<RestartOnlyValue>& out, std::string prefix, bool inherited)
      : out_(out), prefix_(std::move(prefix)), inherited_(inherited) {}

  template <class T, class R>
  void operator()(const Key& key, const T& member, const R& rule) {
    const std::string path = JoinPath(prefix_, key.name);
    const bool restart = inherited_ || key.restart;
    if constexpr (std::is_same_v<R, SectionRule>) {
      RestartOnlyLister nested(out_, path, restart);
      Describe(nested, member);
    } else if (restart) {
      out_.push_back({path, JsonWriter::Value(member, rule), &member});
    }
  }

 private:
  std::vector<RestartOnlyValue>& out_;
  std::string prefix_;
  bool inherited_;
};

std::vector<RestartOnlyValue> RestartOnlyValues(const Config& config) {
  std::vector<RestartOnlyValue> out;
  RestartOnlyLister lister(out, "", false);
  Describe(lister, config);
  return out;
}

// Copies the running value of every restart-only key into the config it walks. `running` comes
// from RestartOnlyLister over the same declarations, so the i-th restart-only member here has the
// type of running[i].member.
class RunningValueKeeper {
 public:
  RunningValueKeeper(const std::vector<RestartOnlyValue>& running, size_t& next, std::string prefix,
                     bool inherited)
      : running_(running), next_(next), prefix_(std::move(prefix)), inherited_(inherited) {}

  template <class T, class R>
  void operator()(const Key& key, T& member, const R&) {
    const std::string path = JoinPath(prefix_, key.name);
    const bool restart = inherited_ || key.restart;
    if constexpr (std::is_same_v<R, SectionRule>) {
      RunningValueKeeper nested(running_, next_, path, restart);
      Describe(nested, member);
    } else if (restart) {
      const RestartOnlyValue& kept = running_.at(next_++);
      if (kept.path != path) std::abort();  // both walks follow one declaration: cannot happen
      member = *static_cast<const T*>(kept.member);
    }
  }

 private:
  const std::vector<RestartOnlyValue>& running_;
  size_t& next_;
  std::string prefix_;
  bool inherited_;
};

}  // namespace

std::vector<std::string> DefaultFiles() {
#ifdef _WIN32
  // procmond.exe runs as a service: one machine-wide file (docs/platforms.md).
  return {"C:\\ProgramData\\SentinelD\\config.yaml"};
#endif
  std::vector<std::string> files = {"/etc/sentineld/config.yaml"};
  const char* xdg = std::getenv("XDG_CONFIG_HOME");  // NOLINT(concurrency-mt-unsafe): documented
  const char* home = std::getenv("HOME");            // NOLINT(concurrency-mt-unsafe): documented
  // The XDG base directory spec ignores a relative XDG_CONFIG_HOME.
  if (xdg != nullptr && xdg[0] == '/') {
    files.push_back(std::string(xdg) + "/sentineld/config.yaml");
  } else if (home != nullptr && home[0] != '\0') {
    files.push_back(std::string(home) + "/.config/sentineld/config.yaml");
  }
  return files;
}

std::vector<std::string> CurrentEnvironment() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) out.emplace_back(*e);
  return out;
}

Result<LoadedConfig> Load(const LoadOptions& options) {
  try {
    return LoadLayers(options);
  } catch (const std::exception& e) {  // e.g. bad_alloc; nothing may cross the module boundary
    return InternalError(std::string("loading configuration: ") + e.what());
  }
}

Result<LoadedConfig> ValidateFile(const std::string& path) {
  LoadOptions options;
  options.explicit_file = path;
  return Load(options);
}

nlohmann::json ToJson(const Config& config) {
  return JsonWriter::Value(config, SectionRule{});
}

std::string ToYaml(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  YamlWriter writer(out, SinkScope{});
  Describe(writer, config);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string Hash(const Config& config) {
  // nlohmann::json objects keep keys sorted, so dump() is canonical. Strings were checked to be
  // UTF-8 at load; replace keeps a hand-built Config from throwing here.
  return crypto::Sha256Hex(ToJson(config).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& loaded) {
  const std::vector<RestartOnlyValue> before = RestartOnlyValues(running);
  const std::vector<RestartOnlyValue> after = RestartOnlyValues(loaded);
  std::vector<std::string> changed;
  for (size_t i = 0; i < before.size() && i < after.size(); ++i) {
    if (before[i].value != after[i].value) changed.push_back(before[i].path);
  }
  return changed;
}

Config ReloadableConfig(const Config& running, const Config& loaded) {
  Config out = loaded;
  const std::vector<RestartOnlyValue> kept = RestartOnlyValues(running);
  size_t next = 0;
  RunningValueKeeper keeper(kept, next, "", false);
  Describe(keeper, out);
  return out;
}

std::string ResolveHostId(const FleetConfig& fleet, const std::string& machine_id_path,
                          const std::string& hostname) {
  if (!fleet.host_id.empty()) return fleet.host_id;
  std::string source;
  if (std::ifstream in(machine_id_path); in) {
    std::array<char, 128> buf{};  // a machine id is 32 hex characters
    in.read(buf.data(), buf.size());
    source.assign(buf.data(), static_cast<size_t>(in.gcount()));
    source = source.substr(0, source.find('\n'));
  }
  if (Trim(source).empty()) {
    source = hostname;
    if (source.empty()) {
#ifdef _WIN32
      std::array<char, 256> host{};
      DWORD size = static_cast<DWORD>(host.size() - 1);
      if (::GetComputerNameExA(ComputerNameDnsHostname, host.data(), &size)) source = host.data();
#else
      std::array<char, 256> host{};
      if (gethostname(host.data(), host.size() - 1) == 0) source = host.data();
#endif
    }
  }
  source = std::string(Trim(source)).substr(0, 64);
  for (char& ch : source) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    ch == '_' || ch == '-';
    if (!ok) ch = '_';
  }
  return source.empty() ? "unknown-host" : source;
}

std::vector<KeyInfo> Keys() {
  std::vector<KeyInfo> out;
  KeyLister lister(out, "", SinkScope{}, false);
  const Config defaults;
  Describe(lister, defaults);
  return out;
}

}  // namespace sentinel::config
