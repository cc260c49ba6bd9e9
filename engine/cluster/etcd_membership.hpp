#pragma once
// Membership in etcd (--membership etcd://HOST:PORT[,...]): instead of a
// built-in leader, each engine keeps its member record under
//   /troupe/<convention>/members/<engine id>
// on a lease it keeps alive, and watches the prefix. The records it sees
// reach the convention's agent as views (conv_view), as a leader's would;
// a record that vanishes (its lease expired: the engine stopped renewing
// it, or it left and deleted it) is a member gone. etcd's Raft keeps the
// table while any majority of its members lives: no engine leads.
//
//   start ──▶ lease (names may be claimed on it)
//   join  ──▶ record put, table read, prefix watched (others see it now)
//
// The record goes in only when the engine joins (convention_join: at
// start, or once `troupe serve` has loaded its modules), as a leader
// learns of a member only then: before it, nobody places work here that
// the engine's modules are not loaded to take.
//
// The directory's names (etcd_names) live on the same lease: each new
// lease is handed to them. A record of this engine id on a lease this
// process never held is an earlier run's; that lease is revoked, so the
// earlier run's names are free at once.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/convention.hpp"
#include "cluster/etcd_client.hpp"

namespace troupe::internal {

class system_impl;

/// One engine's registration and view. Owned by its system_impl; its
/// thread talks to etcd and posts views to the agent from outside.
class etcd_membership {
 public:
  /// Starts the thread, which takes a lease at once (the names are claimed
  /// on it) and puts no record until join().
  etcd_membership(system_impl& sys, std::vector<std::string> endpoints, std::string convention,
                  std::uint32_t engine, duration ttl);
  ~etcd_membership();  ///< close()
  etcd_membership(const etcd_membership&) = delete;
  etcd_membership& operator=(const etcd_membership&) = delete;

  /// This engine is a member from now on, as `me` describes it (`me.agent`
  /// gets the views): its record goes into etcd, where the others see it.
  /// Any thread; again, it is update().
  void join(const member_record& me);
  /// This engine's record changed (its capabilities): put it again once
  /// joined. Any thread.
  void update(const member_record& me);
  /// Deletes this engine's record, revokes its lease, stops the thread;
  /// join() and update() do nothing after it. Any thread; idempotent.
  void close();

 private:
  void run();
  /// A lease if there is none, then (once joined) the record, the table
  /// and the watch; false if etcd is unreachable or refused.
  bool register_here();
  void on_events(const std::vector<etcd_event>& events);
  void post_view(std::vector<conv_view::gone_entry> gone);

  system_impl& sys_;
  etcd_client client_;
  const std::uint32_t engine_;
  std::string prefix_, key_;
  std::chrono::seconds ttl_;

  std::mutex lock_;
  std::condition_variable wake_;
  member_record me_;
  bool joined_ = false;      ///< join() was called: the record belongs in etcd
  bool registered_ = false;  ///< the record is in etcd on lease_, and the watch runs
  bool dirty_ = false, stopping_ = false, closed_ = false;
  std::map<std::uint32_t, member_record> table_;  ///< the records under the prefix
  std::int64_t lease_ = 0;
  std::int64_t mine_ = 0;  ///< the last lease this process was granted (its thread only)
  std::unique_ptr<etcd_watch> watch_;
  std::thread thread_;
};

}  // namespace troupe::internal
