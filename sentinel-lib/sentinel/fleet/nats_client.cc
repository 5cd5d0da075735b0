#include "sentinel/fleet/nats_client.h"

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "sentinel/base/escape.h"
#include "sentinel/base/strings.h"

namespace sentinel::fleet {
namespace {

template <class T, auto Destroy>
struct Deleter {
  void operator()(T* p) const {
    if (p != nullptr) Destroy(p);
  }
};
using OptionsPtr = std::unique_ptr<natsOptions, Deleter<natsOptions, natsOptions_Destroy>>;
using MsgPtr = std::unique_ptr<natsMsg, Deleter<natsMsg, natsMsg_Destroy>>;
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, Deleter<jsStreamInfo, jsStreamInfo_Destroy>>;
using PubAckPtr = std::unique_ptr<jsPubAck, Deleter<jsPubAck, jsPubAck_Destroy>>;
using KvEntryPtr = std::unique_ptr<kvEntry, Deleter<kvEntry, kvEntry_Destroy>>;
using WatcherPtr = std::unique_ptr<kvWatcher, Deleter<kvWatcher, kvWatcher_Destroy>>;

constexpr int64_t kNanosPerSec = 1'000'000'000;
constexpr auto kCallbackDrainWait = std::chrono::seconds(5);

// What a connection's asynchronous callbacks report; outlives them (see ~Client).
struct AsyncState {
  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;
  natsStatus last_error = NATS_OK;
  std::string last_error_text;
};

// The state of a connection that failed to start: libnats may still run its
// closed callback on its own thread, so the state is never freed. It is kept
// here (reachable, not leaked: a few hundred bytes per failed connect, which
// happens once per command or agent start) rather than released.
void RetainForLibnats(std::unique_ptr<AsyncState> state) {
  static std::mutex mu;
  static auto* retained = new std::vector<std::unique_ptr<AsyncState>>();  // never destroyed
  std::lock_guard lock(mu);
  retained->push_back(std::move(state));
}

void OnAsyncError(natsConnection* nc, natsSubscription*, natsStatus err, void* closure) {
  auto* st = static_cast<AsyncState*>(closure);
  const char* text = nullptr;
  natsConnection_GetLastError(nc, &text);
  std::lock_guard lock(st->mu);
  st->last_error = err;
  st->last_error_text = text != nullptr && *text != '\0' ? text : natsStatus_GetText(err);
}

void OnConnected(natsConnection*, void*) {}

void OnClosed(natsConnection*, void* closure) {
  auto* st = static_cast<AsyncState*>(closure);
  {
    std::lock_guard lock(st->mu);
    st->closed = true;
  }
  st->cv.notify_all();
}

// libnats' description of the last error on this thread, else the status's text.
std::string ErrorText(natsStatus s) {
  const char* detail = nats_GetLastError(nullptr);
  std::string text = natsStatus_GetText(s);
  if (detail != nullptr && *detail != '\0' && text != detail) text += " (" + std::string(detail) + ")";
  return text;
}

StatusCode CodeOf(natsStatus s, bool connected) {
  switch (s) {
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
    case NATS_INSUFFICIENT_BUFFER: return StatusCode::kUnavailable;
    case NATS_TIMEOUT: return connected ? StatusCode::kDeadlineExceeded : StatusCode::kUnavailable;
    case NATS_NOT_PERMITTED: return StatusCode::kPermissionDenied;
    case NATS_NOT_FOUND: return StatusCode::kNotFound;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_MAX_PAYLOAD: return StatusCode::kInvalidArgument;
    default: return StatusCode::kInternal;
  }
}

std::map<std::string, std::string> HeadersOf(natsMsg* msg) {
  std::map<std::string, std::string> out;
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) != NATS_OK) return out;
  for (int i = 0; i < count; ++i) {
    const char* value = nullptr;
    if (natsMsgHeader_Get(msg, keys[i], &value) == NATS_OK && value != nullptr) out[keys[i]] = value;
  }
  free(static_cast<void*>(keys));  // NOLINT(cppcoreguidelines-no-malloc): libnats allocates it
  return out;
}

