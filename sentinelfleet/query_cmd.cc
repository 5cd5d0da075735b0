#include <algorithm>
#include <chrono>
#include <ostream>
#include <set>

#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"
#include "sentinel/base/time.h"
#include "sentinel/fleet/envelope.h"
#include "sentinel/fleet/subjects.h"
#include "sentinelfleet/commands.h"
#include "sentinelfleet/reply_collector.h"

namespace sentinel::console {
namespace {

using nlohmann::json;

struct Target {
  bool all = false;
  std::vector<std::string> hosts;  // explicit ids (all = false)
};

Result<Target> ParseHosts(const std::string& text) {
  Target t;
  if (text == "all") {
    t.all = true;
    return t;
  }
  std::set<std::string> seen;
  for (const std::string& h : Split(text, ',')) {
    if (!fleet::IsValidHostId(h)) {
      return InvalidArgumentError("--hosts: " + QuoteForMessage(h) +
                                  " is not a host id ([A-Za-z0-9_-], 1 to 64); expected all or ID,ID,...");
    }
    if (seen.insert(h).second) t.hosts.push_back(h);
  }
  return t;
}

// The hosts a query to all is expected to reach: those with a recent heartbeat.
Result<std::set<std::string>> LiveHosts(fleet::NatsClient& client, int64_t now_s) {
  ASSIGN_OR_RETURN(auto entries, client.KvAll(std::string(fleet::kHostsBucket)));
  std::set<std::string> live;
  for (const auto& [key, value] : entries) {
    auto row = HostRowFromHeartbeat(key, value, 0);
    if (row.ok() && row->sent_at && *row->sent_at >= now_s - fleet::kLiveHeartbeatSecs) live.insert(key);
  }
  return live;
}

cli::Cell ToCell(const json& v, std::string& keep) {
  if (v.is_null()) return cli::Cell::Null();
  if (v.is_number_integer()) return cli::Cell::Integer(v.get<int64_t>());
  if (v.is_number()) return cli::Cell::Real(v.get<double>());
  if (v.is_string()) return cli::Cell::Text(v.get_ref<const std::string&>());
  keep = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return cli::Cell::Text(keep);
}

// The rows of every host that answered, host by host, each with its host_id
// first. The columns are those of the first host; a host whose columns differ
// (another schema) is reported instead of printed.
Status WriteRows(const Context& ctx, cli::Format format, const std::map<std::string, HostReply>& replies,
                 std::vector<std::string>& problems) {
  std::vector<std::string> columns;
  for (const auto& [host, r] : replies) {
    if (!r.error && !r.columns.empty()) {
      columns = r.columns;
      break;
    }
  }
  auto writer = cli::MakeRowWriter(format, *ctx.out, ctx.term);
  std::vector<std::string> header = {"host_id"};
  header.insert(header.end(), columns.begin(), columns.end());
  RETURN_IF_ERROR(writer->Begin(header));
  std::vector<cli::Cell> cells;
  std::vector<std::string> keep(columns.size());
  for (const auto& [host, r] : replies) {
    if (r.error || r.rows.empty()) continue;
    if (r.columns != columns) {
      problems.push_back("host " + host + ": its columns differ from the other hosts' (not printed)");
      continue;
    }
    for (const json& row : r.rows) {
      if (!row.is_array() || row.size() != columns.size()) continue;
      cells.assign(1, cli::Cell::Text(host));
      for (size_t i = 0; i < columns.size(); ++i) cells.push_back(ToCell(row[i], keep[i]));
      RETURN_IF_ERROR(writer->Row(cells));
    }
  }
  return writer->End();
}

}  // namespace

// Signs, publishes and collects; the exit code follows what came back.
class QueryRun {
 public:
  QueryRun(const Context& ctx, const QueryArgs& args) : ctx_(ctx), args_(args) {}
  int Run();

 private:
  Status Prepare();
  Status Publish();
  int Report();

