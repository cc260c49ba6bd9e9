#pragma once
// A blocking etcd v3 client over etcd's HTTP/JSON gateway (grpc-gateway),
// for membership: engines register under a key prefix with a lease for
// liveness, and claim names with put-if-absent transactions.
//
//   POST http://HOST:PORT/v3/kv/put, kv/range, kv/deleterange, kv/txn,
//        /v3/lease/grant, lease/keepalive, lease/revoke   → one JSON object
//   POST http://HOST:PORT/v3/watch                        → one JSON object a line,
//                                                           for as long as it runs
//
// Keys and values travel base64-encoded; int64 fields (revisions, lease ids)
// as JSON strings. Every request carries "Grpc-Metadata-hasleader: true", so
// a member cut off from its leader says "no leader" at once (HTTP 503)
// instead of hanging, and the client moves on to the next endpoint.
//
// It runs on its own threads, never on a shard: every call blocks.
//
// GOOD: claim a name for as long as this engine's lease lives.
//   auto lease = etcd.grant_lease(5s);
//   auto mine = etcd.put_if_absent("/troupe/names/kv", "engine 3", *lease);
// BAD: call it from an actor's handler; it blocks the shard for up to the timeout.

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "troupe/result.hpp"

struct curl_slist;

namespace troupe::internal {

/// Reads "etcd://HOST:PORT[,HOST:PORT...]" into its endpoints, "HOST:PORT"
/// each (HOST may be "[v6-address]"). Any other form is an errc::misuse
/// error that quotes the URL and says what is wrong with it.
result<std::vector<std::string>> parse_etcd_url(std::string_view url);

/// One key as etcd holds it.
struct etcd_kv {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t lease = 0;  ///< 0: none
};

/// The keys under a prefix, as of one revision of the store.
struct etcd_range {
  std::vector<etcd_kv> kvs;  ///< in key order
  /// The store's revision when it was read: watch from revision + 1 to see
  /// every change after this read.
  std::int64_t revision = 0;
};

/// One change seen by a watch.
struct etcd_event {
  enum class kind : std::uint8_t { put, remove };
  kind type = kind::put;
  std::string key;
  std::string value;  ///< empty for kind::remove
  std::int64_t mod_revision = 0;
};

/// One key read at one revision of the store.
struct etcd_read {
  std::optional<etcd_kv> kv;  ///< nullopt: no such key
  std::int64_t revision = 0;  ///< the store's revision when it was read
};

/// How a create_or_read went.
struct etcd_claim {
  bool created = false;  ///< this call created the key (or had, in an earlier try)
  etcd_kv holder;        ///< the key as it is now: this caller's, or who else holds it
  /// The store's revision after the call: watch from revision + 1 to see
  /// every later change of the key.
  std::int64_t revision = 0;
};

class etcd_watch;

/// A client of one etcd cluster, reached at any of its endpoints.
///
/// Any thread may call any method, also concurrently (each call takes its own
/// connection). Never call it on a shard thread: every call blocks.
///
/// A call tries the endpoint that answered last, and on a connection failure
/// or an "unavailable" answer (no leader, leader changed) the next one, round
/// and round with a short pause between rounds, until one answers or the
/// request timeout has passed since the call began. One attempt may take a
/// third of the timeout (at least 1 s): a member that passed the request to
/// a leader that just died never answers it. So a 3-node cluster that loses
/// one node, even its leader, only delays calls by about the election.
///
/// A request that was sent but not answered may be sent again to another
/// endpoint. Each method below says what that means for it.
class etcd_client {
 public:
  /// `endpoints`: "host:port" each, at least one (else std::invalid_argument).
  /// `timeout`: the longest any one call may take.
  explicit etcd_client(std::vector<std::string> endpoints,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~etcd_client();
  etcd_client(const etcd_client&) = delete;
  etcd_client& operator=(const etcd_client&) = delete;

  const std::vector<std::string>& endpoints() const noexcept { return endpoints_; }
  std::chrono::milliseconds timeout() const noexcept { return timeout_; }

  /// A new lease that expires `ttl` after its last keep-alive (etcd may
  /// round `ttl` up to its minimum). Returns its id. If sent twice, the
  /// extra lease just expires.
  result<std::int64_t> grant_lease(std::chrono::seconds ttl);

  /// Renews `lease`; returns the time it has left. errc::not_found when the
  /// lease expired or was revoked: its keys are gone.
  result<std::chrono::seconds> keep_alive(std::int64_t lease);

  /// Revokes `lease`, which deletes its keys. A lease already gone is no error.
  result<done> revoke(std::int64_t lease);

  /// Sets `key` to `value`, tied to `lease` when it is not 0 (the lease must
  /// exist: else errc::not_found).
  result<done> put(std::string_view key, std::string_view value, std::int64_t lease = 0);

  /// The value of `key`, or nullopt when there is none.
  result<std::optional<std::string>> get(std::string_view key);

  /// Every key that starts with `prefix` ("" for all), and the revision read.
  result<etcd_range> range_prefix(std::string_view prefix);

  /// Deletes `key`; true when it existed. (If sent twice, the second finds
  /// nothing and it says false.)
  result<bool> remove(std::string_view key);

  /// Creates `key` with `value` and `lease` only if no such key exists (a txn
  /// comparing its create_revision with 0). True: this call created it, or
  /// the key already holds exactly this value under this same lease (not 0),
  /// which makes a claim safe to repeat. False: someone else holds it.
  result<bool> put_if_absent(std::string_view key, std::string_view value, std::int64_t lease);

  /// `key` with its lease and revisions, and the revision it was read at.
  result<etcd_read> read(std::string_view key);

  /// put_if_absent that also says who holds the key when it was not
  /// created: one txn that creates `key` if no such key exists, else reads
  /// it. Safe to repeat as put_if_absent is (created is true when the key
  /// holds exactly `value` under this same `lease`, not 0).
  result<etcd_claim> create_or_read(std::string_view key, std::string_view value,
                                    std::int64_t lease);

  /// Deletes `key` only if it holds exactly `value` (a txn comparing the
  /// value), so that a newer holder is never removed. True when it did; if
  /// sent twice, the second finds nothing and says false.
  result<bool> remove_if(std::string_view key, std::string_view value);

  /// Moves `key` onto `lease` if it holds exactly `value` (a txn comparing
  /// the value, then a put of the same value). True when it did: a key
  /// whose old lease is about to end lives on with the new one. Safe to
  /// repeat.
  result<bool> reattach(std::string_view key, std::string_view value, std::int64_t lease);

  /// Watches every key that starts with `prefix`, from `start_revision` (0:
  /// from now on), on a thread of its own, until the returned watch stops or
  /// is destroyed.
  ///
  /// `on_events` (not empty, else std::invalid_argument) gets each batch of
  /// changes in revision order, on the watch's thread. When a stream breaks
  /// (endpoint down, no leader) the watch goes on at the next endpoint from
  /// the revision after the last one delivered, so nothing is lost or
  /// repeated; `on_error` (may be empty) hears of it with final == false. If
  /// etcd has compacted away the revisions the watch needs, it cannot go on:
  /// `on_error` gets final == true and the watch ends (read the prefix again
  /// and start a new watch).
  ///
  /// Both callables are kept until the watch's thread ends and are called
  /// one at a time; they may call stop() but must not destroy the watch. The
  /// watch keeps its own copy of the endpoints: it may outlive this client.
  std::unique_ptr<etcd_watch> watch_prefix(
      std::string prefix, std::int64_t start_revision,
      std::function<void(const std::vector<etcd_event>&)> on_events,
      std::function<void(const error& e, bool final)> on_error = nullptr);

 private:
  struct handle_pool;

  /// POSTs `body` to `path`, trying the endpoints as above; the parsed reply.
  result<nlohmann::json> call(std::string_view path, const nlohmann::json& body);

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  std::atomic<std::size_t> preferred_{0};  ///< the endpoint that answered last
  std::unique_ptr<handle_pool> pool_;
};

/// A running watch (see etcd_client::watch_prefix). Any thread may call
/// stop() or revision(); the destructor stops it and waits for its thread,
/// so it must not run on that thread (in a callback).
class etcd_watch {
 public:
  ~etcd_watch();
  etcd_watch(const etcd_watch&) = delete;
  etcd_watch& operator=(const etcd_watch&) = delete;