std::string DataOf(natsMsg* msg) {
  const char* data = natsMsg_GetData(msg);
  return data == nullptr ? std::string() : std::string(data, static_cast<size_t>(natsMsg_GetDataLength(msg)));
}

Message ToMessage(natsMsg* msg) {
  Message m;
  m.subject = natsMsg_GetSubject(msg);
  const char* reply = natsMsg_GetReply(msg);
  if (reply != nullptr) m.reply = reply;
  m.data = DataOf(msg);
  m.headers = HeadersOf(msg);
  return m;
}

std::string ValueOf(kvEntry* e) {
  const void* v = kvEntry_Value(e);
  return v == nullptr ? std::string()
                      : std::string(static_cast<const char*>(v), static_cast<size_t>(kvEntry_ValueLen(e)));
}

// ---- subscriptions

struct SubState {
  std::function<void(Message)> cb;
  std::mutex mu;
  std::condition_variable cv;
  bool complete = false;
};

void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  MsgPtr owned(msg);
  static_cast<SubState*>(closure)->cb(ToMessage(msg));
}

void OnSubscriptionComplete(void* closure) {
  auto* st = static_cast<SubState*>(closure);
  {
    std::lock_guard lock(st->mu);
    st->complete = true;
  }
  st->cv.notify_all();
}

class CoreSubscription final : public Subscription {
 public:
  CoreSubscription(natsSubscription* sub, std::unique_ptr<SubState> state)
      : sub_(sub), state_(std::move(state)) {}
  ~CoreSubscription() override {
    // After the unsubscribe libnats calls OnSubscriptionComplete once no callback runs any more.
    if (natsSubscription_Unsubscribe(sub_) == NATS_OK) {
      std::unique_lock lock(state_->mu);
      state_->cv.wait_for(lock, kCallbackDrainWait, [this] { return state_->complete; });
    }
    natsSubscription_Destroy(sub_);
  }
  CoreSubscription(const CoreSubscription&) = delete;
  CoreSubscription& operator=(const CoreSubscription&) = delete;

 private:
  natsSubscription* sub_;
  std::unique_ptr<SubState> state_;
};

// A KV watch: a thread reading the watcher until stopped.
class KvWatchSubscription final : public Subscription {
 public:
  KvWatchSubscription(kvWatcher* w, NatsClient::KvWatchCallback cb) : w_(w), cb_(std::move(cb)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~KvWatchSubscription() override {
    stop_ = true;
    kvWatcher_Stop(w_.get());
    thread_.join();
  }
  KvWatchSubscription(const KvWatchSubscription&) = delete;
  KvWatchSubscription& operator=(const KvWatchSubscription&) = delete;

 private:
  void Run() {
    while (!stop_) {
      kvEntry* raw = nullptr;
      const natsStatus s = kvWatcher_Next(&raw, w_.get(), 250);
      KvEntryPtr e(raw);
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        if (stop_ || s == NATS_ILLEGAL_STATE) return;                 // stopped
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // e.g. reconnecting
        continue;
      }
      if (!e) continue;  // the end of the initial values
      const kvOperation op = kvEntry_Operation(e.get());
      std::optional<std::string> value;
      if (op == kvOp_Put) value = ValueOf(e.get());
      cb_(kvEntry_Key(e.get()), std::move(value), kvEntry_Revision(e.get()));
    }
  }

  WatcherPtr w_;
  NatsClient::KvWatchCallback cb_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class Client;

class Pull final : public PullConsumer {
 public:
  Pull(const Client& client, natsSubscription* sub, std::string what)
      : client_(client), sub_(sub), what_(std::move(what)) {}
  ~Pull() override { natsSubscription_Destroy(sub_); }
  Pull(const Pull&) = delete;
  Pull& operator=(const Pull&) = delete;
  Result<std::vector<JsMsg>> Fetch(int max, int64_t timeout_ms) override;

 private:
  const Client& client_;
  natsSubscription* sub_;
  std::string what_;
};

// ---- the client

class Client final : public NatsClient {
 public:
  Client(natsConnection* nc, jsCtx* js, std::unique_ptr<AsyncState> state, std::string servers_text,
         std::vector<std::string> servers, int64_t timeout_ms)
      : nc_(nc),
        js_(js),
        state_(std::move(state)),
        servers_text_(std::move(servers_text)),
        servers_(std::move(servers)),
        timeout_ms_(timeout_ms) {}

