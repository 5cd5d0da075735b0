#include "sentinelagent/fleet_service.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sentinel/base/hex.h"
#include "sentinel/base/strings.h"
#include "sentinel/crypto/blake3.h"
#include "sentinel/fleet/subjects.h"
#include "sentinel/storage/store.h"
#include "sentinel/telemetry/log.h"
#include "sentinelagent/fleet_query.h"

namespace sentinel::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using telemetry::LogError;
using telemetry::LogInfo;
using telemetry::LogWarn;

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

std::string BundleStatePath(const config::Config& cfg) {
  return (fleet::FleetDataDir(cfg) / "fleet-bundle.json").string();
}

// The wall time of the last completed scan, read on a short-lived read-only connection.
std::optional<int64_t> LastScanMs(const config::Config& cfg) {
  auto db =
      storage::OpenStore(storage::DatabaseKind::kEvents,
                         {cfg.database.path, storage::OpenMode::kReadOnly, cfg.database.busy_timeout_ms});
  if (!db.ok()) return std::nullopt;
  auto st = (*db)->Prepare("SELECT max(completed_at_ms) FROM scan_metadata WHERE status = 'completed'");
  if (!st.ok()) return std::nullopt;
  auto row = st->Step();
  if (!row.ok() || !*row) return std::nullopt;
  return st->ColumnOptionalInt(0);
}

// Where forwarding stands (docs/fleet.md "Forwarding"): per forwarded kind, the
// stored cursor and how many ids the table has given after it, read in one
// transaction (one snapshot); null when nothing but alerts is forwarded or the
// store cannot be read.
json ForwardState(const config::Config& cfg) {
  json out = json::object();
  auto db =
      storage::OpenStore(storage::DatabaseKind::kEvents,
                         {cfg.database.path, storage::OpenMode::kReadOnly, cfg.database.busy_timeout_ms});
  if (!db.ok() || !(*db)->Exec("BEGIN").ok()) return nullptr;
  for (ForwardKind kind : {ForwardKind::kEvents, ForwardKind::kScans}) {
    if (!Forwards(cfg, kind)) continue;
    auto cursor = ReadForwardCursor(**db, kind);
    auto end = ForwardTableEnd(**db, kind);
    if (!cursor.ok() || !end.ok() || !cursor->has_value()) {
      out[std::string(ForwardKindName(kind))] = nullptr;
      continue;
    }
    out[std::string(ForwardKindName(kind))] = {{"cursor", **cursor}, {"pending", *end - **cursor}};
  }
  (*db)->Exec("COMMIT").IgnoreError();  // a read: nothing to lose
  return out.empty() ? json(nullptr) : out;
}

// The query_id and SQL of a payload that may not verify, for the audit entry and the reply.
std::pair<std::string, std::string> BestEffortQueryFields(std::string_view wire) {
  auto e = fleet::ParseEnvelopeJson(wire.substr(0, fleet::kMaxQueryEnvelopeBytes));
  if (!e.ok()) return {};
  auto p = fleet::ParseQueryPayload(e->payload);
  if (!p.ok()) return {};
  return {p->query_id, p->sql};
}

std::string SqlHash(const std::string& sql) {
  return sql.empty() ? "" : ToHex(crypto::Blake3(sql));
}

}  // namespace

FleetService::FleetService(FleetServiceOptions options) : opts_(std::move(options)) {
  host_id_ = config::ResolveHostId(opts_.cfg.fleet);
  live_cfg_ = opts_.cfg;
  hostname_ = Hostname();
}

