#include "sentinelcli/commands/bundle_import.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <ostream>

#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/fleet/bundle.h"
#include "sentinel/fleet/envelope.h"

namespace sentinel::cli {
namespace {

// A bundle file is read whole up to a little past the envelope limit (so an
// oversized one is still recognised and refused as such).
constexpr std::size_t kMaxBundleFileRead = fleet::kMaxBundleEnvelopeBytes * 2;

void RecordOutcome(const CommandContext& ctx, const std::string& path, const fleet::BundleApplyResult& r,
                   const std::string& target_dir) {
  auto trail = OpenCliTrail(ctx);
  if (!trail) return;
  nlohmann::json data = r.status.ToHeartbeatJson();
  data["source"] = path;
  data["key"] = r.key;
  data["target_dir"] = target_dir;
  data["uid"] = static_cast<int64_t>(::getuid());
  trail->Record(r.status.status == "applied" ? "bundle_imported" : "bundle_refused", data);
}

int ReportRefusal(const CommandContext& ctx, const fleet::BundleApplyResult& r) {
  for (const auto& f : r.status.refused) *ctx.err << "sentinelcli: " << EscapeText(f.error) << "\n";
  const std::string what =
      "bundle " + (r.status.bundle_id.empty() ? std::string("") : r.status.bundle_id + " ") + "refused (" +
      r.status.refusal_code + "): " + r.status.message + " (nothing installed)";
  if (!r.error.ok() || r.status.refusal_code == "internal") return FailRuntime(ctx, InternalError(what));
  return Fail(ctx, InvalidArgumentError(what));
}

}  // namespace

bool ReadBundleFile(const std::string& path, std::string* text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  std::string content;
  content.resize(kMaxBundleFileRead);
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  content.resize(static_cast<std::size_t>(in.gcount()));
  if (!fleet::LooksLikeBundleEnvelope(content)) return false;
  *text = std::move(content);
  return true;
}

int RunBundleImport(const CommandContext& ctx, const std::string& path, std::string_view text) {
  const config::Config& cfg = ctx.config.config;
  if (cfg.fleet.trusted_keys.empty()) {
    return Fail(ctx, InvalidArgumentError(path + ": a signed rule bundle, but fleet.trusted_keys is empty: "
                                                 "no key to verify it with (nothing installed)"));
  }
  auto replay = fleet::ReplayStore::Open(fleet::ReplayStorePath(cfg).string());
  if (!replay.ok()) return FailRuntime(ctx, replay.status());
  fleet::EnvelopeVerifier verifier(cfg.fleet.trusted_keys, replay->get(), Clock::Real());
  const std::string target = fleet::FleetRulesDir(cfg).string();
  fleet::BundleApplyResult r =
      fleet::ApplyBundleEnvelope(text, verifier, fleet::RulesOutsideFleet(cfg), target, NowMs() / 1000);
  RecordOutcome(ctx, path, r, target);
  if (r.status.status != "applied") return ReportRefusal(ctx, r);
  *ctx.out << "bundle " << r.status.bundle_id << " applied: " << r.status.loaded << " rule(s) installed into "
           << target << " (signed by " << r.key << ")\n"
           << "a running sentinelagent loads them on SIGHUP (or at once when connected to the fleet)\n";
  return kExitOk;
}

}  // namespace sentinel::cli