  ~Client() override {
    {
      std::lock_guard lock(kv_mu_);
      for (auto& [name, kv] : kv_) kvStore_Destroy(kv);
    }
    jsCtx_Destroy(js_);
    natsConnection_Close(nc_);
    // The closed callback is the connection's last: after it no callback touches state_.
    {
      std::unique_lock lock(state_->mu);
      state_->cv.wait_for(lock, kCallbackDrainWait, [this] { return state_->closed; });
    }
    natsConnection_Destroy(nc_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const override { return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }
  const std::string& servers_text() const override { return servers_text_; }

  int KnownServerCount() const override {
    char** list = nullptr;
    int count = 0;
    if (natsConnection_GetServers(nc_, &list, &count) != NATS_OK) return static_cast<int>(servers_.size());
    for (int i = 0; i < count; ++i) free(list[i]);  // NOLINT(cppcoreguidelines-no-malloc): libnats'
    free(static_cast<void*>(list));                 // NOLINT(cppcoreguidelines-no-malloc)
    return count;
  }

  Status LastAsyncError() const override {
    std::lock_guard lock(state_->mu);
    if (state_->last_error == NATS_OK) return Status::Ok();
    return Status(CodeOf(state_->last_error, true),
                  "NATS " + servers_text_ + ": " + Scrub(state_->last_error_text));
  }

  // A Status for `s` naming the servers and what was being done.
  Status Error(natsStatus s, const std::string& what) const {
    return Status(CodeOf(s, connected()), "NATS " + servers_text_ + ": " + what + ": " + Scrub(ErrorText(s)));
  }

  Status Publish(const std::string& subject, std::string_view data, const std::string& reply) override {
    const int len = static_cast<int>(data.size());
    const natsStatus s =
        reply.empty() ? natsConnection_Publish(nc_, subject.c_str(), data.data(), len)
                      : natsConnection_PublishRequest(nc_, subject.c_str(), reply.c_str(), data.data(), len);
    return s == NATS_OK ? Status::Ok() : Error(s, "publishing to " + subject);
  }

  Result<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                  std::function<void(Message)> cb) override {
    auto state = std::make_unique<SubState>();
    state->cb = std::move(cb);
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_Subscribe(&sub, nc_, subject.c_str(), OnMessage, state.get());
    if (s == NATS_OK) s = natsSubscription_SetOnCompleteCB(sub, OnSubscriptionComplete, state.get());
    if (s != NATS_OK) {
      natsSubscription_Destroy(sub);
      return Error(s, "subscribing to " + subject);
    }
    return std::unique_ptr<Subscription>(new CoreSubscription(sub, std::move(state)));
  }

  Result<Message> Request(const std::string& subject, std::string_view data, int64_t timeout_ms) override {
    natsMsg* reply = nullptr;
    const natsStatus s = natsConnection_Request(&reply, nc_, subject.c_str(), data.data(),
                                                static_cast<int>(data.size()), timeout_ms);
    MsgPtr owned(reply);
    if (s == NATS_NO_RESPONDERS)
      return UnavailableError("NATS " + servers_text_ + ": nobody answers on " + subject);
    if (s != NATS_OK) return Error(s, "request on " + subject);
    return ToMessage(reply);
  }

  std::string NewInbox() override {
    natsInbox* inbox = nullptr;
    if (natsInbox_Create(&inbox) != NATS_OK) return "";
    std::string out(inbox);
    natsInbox_Destroy(inbox);
    return out;
  }

  Status Flush(int64_t timeout_ms) override {
    const natsStatus s = natsConnection_FlushTimeout(nc_, timeout_ms);
    return s == NATS_OK ? Status::Ok() : Error(s, "flush");
  }

  Status EnsureStream(const StreamSpec& spec) override;
  Result<PubAck> JsPublish(const std::string& subject, std::string_view data, const std::string& msg_id,
                           int64_t timeout_ms) override;
  Status EnsureBucket(const BucketSpec& spec) override;
  Result<uint64_t> KvPut(const std::string& bucket, const std::string& key, std::string_view value) override;
  Result<std::optional<std::string>> KvGet(const std::string& bucket, const std::string& key) override;
  Status KvDelete(const std::string& bucket, const std::string& key) override;
  Result<std::vector<std::pair<std::string, std::string>>> KvAll(const std::string& bucket) override;
  Result<std::unique_ptr<Subscription>> KvWatch(const std::string& bucket, const std::string& key,
                                                KvWatchCallback cb) override;
  Result<std::unique_ptr<PullConsumer>> PullSubscribe(const std::string& stream, const std::string& filter,
                                                      const std::string& durable) override;

  int64_t timeout_ms() const { return timeout_ms_; }

 private:
  // Credentials never leave through an error message.
  std::string Scrub(std::string text) const {
    for (const std::string& s : servers_) text = ScrubUrl(text, s);
    return text;
  }
  // The bucket's handle, cached.
  Result<kvStore*> Kv(const std::string& bucket);
  Status UpdateBucketStream(const BucketSpec& spec);
  Result<WatcherPtr> Watch(const std::string& bucket, const std::string& key, bool include_deletes);

  natsConnection* nc_;
  jsCtx* js_;
  std::unique_ptr<AsyncState> state_;
  std::string servers_text_;
  std::vector<std::string> servers_;
  int64_t timeout_ms_;
  std::mutex kv_mu_;
  std::map<std::string, kvStore*> kv_;
};

Status Client::EnsureStream(const StreamSpec& spec) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  std::vector<const char*> subjects;
  for (const std::string& s : spec.subjects) subjects.push_back(s.c_str());
  cfg.Name = spec.name.c_str();
  cfg.Subjects = subjects.data();
  cfg.SubjectsLen = static_cast<int>(subjects.size());
  cfg.Replicas = spec.replicas;
  cfg.MaxBytes = spec.max_bytes;
  cfg.MaxAge = spec.max_age_secs * kNanosPerSec;
  cfg.Duplicates = spec.duplicates_secs * kNanosPerSec;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&raw, js_, &cfg, nullptr, &jerr);
  StreamInfoPtr added(raw);
  if (s != NATS_OK && jerr == JSStreamNameExistErr) {
    raw = nullptr;
    s = js_UpdateStream(&raw, js_, &cfg, nullptr, &jerr);
    StreamInfoPtr updated(raw);
  }
  return s == NATS_OK ? Status::Ok() : Error(s, "creating stream " + spec.name);
}

