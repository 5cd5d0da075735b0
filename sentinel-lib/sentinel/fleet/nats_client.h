// NatsClient: SentinelD's one entry point to NATS and JetStream (SPEC §14), a small RAII facade over
// libnats (the C client). Everything the fleet does goes through it: core publish/subscribe and
// inboxes, JetStream streams and publishes with Nats-Msg-Id deduplication, key-value buckets
// (put/get/list/watch) and durable pull consumers.
//
// Errors are Status/Result values that name the server(s) (credentials left out) and the subject,
// stream or bucket involved. A broker that is down, unreachable or has no JetStream responder for
// the subject is kUnavailable; an operation whose own time limit passed while connected is
// kDeadlineExceeded; a permissions violation is kPermissionDenied; a missing key kNotFound only
// where stated. Every call takes or uses a time limit: nothing here blocks for ever, so collection
// and detection never wait on the fleet.
//
// Threads: a NatsClient may be used from several threads at once (libnats connections are
// thread-safe). Subscription and watch callbacks run on libnats' own threads, one at a time per
// subscription; they must not destroy their own Subscription. Destroying a Subscription
// unsubscribes and waits for a callback in progress to return. The client must outlive its
// Subscriptions, PullConsumers and fetched JsMsgs (their ack/nak use it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/config/config.h"

namespace sentinel::fleet {

struct ConnectOptions {
  std::vector<std::string> servers;  // nats://host:port or tls://host:port, user:pass@ allowed
  std::string credentials;           // NATS .creds file; "" = none
  config::FleetTlsConfig tls;        // ca / cert+key; "" each = none
  std::string name;                  // connection name shown by the server (e.g. "sentinelagent host-1")
  int64_t timeout_ms = 2000;         // connect, flush, request and JetStream API time limit
  // After the first connection, reconnect for ever (true) or give up after a few tries.
  bool reconnect_forever = true;
  // true: Connect succeeds even when no server answers yet and keeps trying in the background (an
  // agent starting before its brokers); calls fail with kUnavailable until connected.
  // false: Connect fails with kUnavailable naming the servers (a console command).
  bool retry_initial_connect = false;
  int64_t reconnect_wait_ms = 500;  // pause between reconnect attempts to one server
};

// One message as a subscriber receives it.
struct Message {
  std::string subject;
  std::string reply;  // "" when the publisher expects no reply
  std::string data;
  std::map<std::string, std::string> headers;  // first value of each header
};

// An active subscription (or KV watch); unsubscribes on destruction.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

// A JetStream publish acknowledgement.
struct PubAck {
  std::string stream;
  uint64_t sequence = 0;   // the stream sequence of the stored message (of the first copy if duplicate)
  bool duplicate = false;  // the Msg-Id was seen within the stream's duplicate window: not stored again
};

// A message fetched from a durable pull consumer; ack() after it is safely processed.
struct JsMsg {
  std::string subject, data;
  std::map<std::string, std::string> headers;
  uint64_t stream_seq = 0;
  uint64_t num_delivered = 1;   // how many times the server delivered it (1 = first time)
  std::function<Status()> ack;  // acknowledges this message (waits for the server's confirmation)
  std::function<Status()> nak;  // asks for redelivery now
};

class PullConsumer {
 public:
  virtual ~PullConsumer() = default;
  // Up to `max` messages; fewer (possibly none, an OK empty vector) when `timeout_ms` passes first.
  virtual Result<std::vector<JsMsg>> Fetch(int max, int64_t timeout_ms) = 0;
};

class NatsClient {
 public:
  // Connects to one of `options.servers`. kInvalidArgument for no servers or a bad TLS/creds file
  // (naming it), kUnavailable naming the servers when none answers within timeout_ms (unless
  // retry_initial_connect).
  static Result<std::unique_ptr<NatsClient>> Connect(const ConnectOptions& options);