  const Context& ctx_;
  const QueryArgs& args_;
  cli::Format format_ = cli::Format::kTable;
  int64_t timeout_ms_ = 0;
  Target target_;
  std::set<std::string> expected_;
  std::unique_ptr<audit::Signer> signer_;
  std::unique_ptr<fleet::NatsClient> client_;
  fleet::QueryRequest request_;
  std::unique_ptr<ReplyCollector> collector_;
  // --timeout bounds the whole command: connecting, listing the hosts and waiting for them.
  std::chrono::steady_clock::time_point deadline_;
};

Status QueryRun::Prepare() {
  ASSIGN_OR_RETURN(format_, ResolveFormat(ctx_.global, cli::Format::kTable, /*allow_jsonl=*/true));
  auto timeout = ParseDurationMs(args_.timeout);
  if (!timeout.ok() || *timeout <= 0)
    return InvalidArgumentError("--timeout: expected a duration (10s, 500ms)");
  timeout_ms_ = *timeout;
  deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  if (args_.max_rows < 1 || args_.max_rows > fleet::kMaxQueryMaxRows) {
    return InvalidArgumentError("--max-rows: expected 1 to " + std::to_string(fleet::kMaxQueryMaxRows));
  }
  ASSIGN_OR_RETURN(target_, ParseHosts(args_.hosts));
  ASSIGN_OR_RETURN(signer_, LoadConsoleSigner(ctx_));
  ASSIGN_OR_RETURN(client_, ConnectFleet(ctx_, "query", timeout_ms_));
  if (target_.all) {
    ASSIGN_OR_RETURN(expected_, LiveHosts(*client_, NowMs() / 1000));
  } else {
    expected_.insert(target_.hosts.begin(), target_.hosts.end());
  }
  request_.query_id = fleet::NewUuid();
  request_.sql = args_.sql;
  request_.hosts = target_.all ? std::vector<std::string>{"all"} : target_.hosts;
  request_.max_rows = args_.max_rows;
  collector_ = std::make_unique<ReplyCollector>(request_.query_id, expected_, args_.max_rows);
  return Status::Ok();
}

Status QueryRun::Publish() {
  const std::string inbox = client_->NewInbox();
  ReplyCollector* collector = collector_.get();
  ASSIGN_OR_RETURN(auto sub,
                   client_->Subscribe(inbox, [collector](fleet::Message m) { collector->Take(m.data); }));
  const std::string wire = fleet::SignEnvelope(*signer_, fleet::EnvelopeKind::kQuery,
                                               fleet::QueryPayloadJson(request_), NowMs() / 1000);
  if (target_.all) {
    RETURN_IF_ERROR(client_->Publish(std::string(fleet::kQueryAllSubject), wire, inbox));
  } else {
    for (const std::string& h : target_.hosts)
      RETURN_IF_ERROR(client_->Publish(fleet::QuerySubject(h), wire, inbox));
  }
  RETURN_IF_ERROR(client_->Flush(timeout_ms_));
  collector_->Wait(deadline_);
  return Status::Ok();  // `sub` unsubscribes here: nothing arrives while printing
}

int QueryRun::Report() {
  const auto replies = collector_->Results();
  std::vector<std::string> problems;
  if (Status s = WriteRows(ctx_, format_, replies, problems); !s.ok()) return FailRuntime(ctx_, s);
  bool sql_refused = false, other_error = false;
  for (const auto& [host, r] : replies) {
    if (r.error) {
      problems.push_back("host " + host + ": " + r.error->code + ": " + r.error->message);
      (r.error->code == "not_select" || r.error->code == "sql_error" ? sql_refused : other_error) = true;
    } else if (r.truncated) {
      Warn(ctx_, "host " + host + ": rows cut at " + std::to_string(args_.max_rows) + " (--max-rows)");
    }
  }
  const std::vector<std::string> missing = collector_->Missing();
  if (!missing.empty()) {
    problems.push_back("no answer within " + args_.timeout + " from " + std::to_string(missing.size()) +
                       " host(s): " + Join(missing, ", "));
  }
  if (target_.all && expected_.empty()) Warn(ctx_, "no host with a recent heartbeat in sentineld_hosts");
  for (const std::string& p : problems) *ctx_.err << "sentinelfleet: " << EscapeText(p) << "\n";
  if (problems.empty()) return kExitOk;
  return sql_refused && !other_error && missing.empty() ? kExitUsage : kExitRuntime;
}

int QueryRun::Run() {
  if (Status s = Prepare(); !s.ok()) return Fail(ctx_, s);
  if (Status s = Publish(); !s.ok()) return FailRuntime(ctx_, s);
  return Report();
}

int RunQuery(const Context& ctx, const QueryArgs& args) {
  QueryRun run(ctx, args);
  return run.Run();
}

}  // namespace sentinel::console