Result<PubAck> Client::JsPublish(const std::string& subject, std::string_view data, const std::string& msg_id,
                                 int64_t timeout_ms) {
  // Not while reconnecting: libnats would buffer the message and send it later, after this call
  // gave up, possibly beyond the stream's duplicate window.
  if (!connected())
    return UnavailableError("NATS " + servers_text_ + ": not connected; not publishing to " + subject);
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms;
  if (!msg_id.empty()) po.MsgId = msg_id.c_str();
  jsPubAck* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s =
      js_Publish(&raw, js_, subject.c_str(), data.data(), static_cast<int>(data.size()), &po, &jerr);
  PubAckPtr ack(raw);
  if (s == NATS_NO_RESPONDERS) {
    return UnavailableError("NATS " + servers_text_ + ": no JetStream stream answered for " + subject +
                            " (stream missing, no leader, or the cluster is down)");
  }
  if (s != NATS_OK) return Error(s, "JetStream publish to " + subject);
  return PubAck{ack->Stream != nullptr ? ack->Stream : "", ack->Sequence, ack->Duplicate};
}

Result<kvStore*> Client::Kv(const std::string& bucket) {
  std::lock_guard lock(kv_mu_);
  auto it = kv_.find(bucket);
  if (it != kv_.end()) return it->second;
  kvStore* kv = nullptr;
  const natsStatus s = js_KeyValue(&kv, js_, bucket.c_str());
  if (s == NATS_NOT_FOUND) return NotFoundError("NATS " + servers_text_ + ": no key-value bucket " + bucket);
  if (s != NATS_OK) return Error(s, "opening key-value bucket " + bucket);
  kv_[bucket] = kv;
  return kv;
}

