#pragma once
// The store actor: owns the keys of one shard.

#include <memory>
#include <string_view>
#include <vector>

#include <troupe/troupe.hpp>

#include "batch.hpp"
#include "service.hpp"
#include "table.hpp"

namespace troupe::kv {

/// Time to sweep expired keys (sent by a store to itself).
struct sweep_tick {};

/// Owns the keys that hash to its shard and runs the operations on them:
/// a batch arrives as an ask and goes back, with its replies, as the reply.
/// One store per shard, pinned there (spawn_options::shard).
///
/// Expired keys are removed when they are looked at, and by a sweep every
/// 100 ms while any key has an expiry time (no timer runs otherwise).
///
/// Threads: its shard's. Connections on the same shard call run() directly
/// (service::local_store): one thread runs both, so the table is still
/// touched by one thread only and never during another of its handlers.
class store : public actor<store, shard_batch, sweep_tick> {
 public:
  explicit store(std::shared_ptr<service> s) : service_(std::move(s)) {}
  ~store() override;

  void on_start();
  shard_batch on(shard_batch& b);
  void on(const sweep_tick&);

  /// Runs the operations of `b` and fills in its replies. On this store's
  /// shard only.
  void run(shard_batch& b);

 private:
  void arm_sweep();

  std::shared_ptr<service> service_;
  table table_;
  std::vector<std::string_view> args_;
  bool sweep_armed_ = false;
};

}  // namespace troupe::kv