Result<std::unique_ptr<FleetService>> FleetService::Start(FleetServiceOptions options) {
  std::unique_ptr<FleetService> s(new FleetService(std::move(options)));
  auto replay = fleet::ReplayStore::Open(fleet::ReplayStorePath(s->opts_.cfg).string());
  if (!replay.ok()) return replay.status().WithContext("fleet");
  s->replay_ = std::move(*replay);
  s->verifier_ = std::make_unique<fleet::EnvelopeVerifier>(s->opts_.cfg.fleet.trusted_keys, s->replay_.get(),
                                                           *s->opts_.clock);
  s->LoadBundleState();
  s->SetRuleSet(s->opts_.rules);
  s->opts_.rules.clear();
  RETURN_IF_ERROR(s->Connect());
  RETURN_IF_ERROR(s->Subscribe());
  s->work_thread_ = std::thread([p = s.get()] { p->WorkLoop(); });
  s->heartbeat_thread_ = std::thread([p = s.get()] { p->HeartbeatLoop(); });
  s->StartForwarding();
  LogInfo("fleet: connected", {{"host_id", s->host_id_},
                               {"servers", s->client_->servers_text()},
                               {"trusted_keys", s->opts_.cfg.fleet.trusted_keys.size()}});
  return s;
}

Status FleetService::Connect() {
  fleet::ConnectOptions o;
  o.servers = opts_.cfg.fleet.servers;
  o.credentials = opts_.cfg.fleet.credentials;
  o.tls = opts_.cfg.fleet.tls;
  o.name = "sentinelagent " + host_id_;
  o.retry_initial_connect = true;  // an agent may start before its brokers
  ASSIGN_OR_RETURN(client_, fleet::NatsClient::Connect(o));
  return Status::Ok();
}

Status FleetService::Subscribe() {
  auto on_query = [this](fleet::Message m) { Enqueue({Task::Kind::kQuery, std::move(m), {}}); };
  for (const std::string& subject : {fleet::QuerySubject(host_id_), std::string(fleet::kQueryAllSubject)}) {
    ASSIGN_OR_RETURN(auto sub, client_->Subscribe(subject, on_query));
    subs_.push_back(std::move(sub));
  }
  EnsureBundleWatch();
  return Status::Ok();
}

// The bundle key's watch; retried at every heartbeat while JetStream cannot be reached.
void FleetService::EnsureBundleWatch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (bundle_watch_ || stopping_) return;
  }
  auto watch = client_->KvWatch(std::string(fleet::kRulesBucket), std::string(fleet::kRulesBundleKey),
                                [this](const std::string&, std::optional<std::string> value, uint64_t) {
                                  if (value) Enqueue({Task::Kind::kBundle, {}, std::move(*value)});
                                });
  if (!watch.ok()) {
    LogWarn("fleet: cannot watch the rule bundle yet", {{"error", watch.status().message()}});
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  bundle_watch_ = std::move(*watch);
}

void FleetService::StartForwarding() {
  ForwarderOptions f;
  f.events = Forwards(opts_.cfg, ForwardKind::kEvents);
  f.scans = Forwards(opts_.cfg, ForwardKind::kScans);
  if (!f.events && !f.scans) return;
  f.database_path = opts_.cfg.database.path;
  f.busy_timeout_ms = opts_.cfg.database.busy_timeout_ms;
  f.host_id = host_id_;
  f.clock = opts_.clock;
  forwarder_ = FleetForwarder::Start(std::move(f), client_.get());
}

FleetService::~FleetService() {
  Stop();
}

void FleetService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard<std::mutex> lock(worker_mu_);
    if (running_worker_ != nullptr) running_worker_->Cancel();
  }
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (work_thread_.joinable()) work_thread_.join();
  forwarder_.reset();
  // Callbacks still arriving find stopping_ set; destroying waits for one in progress.
  subs_.clear();
  bundle_watch_.reset();
  client_.reset();
}

// The worker of the query in progress, so Stop() can kill it rather than wait for its time limit.
void FleetService::TrackWorker(detection::QueryWorker* worker) {
  std::lock_guard<std::mutex> lock(worker_mu_);
  running_worker_ = worker;
  bool stopping = false;
  {
    std::lock_guard<std::mutex> state(mu_);
    stopping = stopping_;
  }
  if (worker != nullptr && stopping) worker->Cancel();
}