Status Client::EnsureBucket(const BucketSpec& spec) {
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = spec.name.c_str();
  cfg.History = static_cast<uint8_t>(std::clamp(spec.history, 1, 64));
  cfg.Replicas = spec.replicas;
  cfg.MaxValueSize = static_cast<int32_t>(std::min<int64_t>(spec.max_value_bytes, INT32_MAX));
  cfg.TTL = spec.ttl_secs * 1000;
  cfg.StorageType = js_FileStorage;
  kvStore* kv = nullptr;
  const natsStatus s = js_CreateKeyValue(&kv, js_, &cfg);
  if (s == NATS_OK) {
    kvStore_Destroy(kv);
    return Status::Ok();
  }
  // An existing bucket with other settings: update its stream.
  Status updated = UpdateBucketStream(spec);
  return updated.ok() ? updated : Error(s, "creating key-value bucket " + spec.name);
}

Status Client::UpdateBucketStream(const BucketSpec& spec) {
  const std::string stream = "KV_" + spec.name;
  jsStreamInfo* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw, js_, stream.c_str(), nullptr, &jerr);
  StreamInfoPtr info(raw);
  if (s != NATS_OK) return Error(s, "reading stream " + stream);
  jsStreamConfig* cfg = info->Config;
  cfg->Replicas = spec.replicas;
  cfg->MaxMsgsPerSubject = std::clamp(spec.history, 1, 64);
  cfg->MaxMsgSize = static_cast<int32_t>(std::min<int64_t>(spec.max_value_bytes, INT32_MAX));
  cfg->MaxAge = spec.ttl_secs * kNanosPerSec;
  raw = nullptr;
  s = js_UpdateStream(&raw, js_, cfg, nullptr, &jerr);
  StreamInfoPtr updated(raw);
  return s == NATS_OK ? Status::Ok() : Error(s, "updating key-value bucket " + spec.name);
}

Result<uint64_t> Client::KvPut(const std::string& bucket, const std::string& key, std::string_view value) {
  ASSIGN_OR_RETURN(kvStore * kv, Kv(bucket));
  uint64_t rev = 0;
  const natsStatus s = kvStore_Put(&rev, kv, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return Error(s, "putting " + bucket + "/" + key);
  return rev;
}

Result<std::optional<std::string>> Client::KvGet(const std::string& bucket, const std::string& key) {
  ASSIGN_OR_RETURN(kvStore * kv, Kv(bucket));
  kvEntry* raw = nullptr;
  const natsStatus s = kvStore_Get(&raw, kv, key.c_str());
  KvEntryPtr e(raw);
  if (s == NATS_NOT_FOUND) return std::optional<std::string>();
  if (s != NATS_OK) return Error(s, "getting " + bucket + "/" + key);
  return std::optional<std::string>(ValueOf(e.get()));
}

Status Client::KvDelete(const std::string& bucket, const std::string& key) {
  ASSIGN_OR_RETURN(kvStore * kv, Kv(bucket));
  const natsStatus s = kvStore_Delete(kv, key.c_str());
  return s == NATS_OK ? Status::Ok() : Error(s, "deleting " + bucket + "/" + key);
}

Result<WatcherPtr> Client::Watch(const std::string& bucket, const std::string& key, bool include_deletes) {
  ASSIGN_OR_RETURN(kvStore * kv, Kv(bucket));
  kvWatchOptions wo;
  kvWatchOptions_Init(&wo);
  wo.IgnoreDeletes = !include_deletes;
  wo.Timeout = timeout_ms_;
  kvWatcher* raw = nullptr;
  const bool all = key.empty() || key == ">";
  const natsStatus s = all ? kvStore_WatchAll(&raw, kv, &wo) : kvStore_Watch(&raw, kv, key.c_str(), &wo);
  WatcherPtr w(raw);
  if (s != NATS_OK) return Error(s, "watching " + bucket + "/" + (all ? ">" : key));
  return w;
}

Result<std::vector<std::pair<std::string, std::string>>> Client::KvAll(const std::string& bucket) {
  ASSIGN_OR_RETURN(WatcherPtr w, Watch(bucket, ">", /*include_deletes=*/false));
  std::map<std::string, std::string> latest;
  while (true) {
    kvEntry* raw = nullptr;
    const natsStatus s = kvWatcher_Next(&raw, w.get(), timeout_ms_);
    KvEntryPtr e(raw);
    if (s != NATS_OK) return Error(s, "listing " + bucket);
    if (!e) break;  // every current value seen
    if (kvEntry_Operation(e.get()) == kvOp_Put) {
      latest[kvEntry_Key(e.get())] = ValueOf(e.get());
    } else {
      latest.erase(kvEntry_Key(e.get()));
    }
  }
  return std::vector<std::pair<std::string, std::string>>(latest.begin(), latest.end());
}

Result<std::unique_ptr<Subscription>> Client::KvWatch(const std::string& bucket, const std::string& key,
                                                      KvWatchCallback cb) {
  ASSIGN_OR_RETURN(WatcherPtr w, Watch(bucket, key, /*include_deletes=*/true));
  return std::unique_ptr<Subscription>(new KvWatchSubscription(w.release(), std::move(cb)));
}

Result<std::unique_ptr<PullConsumer>> Client::PullSubscribe(const std::string& stream,
                                                            const std::string& filter,
                                                            const std::string& durable) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.DeliverPolicy = js_DeliverAll;
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_PullSubscribe(&sub, js_, filter.c_str(), durable.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) {
    natsSubscription_Destroy(sub);
    return Error(s, "pull consumer " + durable + " on stream " + stream);
  }
  return std::unique_ptr<PullConsumer>(
      new Pull(*this, sub, "pull consumer " + durable + " on stream " + stream));
}

