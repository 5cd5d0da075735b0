#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/audit/signer.h"
#include "sentinelfleet/commands.h"

namespace sentinel::console {

int RunKeysGenerate(const Context& ctx, const std::string& path) {
  auto format = ResolveFormat(ctx.global, cli::Format::kTable, /*allow_jsonl=*/false);
  if (!format.ok()) return Fail(ctx, format.status());
  auto pub = audit::GenerateSigningKeyFile(path);
  if (!pub.ok()) {
    const StatusCode c = pub.status().code();
    return c == StatusCode::kAlreadyExists || c == StatusCode::kInvalidArgument
               ? Fail(ctx, InvalidArgumentError(pub.status().message()))
               : FailRuntime(ctx, pub.status());
  }
  if (*format == cli::Format::kTable) {
    *ctx.out << *pub << "\n";
    ctx.out->flush();
    *ctx.err << "sentinelfleet: signing key written to " << path
             << " (mode 0600); set console.signing_key to it, and add the public key above to every "
                "host's fleet.trusted_keys\n";
  } else {
    Status s = cli::WriteObject(*format, *ctx.out,
                                nlohmann::ordered_json{{"public_key", *pub}, {"file", path}}, ctx.term);
    if (!s.ok()) return FailRuntime(ctx, s);
  }
  return kExitOk;
}

}  // namespace sentinel::console