  virtual ~NatsClient() = default;
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  // True while connected to a server (false while reconnecting).
  virtual bool connected() const = 0;
  // The configured servers as shown in messages: "nats://10.0.0.5:4222, nats://10.0.0.6:4222".
  virtual const std::string& servers_text() const = 0;
  // Servers this client knows of: configured plus those the cluster announced (INFO connect_urls).
  virtual int KnownServerCount() const = 0;
  // The last error the server reported asynchronously (e.g. kPermissionDenied for a publish the
  // user's permissions refuse: core publishes are not acknowledged), or OK.
  virtual Status LastAsyncError() const = 0;

  // ---- core NATS
  virtual Status Publish(const std::string& subject, std::string_view data,
                         const std::string& reply = "") = 0;
  // `cb` receives every message on `subject` (wildcards allowed) until the Subscription is destroyed.
  virtual Result<std::unique_ptr<Subscription>> Subscribe(const std::string& subject,
                                                          std::function<void(Message)> cb) = 0;
  // One request, the first reply; kUnavailable when nobody is subscribed ("no responders"),
  // kDeadlineExceeded when no reply came within timeout_ms.
  virtual Result<Message> Request(const std::string& subject, std::string_view data, int64_t timeout_ms) = 0;
  // A fresh unique inbox subject (_INBOX.xxx) for replies.
  virtual std::string NewInbox() = 0;
  // Waits until the server has processed everything published so far.
  virtual Status Flush(int64_t timeout_ms) = 0;

  // ---- JetStream streams
  struct StreamSpec {
    std::string name;
    std::vector<std::string> subjects;
    int replicas = 1;
    int64_t max_bytes = -1;    // -1 = unlimited
    int64_t max_age_secs = 0;  // 0 = unlimited
    int64_t duplicates_secs = 120;
  };
  // Creates the stream, or updates it to `spec` when it exists.
  virtual Status EnsureStream(const StreamSpec& spec) = 0;

  // Publishes to the stream holding `subject` and waits up to timeout_ms for its acknowledgement.
  // `msg_id` ("" = none) becomes the Nats-Msg-Id header: a second publish with the same id within
  // the stream's duplicate window is acknowledged (duplicate = true) but not stored again.
  // kUnavailable when no stream/leader answers or the connection is down.
  virtual Result<PubAck> JsPublish(const std::string& subject, std::string_view data,
                                   const std::string& msg_id, int64_t timeout_ms) = 0;

  // ---- JetStream key-value buckets
  struct BucketSpec {
    std::string name;
    int replicas = 1;
    int history = 1;
    int64_t max_value_bytes = -1;  // -1 = unlimited
    int64_t ttl_secs = 0;          // 0 = keys never expire
  };
  // Creates the bucket, or updates it to `spec` when it exists.
  virtual Status EnsureBucket(const BucketSpec& spec) = 0;
  // Returns the new revision.
  virtual Result<uint64_t> KvPut(const std::string& bucket, const std::string& key,
                                 std::string_view value) = 0;
  // nullopt when the key does not exist or was deleted; kNotFound when the bucket does not exist.
  virtual Result<std::optional<std::string>> KvGet(const std::string& bucket, const std::string& key) = 0;
  virtual Status KvDelete(const std::string& bucket, const std::string& key) = 0;
  // Every live key and its value, sorted by key.
  virtual Result<std::vector<std::pair<std::string, std::string>>> KvAll(const std::string& bucket) = 0;
  // Calls `cb` with the current value of `key` (if any) and then with every change: the new value,
  // or nullopt when it is deleted, and the revision. key "" or ">" watches every key; then the key
  // is passed as well (the three-argument form).
  using KvWatchCallback =
      std::function<void(const std::string& key, std::optional<std::string> value, uint64_t revision)>;
  virtual Result<std::unique_ptr<Subscription>> KvWatch(const std::string& bucket, const std::string& key,
                                                        KvWatchCallback cb) = 0;

  // ---- durable pull consumer
  // Binds to (creating when missing) the durable consumer `durable` of `stream`, filtered on
  // `filter` (e.g. "sentineld.alerts.>"), explicit acks.
  virtual Result<std::unique_ptr<PullConsumer>> PullSubscribe(const std::string& stream,
                                                              const std::string& filter,
                                                              const std::string& durable) = 0;

 protected:
  NatsClient() = default;
};

}  // namespace sentinel::fleet
