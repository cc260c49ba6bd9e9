#pragma once
// The directory's names in etcd (--membership etcd://...): instead of a
// directory engine chosen by hashing, each name is one key
//
//   /troupe/<convention>/names/<name>  →  {"address": "E:S:L.I", "engine": E}
//
// created by a transaction "only if absent" (create_revision == 0) on the
// lease of the owning engine's membership record, so a lost engine's
// names go with its lease, and deleted when the actor ends (only if it
// still holds that actor's value, so a newer owner is never removed).
//
//   spawn_named ──▶ the name's shard here ──job──▶ etcd thread ──txn──▶ etcd
//                     (one request per name     │   (the winner installs
//                      in flight; the rest wait) ◀─ name_etcd_result ─┘ its actor)
//   etcd watch of the names prefix ──name_changed──▶ every shard (drops cached bindings)
//
// A name's shard on each engine caches what etcd said while the watch
// would tell it of a change: a result read at revision R is cached only if
// the watch has delivered nothing after R, and both are posted under one
// lock, so the invalidation of a later change always comes after it.
//
// GOOD: two engines spawn "db" at once: one txn creates the key, the other
//   reads the winner's address back; both callers get the same actor.
// BAD: answering a claim from a cache the watch cannot invalidate (before
//   the watch runs, or after it broke for good): a stale "db" forever.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "core/extension_points.hpp"
#include "troupe/address.hpp"
#include "troupe/internal/envelope.hpp"

namespace troupe::internal {

class shard;
class system_impl;

/// From the etcd names thread to a name's shard (below):
/// how its request to etcd went. Never crosses to another engine.
struct name_etcd_result {
  enum class op : std::uint8_t { claim, lookup, release };
  op what;
  std::string name;
  envelope* request;  ///< the claim or lookup that asked (null for a release): the shard's again
  bool ok;            ///< etcd answered; else `code` and `text` say why not
  bool created;       ///< a claim: its actor is the name's, at `who`
  bool cacheable;     ///< the watch will tell of any later change of the name
  address who;        ///< the name's actor as etcd holds it; null: the name is free
  errc code;
  std::string text;
};
/// From the etcd names watch to every shard of this engine: the name's
/// binding in etcd is now `now` (null: none); drop a cached one that
/// differs. `all`: forget every cached name (the watch missed changes).
struct name_changed {
  std::string name;
  address now;
  bool all = false;
};
/// The names of one engine's directory, kept in etcd. Owned by its
/// system_impl (its name backend), created before the shards run and closed
/// before they stop.
///
/// Threads: handle() and forget_engine() on a shard's own thread, for
/// that shard (each shard's cache is its own); set_lease() and close()
/// from any thread. The etcd calls run on a thread of this object, never
/// on a shard; their results come back to the name's shard as messages.
class etcd_names final : public name_backend {
 public:
  /// Longest name kept in etcd, in bytes.
  static constexpr std::size_t max_name_bytes = 1024;

  etcd_names(system_impl& sys, std::vector<std::string> endpoints, const std::string& convention);
  ~etcd_names() override;  ///< close()
  etcd_names(const etcd_names&) = delete;
  etcd_names& operator=(const etcd_names&) = delete;

  /// "/troupe/<convention>/names/": every name's key starts with it.
  const std::string& prefix() const noexcept { return prefix_; }

  /// The membership's lease, on which names are claimed; 0 when it has
  /// none (expired, not registered yet). A new lease after an old one
  /// ended: the names this engine held are claimed again on it (those
  /// taken by another engine meanwhile stay with it). Any thread.
  void set_lease(std::int64_t lease);

  /// Stops taking requests: the queued ones fail with errc::shutting_down,
  /// the one running finishes (its etcd call is bounded), the watch ends.
  /// Call while the shards still run: the answers go to them. Idempotent.
  void close() override;

  /// A name control message for shard `s` (name_claim, name_lookup,
  /// name_release, name_etcd_result, name_changed): handles it and takes
  /// `e`; false (and `e` untouched) if it is none of these. `running`:
  /// the shard is not shutting down. The shard's own thread.
  bool handle(shard& s, envelope* e, bool running) override;

  /// The link to `engine` is gone: `s` forgets its cached bindings to
  /// actors there (etcd keeps them until that engine's lease ends). The
  /// shard's own thread.
  void forget_engine(shard& s, std::uint32_t engine) override;

 private:
  struct job {
    enum class kind : std::uint8_t { claim, lookup, release, reclaim };
    kind what;
    std::string name;
    std::uint16_t shard = 0;      ///< the name's shard, which gets the result
    address who;                  ///< claim: the actor to be; release, reclaim: the one held
    envelope* request = nullptr;  ///< claim, lookup: the asker's envelope, handed back
  };
  /// One shard's part: touched only by that shard's thread.
  struct shard_side {
    /// Bindings as etcd gave them, while the watch would invalidate them.
    std::unordered_map<std::string, address> bound;
    /// Names with a request to etcd in flight, and what waits for it.
    std::unordered_map<std::string, std::vector<envelope*>> busy;
  };

  // shard side (engine/etcd_names.cpp)
  void on_claim(shard& s, envelope* e, bool running);
  void on_lookup(shard& s, envelope* e);
  void on_release(shard& s, envelope* e);
  void on_result(shard& s, envelope* e, bool running);
  /// Queues `j`; false when closed (then the caller keeps j.request).
  bool submit(job j);

  // etcd side: the thread of this object
  void run();
  void run_job(job& j);
  /// (Re)starts the watch of the names prefix; false if etcd did not answer.
  bool start_watch();
  void on_events(const std::vector<etcd_event>& events);
  /// The lease to claim on, waiting (bounded) while there is none; 0: none.
  std::int64_t wait_lease();
  /// Answers `j` on its name's shard (and takes j.request with it).
  void post(job& j, bool ok, bool created, address who, std::int64_t revision, errc code,
            std::string text);
  /// Posts name_changed to every shard. Under lock_.
  void broadcast_change(const std::string& name, const address& now, bool all);
  std::string key_of(const std::string& name) const { return prefix_ + name; }
  std::string not_found_text(const std::string& name) const;

  system_impl& sys_;
  const std::string prefix_;
  std::vector<std::unique_ptr<shard_side>> sides_;
  etcd_client client_;

  std::mutex lock_;  ///< guards what follows; posts of results and changes happen under it
  std::condition_variable wake_;
  std::deque<job> jobs_;
  bool closing_ = false;
  std::int64_t lease_ = 0;
  /// Names this engine holds in etcd, and their actors: claimed again on
  /// a new lease.
  std::unordered_map<std::string, address> owned_;
  bool watching_ = false;        ///< the watch covers every change after last_event_
  bool rewatch_ = true;          ///< the watch must be (re)started
  std::int64_t last_event_ = 0;  ///< the revision of the last change the watch posted
  std::unique_ptr<etcd_watch> watch_;
  std::thread thread_;
};

}  // namespace troupe::internal