void FleetService::Enqueue(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    if (task.kind == Task::Kind::kBundle) {
      // Only the newest bundle matters.
      std::erase_if(tasks_, [](const Task& t) { return t.kind == Task::Kind::kBundle; });
    } else if (tasks_.size() >= kMaxPending) {
      LogWarn("fleet: too many live queries waiting; one refused", {{"subject", task.message.subject}});
      if (fleet::IsReplyInbox(task.message.reply)) {
        client_
            ->Publish(task.message.reply,
                      fleet::ChunkWriter::Error(BestEffortQueryFields(task.message.data).first, host_id_,
                                                {"busy", "the host has too many queries waiting"}))
            .IgnoreError();
      }
      return;
    }
    tasks_.push_back(std::move(task));
  }
  cv_.notify_all();
}

void FleetService::WorkLoop() {
  while (true) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    if (task.kind == Task::Kind::kQuery) {
      HandleQuery(task.message);
    } else {
      HandleBundle(task.bundle);
    }
  }
}

void FleetService::RefuseQuery(const fleet::Message& m, const fleet::Refusal& refusal, const std::string& key,
                               const std::string& query_id, const std::string& sql) {
  LogWarn("fleet: live query refused", {{"code", refusal.code_name()}, {"error", refusal.message}});
  if (opts_.record) {
    opts_.record("fleet_query_refused", {{"key", key},
                                         {"query_id", query_id},
                                         {"sql_blake3", SqlHash(sql)},
                                         {"subject", m.subject},
                                         {"code", std::string(refusal.code_name())},
                                         {"error", refusal.message}});
  }
  if (fleet::IsReplyInbox(m.reply)) {
    client_
        ->Publish(m.reply, fleet::ChunkWriter::Error(query_id, host_id_,
                                                     {std::string(refusal.code_name()), refusal.message}))
        .IgnoreError();
  }
}

void FleetService::HandleQuery(const fleet::Message& m) {
  auto env = verifier_->Verify(fleet::EnvelopeKind::kQuery, m.data);
  if (!env.ok()) {
    const auto [query_id, sql] = BestEffortQueryFields(m.data);
    // The claimed key of a refused envelope is not trusted: not recorded as the actor.
    return RefuseQuery(m, env.refusal(), "", query_id, sql);
  }
  auto q = fleet::ParseQueryPayload(env->payload);
  if (!q.ok()) return RefuseQuery(m, q.refusal(), env->key, "", "");
  if (!fleet::QueryAddresses(*q, host_id_)) return;  // meant for other hosts
  if (!fleet::IsReplyInbox(m.reply)) {
    const fleet::Refusal bad_reply{
        fleet::RefusalCode::kMalformed,
        "reply subject " + QuoteForMessage(m.reply) + " is not an _INBOX. subject"};
    return RefuseQuery(m, bad_reply, env->key, q->query_id, q->sql);
  }
  RemoteQueryOutcome out = RunRemoteQuery(
      LiveConfig(), *q, host_id_, [&](const std::string& chunk) { return client_->Publish(m.reply, chunk); },
      [this](detection::QueryWorker* w) { TrackWorker(w); }, &warm_worker_);
  json data = {{"key", env->key},
               {"query_id", q->query_id},
               {"sql_blake3", SqlHash(q->sql)},
               {"subject", m.subject},
               {"rows", out.rows},
               {"truncated", out.truncated},
               {"outcome", out.error ? out.error->code : std::string("ok")}};
  if (out.error) data["error"] = out.error->message;
  if (out.error && out.error->code == "not_select") {
    if (opts_.record) opts_.record("fleet_query_refused", data);
    return;
  }
  if (opts_.record) opts_.record("fleet_query_executed", data);
}

void FleetService::HandleBundle(const std::string& wire) {
  if (wire.size() <= fleet::kMaxBundleEnvelopeBytes) {
    auto e = fleet::ParseEnvelopeJson(wire);
    std::lock_guard<std::mutex> lock(mu_);
    if (e.ok() && !bundle_nonce_.empty() && e->nonce == bundle_nonce_) return;  // handled before (a restart)
  }
  const int64_t now = opts_.clock->NowMs() / 1000;
  fleet::BundleApplyResult r = fleet::ApplyBundleEnvelope(
      wire, *verifier_, fleet::RulesOutsideFleet(LiveConfig()), fleet::FleetRulesDir(opts_.cfg), now);
  const bool applied = r.status.status == "applied";
  LogInfo(applied ? "fleet: rule bundle applied" : "fleet: rule bundle refused", r.status.ToHeartbeatJson());
  if (opts_.record) {
    json data = r.status.ToHeartbeatJson();
    data["key"] = r.key;
    opts_.record(applied ? "fleet_bundle_applied" : "fleet_bundle_refused", data);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    bundle_status_ = r.status;
    bundle_nonce_ = r.nonce;
  }
  SaveBundleState();
  if (applied && opts_.reload_rules) opts_.reload_rules();
  NudgeHeartbeat();
}