  /// Ends the watch: no callback starts after stop() returns, unless it is
  /// called from a callback (then that one finishes first). Idempotent.
  void stop();

  /// The last revision the watch has covered: that of the last event
  /// delivered, or the one before it started (-1 while a watch "from now"
  /// has not yet been accepted).
  std::int64_t revision() const noexcept { return next_revision_.load() - 1; }

  /// False once stopped or ended by a final error.
  bool running() const noexcept { return !done_.load(); }

 private:
  friend class etcd_client;
  etcd_watch(std::vector<std::string> endpoints, std::chrono::milliseconds connect_timeout,
             std::size_t first, std::string prefix, std::int64_t start_revision,
             std::function<void(const std::vector<etcd_event>&)> on_events,
             std::function<void(const error&, bool)> on_error);

  struct stream;
  /// How one stream ended.
  struct outcome {
    error why;
    bool final;    ///< the watch cannot go on
    bool created;  ///< etcd had accepted the watch: the endpoint worked
  };

  void run();
  /// One stream at one endpoint, until it breaks or the watch stops.
  outcome run_stream(const std::string& endpoint);
  /// Takes one line of a stream; false ends the stream (why in `s`).
  bool on_line(stream& s, std::string_view line);
  /// Waits `d` unless stopped first; false when stopped.
  bool pause(std::chrono::milliseconds d);
  void report(const error& e, bool final);

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds connect_timeout_;
  std::size_t first_;
  std::string prefix_;
  std::function<void(const std::vector<etcd_event>&)> on_events_;
  std::function<void(const error&, bool)> on_error_;

  /// Where a new stream starts: after the last revision delivered (0: now).
  std::atomic<std::int64_t> next_revision_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> done_{false};
  curl_slist* headers_;
  std::mutex mutex_;  ///< guards multi_; with wake_, the pause between rounds
  std::condition_variable wake_;
  void* multi_ = nullptr;  ///< the CURLM* of the stream running, for stop() to wake
  std::mutex join_mutex_;
  std::thread thread_;
};

}  // namespace troupe::internal
