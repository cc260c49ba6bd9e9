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

#include "convention.hpp"
#include "etcd_client.hpp"

namespace troupe::internal {

class system_impl;

/// One engine's registration and view. Owned by its system_impl; its
/// thread talks to etcd and posts views to the agent from outside.
class etcd_membership {
 public:
  etcd_membership(system_impl& sys, std::vector<std::string> endpoints, std::string convention,
                  member_record me, duration ttl);
  ~etcd_membership();  ///< deletes this engine's record, revokes its lease, stops
  etcd_membership(const etcd_membership&) = delete;
  etcd_membership& operator=(const etcd_membership&) = delete;

  /// This engine's record changed (its capabilities): put it again. Any thread.
  void update(const member_record& me);

 private:
  void run();
  bool register_here();  ///< lease, record, table, watch; false if etcd is unreachable
  void on_events(const std::vector<etcd_event>& events);
  void post_view(std::vector<conv_view::gone_entry> gone);

  system_impl& sys_;
  etcd_client client_;
  std::string prefix_, key_;
  std::chrono::seconds ttl_;

  std::mutex lock_;
  std::condition_variable wake_;
  member_record me_;
  bool dirty_ = false, stopping_ = false;
  std::map<std::uint32_t, member_record> table_;  ///< the records under the prefix
  std::int64_t lease_ = 0;
  std::int64_t mine_ = 0;  ///< the last lease this process registered on (its thread only)
  std::unique_ptr<etcd_watch> watch_;
  std::thread thread_;
};

}  // namespace troupe::internal