void FleetService::LoadBundleState() {
  std::ifstream in(BundleStatePath(opts_.cfg));
  if (!in) return;
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return;
  auto status = fleet::BundleStatus::FromJson(j.value("status", json::object()));
  if (!status.ok()) return;
  bundle_status_ = *status;
  bundle_nonce_ = j.value("nonce", "");
}

void FleetService::SaveBundleState() {
  json j;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!bundle_status_) return;
    j = {{"nonce", bundle_nonce_}, {"status", bundle_status_->ToJson()}};
  }
  const std::string path = BundleStatePath(opts_.cfg);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    if (!out) {
      LogError("fleet: cannot write the bundle state", {{"path", tmp}});
      return;
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) LogError("fleet: cannot write the bundle state", {{"path", path}, {"error", ec.message()}});
}

void FleetService::SetRuleSet(const std::vector<detection::Rule>& rules) {
  std::vector<std::string> lines;
  for (const auto& r : rules) lines.push_back(r.id + ":" + r.Checksum());
  std::sort(lines.begin(), lines.end());
  crypto::Blake3Hasher h;
  for (const auto& l : lines) h.Update(l + "\n");
  const std::string checksum = ToHex(h.Finalize());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (rule_count_ == static_cast<int64_t>(rules.size()) && rules_checksum_ == checksum) return;
    rule_count_ = static_cast<int64_t>(rules.size());
    rules_checksum_ = checksum;
    nudge_ = true;
  }
  cv_.notify_all();
}

void FleetService::SetConfig(const config::Config& cfg) {
  std::lock_guard<std::mutex> lock(mu_);
  live_cfg_ = cfg;
}

config::Config FleetService::LiveConfig() {
  std::lock_guard<std::mutex> lock(mu_);
  return live_cfg_;
}

void FleetService::NudgeHeartbeat() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    nudge_ = true;
  }
  cv_.notify_all();
}

json FleetService::Heartbeat() {
  const std::string health = opts_.health ? opts_.health() : "ok";
  const auto last_scan = LastScanMs(opts_.cfg);
  const json forward = ForwardState(opts_.cfg);
  std::lock_guard<std::mutex> lock(mu_);
  return {{"host_id", host_id_},
          {"hostname", hostname_},
          {"version", opts_.version},
          {"health", health},
          {"last_scan", last_scan ? json(FormatIso8601Ms(*last_scan)) : json(nullptr)},
          {"rules",
           {{"count", rule_count_},
            {"checksum", rules_checksum_},
            {"bundle", bundle_status_ ? bundle_status_->ToHeartbeatJson() : json(nullptr)}}},
          {"forward", forward},
          {"sent_at", opts_.clock->NowMs() / 1000}};
}

void FleetService::HeartbeatLoop() {
  while (true) {
    EnsureBundleWatch();
    const std::string value = Heartbeat().dump(-1, ' ', false, json::error_handler_t::replace);
    auto put = client_->KvPut(std::string(fleet::kHostsBucket), host_id_, value);
    if (!put.ok()) LogWarn("fleet: heartbeat not sent", {{"error", put.status().message()}});
    std::unique_lock<std::mutex> lock(mu_);
    const int64_t deadline = opts_.clock->MonotonicMs() + opts_.heartbeat_ms;
    opts_.clock->WaitUntil(lock, cv_, deadline, [this] { return stopping_ || nudge_; });
    if (stopping_) return;
    nudge_ = false;
  }
}

}  // namespace sentinel::agent