// One fetched message as a JsMsg whose ack/nak keep the natsMsg alive.
JsMsg ToJsMsg(natsMsg* msg, int64_t timeout_ms, const Client& client) {
  std::shared_ptr<natsMsg> owned(msg, natsMsg_Destroy);
  JsMsg m;
  m.subject = natsMsg_GetSubject(msg);
  m.data = DataOf(msg);
  m.headers = HeadersOf(msg);
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) == NATS_OK && meta != nullptr) {
    m.stream_seq = meta->Sequence.Stream;
    m.num_delivered = meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
  }
  m.ack = [owned, timeout_ms, &client]() -> Status {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = timeout_ms;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = natsMsg_AckSync(owned.get(), &jo, &jerr);
    return s == NATS_OK ? Status::Ok() : client.Error(s, "acknowledging a message");
  };
  m.nak = [owned, &client]() -> Status {
    const natsStatus s = natsMsg_Nak(owned.get(), nullptr);
    return s == NATS_OK ? Status::Ok() : client.Error(s, "negative acknowledgement");
  };
  return m;
}

Result<std::vector<JsMsg>> Pull::Fetch(int max, int64_t timeout_ms) {
  natsMsgList list{nullptr, 0};
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = natsSubscription_Fetch(&list, sub_, std::max(max, 1), timeout_ms, &jerr);
  std::vector<JsMsg> out;
  if (s == NATS_TIMEOUT && client_.connected()) return out;  // nothing new in time
  if (s != NATS_OK) {
    natsMsgList_Destroy(&list);
    return client_.Error(s, "fetching from " + what_);
  }
  for (int i = 0; i < list.Count; ++i) {
    out.push_back(ToJsMsg(list.Msgs[i], client_.timeout_ms(), client_));
    list.Msgs[i] = nullptr;  // owned by the JsMsg now
  }
  natsMsgList_Destroy(&list);
  return out;
}

// ---- connecting

