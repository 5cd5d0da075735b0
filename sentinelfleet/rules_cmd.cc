#include <filesystem>
#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/detection/rule.h"
#include "sentinel/fleet/bundle.h"
#include "sentinel/fleet/subjects.h"
#include "sentinelfleet/commands.h"

namespace sentinel::console {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

// Packs `dir` and validates every rule as a host will (sandbox, ids unique,
// no clash with a built-in rule). InvalidArgument listing every bad file.
Result<fleet::Bundle> PackAndValidate(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return InvalidArgumentError(dir + ": not a directory of rule files");
  ASSIGN_OR_RETURN(fleet::Bundle bundle, fleet::PackBundleDir(dir, NowMs() / 1000));
  const detection::RuleSet builtin = detection::LoadRuleSet(/*builtin=*/true, {});
  ASSIGN_OR_RETURN(fleet::BundleCheck check, fleet::ValidateBundle(bundle, builtin.rules));
  if (check.ok()) return bundle;
  std::string why;
  for (const fleet::RuleRefusal& r : check.refused) why += "; " + QuoteForMessage(r.file) + ": " + r.error;
  return InvalidArgumentError(std::to_string(check.refused.size()) + " of " +
                              std::to_string(bundle.rules.size()) + " rule file(s) in " + dir +
                              " invalid, nothing pushed" + why);
}

// The bundle_id of the envelope in sentineld_rules, "" when none or unreadable.
std::string CurrentBundleId(fleet::NatsClient& client) {
  auto value = client.KvGet(std::string(fleet::kRulesBucket), std::string(fleet::kRulesBundleKey));
  if (!value.ok() || !*value) return "";
  auto envelope = fleet::ParseEnvelopeJson(**value);
  if (!envelope.ok()) return "";
  auto bundle = fleet::ParseBundlePayload(envelope->payload);
  return bundle.ok() ? bundle->bundle_id : "";
}

std::vector<std::string> StatusColumns() {
  return {"host_id",       "hostname", "rules",   "checksum", "bundle_id",
          "bundle_status", "loaded",   "refused", "at",       "current"};
}

// One `rules status` row from a heartbeat's rules.bundle; texts kept here.
class StatusRow {
 public:
  StatusRow(const HostRow& h, const std::string& current_id) {
    const json b = h.bundle.empty() ? json() : json::parse(h.bundle, nullptr, false);
    auto text = [&](const char* key) {
      return b.is_object() && b.contains(key) && b[key].is_string() ? b[key].get<std::string>()
                                                                    : std::string();
    };
    bundle_id_ = text("bundle_id");
    status_ = text("status");
    if (b.is_object() && b.contains("refused") && b["refused"].is_array() && !b["refused"].empty()) {
      refused_ = b["refused"].dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (b.is_object() && b.contains("at") && b["at"].is_number_integer())
      at_ = FormatIso8601Ms(b["at"].get<int64_t>() * 1000);
    current_ = current_id.empty() ? "" : (bundle_id_ == current_id ? "yes" : "no");
    const bool has_loaded = b.is_object() && b.contains("loaded") && b["loaded"].is_number_integer();
    cells_ = {cli::Cell::Text(h.host_id),
              cli::Cell::Text(h.hostname),
              h.rules_count ? cli::Cell::Integer(*h.rules_count) : cli::Cell::Null(),
              cli::Cell::Text(h.rules_checksum),
              cli::Cell::Text(bundle_id_),
              cli::Cell::Text(status_),
              has_loaded ? cli::Cell::Integer(b["loaded"].get<int64_t>()) : cli::Cell::Null(),
              cli::Cell::Text(refused_),
              cli::Cell::Text(at_),
              cli::Cell::Text(current_)};
  }
  const std::vector<cli::Cell>& cells() const { return cells_; }

 private:
  std::string bundle_id_, status_, refused_, at_, current_;
  std::vector<cli::Cell> cells_;
};

}  // namespace

int RunRulesPush(const Context& ctx, const std::string& dir, const std::string& timeout_text) {
  auto format = ResolveFormat(ctx.global, cli::Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  auto timeout = ParseDurationMs(timeout_text);
  if (!timeout.ok() || *timeout <= 0)
    return Fail(ctx, InvalidArgumentError("--timeout: expected a duration (10s)"));
  auto signer = LoadConsoleSigner(ctx);
  if (!signer.ok()) return Fail(ctx, signer.status());
  auto bundle = PackAndValidate(dir);
  if (!bundle.ok()) return Fail(ctx, bundle.status());
  const std::string wire = fleet::SignBundle(**signer, *bundle, NowMs() / 1000);
  if (wire.size() > fleet::kMaxBundleEnvelopeBytes) {
    return Fail(ctx, InvalidArgumentError("the signed bundle of " + dir + " is " +
                                          std::to_string(wire.size()) + " bytes, more than hosts accept (" +
                                          std::to_string(fleet::kMaxBundleEnvelopeBytes) + ")"));
  }
  auto client = ConnectFleet(ctx, "rules push", *timeout);
  if (!client.ok()) return Fail(ctx, client.status());
  auto revision =
      (*client)->KvPut(std::string(fleet::kRulesBucket), std::string(fleet::kRulesBundleKey), wire);
  if (!revision.ok()) return FailRuntime(ctx, revision.status());
  ordered_json files = ordered_json::array();
  for (const fleet::BundleRule& r : bundle->rules) files.push_back(r.file);
  const ordered_json out{
      {"bundle_id", bundle->bundle_id},
      {"rules", bundle->rules.size()},
      {"files", files},
      {"signed_by", (*signer)->PublicKeyHex()},
      {"bucket", std::string(fleet::kRulesBucket) + "/" + std::string(fleet::kRulesBundleKey)},
      {"revision", *revision}};
  if (Status s = cli::WriteObject(*format, *ctx.out, out, ctx.term); !s.ok()) return FailRuntime(ctx, s);
  return kExitOk;
}

int RunRulesStatus(const Context& ctx) {
  auto format = ResolveFormat(ctx.global, cli::Format::kTable, /*allow_jsonl=*/true);
  if (!format.ok()) return Fail(ctx, format.status());
  const std::vector<HostRow> hosts = GatherHosts(ctx);
  std::string current;
  if (!ctx.cfg().fleet.servers.empty()) {
    if (auto client = ConnectFleet(ctx, "rules status", 2000); client.ok())
      current = CurrentBundleId(**client);
  }
  auto writer = cli::MakeRowWriter(*format, *ctx.out, ctx.term);
  Status s = writer->Begin(StatusColumns());
  for (const HostRow& h : hosts) {
    if (!s.ok()) break;
    s = writer->Row(StatusRow(h, current).cells());
  }
  if (s.ok()) s = writer->End();
  if (!s.ok()) return FailRuntime(ctx, s);
  return kExitOk;
}

}  // namespace sentinel::console