Status SetTls(natsOptions* opts, const ConnectOptions& o) {
  const bool tls_url = std::any_of(o.servers.begin(), o.servers.end(),
                                   [](const std::string& s) { return StartsWith(s, "tls://"); });
  if (!tls_url && o.tls.ca.empty() && o.tls.cert.empty()) return Status::Ok();
  if (natsOptions_SetSecure(opts, true) != NATS_OK) return InternalError("NATS: TLS unavailable in libnats");
  if (!o.tls.ca.empty() && natsOptions_LoadCATrustedCertificates(opts, o.tls.ca.c_str()) != NATS_OK) {
    return InvalidArgumentError("NATS: fleet.tls.ca: cannot load " + o.tls.ca + ": " +
                                ErrorText(NATS_SSL_ERROR));
  }
  if (!o.tls.cert.empty() &&
      natsOptions_LoadCertificatesChain(opts, o.tls.cert.c_str(), o.tls.key.c_str()) != NATS_OK) {
    return InvalidArgumentError("NATS: fleet.tls.cert/key: cannot load " + o.tls.cert + " / " + o.tls.key);
  }
  return Status::Ok();
}

Result<OptionsPtr> BuildOptions(const ConnectOptions& o, AsyncState& state) {
  natsOptions* raw = nullptr;
  if (natsOptions_Create(&raw) != NATS_OK) return InternalError("NATS: cannot create connection options");
  OptionsPtr opts(raw);
  std::vector<const char*> urls;
  for (const std::string& s : o.servers) urls.push_back(s.c_str());
  natsOptions* p = opts.get();
  natsStatus s = natsOptions_SetServers(p, urls.data(), static_cast<int>(urls.size()));
  if (s != NATS_OK) return InvalidArgumentError("NATS: bad server list: " + ErrorText(s));
  natsOptions_SetTimeout(p, o.timeout_ms);
  if (!o.name.empty()) natsOptions_SetName(p, o.name.c_str());
  natsOptions_SetMaxReconnect(p, o.reconnect_forever ? -1 : 10);
  natsOptions_SetReconnectWait(p, o.reconnect_wait_ms);
  // With a connected callback libnats retries in the background (without one it would block in
  // Connect, for ever with unlimited reconnects).
  natsOptions_SetRetryOnFailedConnect(p, o.retry_initial_connect, OnConnected, &state);
  natsOptions_SetErrorHandler(p, OnAsyncError, &state);
  natsOptions_SetClosedCB(p, OnClosed, &state);
  if (!o.credentials.empty() &&
      natsOptions_SetUserCredentialsFromFiles(p, o.credentials.c_str(), nullptr) != NATS_OK) {
    return InvalidArgumentError("NATS: fleet.credentials: cannot use " + o.credentials);
  }
  RETURN_IF_ERROR(SetTls(p, o));
  return opts;
}

std::string ServersText(const std::vector<std::string>& servers) {
  std::vector<std::string> shown;
  shown.reserve(servers.size());
  for (const std::string& s : servers) shown.push_back(RedactUrl(s));
  return Join(shown, ", ");
}

}  // namespace

Result<std::unique_ptr<NatsClient>> NatsClient::Connect(const ConnectOptions& options) {
  if (options.servers.empty()) return InvalidArgumentError("NATS: no servers configured (fleet.servers)");
  const std::string servers = ServersText(options.servers);
  auto state = std::make_unique<AsyncState>();
  ASSIGN_OR_RETURN(OptionsPtr opts, BuildOptions(options, *state));
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_Connect(&nc, opts.get());
  if (s == NATS_NOT_YET_CONNECTED && options.retry_initial_connect) s = NATS_OK;
  if (s != NATS_OK) {
    std::string text = ErrorText(s);
    for (const std::string& url : options.servers) text = ScrubUrl(text, url);
    natsConnection_Destroy(nc);
    RetainForLibnats(std::move(state));
    return UnavailableError("NATS " + servers + ": cannot connect: " + text);
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options.timeout_ms;
  jsCtx* js = nullptr;
  s = natsConnection_JetStream(&js, nc, &jo);
  if (s != NATS_OK) {
    natsConnection_Destroy(nc);
    RetainForLibnats(std::move(state));
    return InternalError("NATS " + servers + ": JetStream context: " + ErrorText(s));
  }
  return std::unique_ptr<NatsClient>(
      new Client(nc, js, std::move(state), servers, options.servers, options.timeout_ms));
}

}  // namespace sentinel::fleet
