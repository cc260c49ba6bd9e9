#pragma once
// Pools (Thespian's troupes, Akka's resizable routers): one address that
// spreads messages over worker actors, adding workers while they all have
// work waiting and stopping idle ones again.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <tuple>
#include <vector>

#include "troupe/actor.hpp"

namespace troupe {

struct pool_options {
  std::uint32_t min_workers = 1;
  std::uint32_t max_workers = 8;
  /// A worker is added when every worker has at least this many messages
  /// waiting for it.
  std::uint32_t grow_at = 8;
  /// A worker above min_workers that has had nothing to do for this long
  /// is stopped (after what it was given).
  duration idle = std::chrono::seconds(1);
  /// Where workers go: by default spread over the shards in turn.
  spawn_options worker_placement{.where = placement::round_robin};
  /// The pool's policy for its workers. A worker that is restarted keeps
  /// its place; one that ends is replaced while the pool is below min.
  supervision_policy worker_supervision{};
};

/// Ask a pool for this to see it.
struct pool_stats_query {};
struct pool_stats {
  std::uint32_t workers = 0;
  std::uint32_t peak = 0;       ///< most workers at once
  std::uint64_t forwarded = 0;  ///< messages passed to workers
  std::uint32_t replaced = 0;   ///< workers that ended on their own and were replaced
};

namespace internal {

struct pool_tick {};
using depth_counter = std::shared_ptr<std::atomic<std::int64_t>>;

/// A worker as a pool runs it: the user's class, counting down the
/// messages the pool counted up for it as it starts each one.
template <class W, class... Msgs>
class pooled_worker final : public W {
 public:
  template <class... A>
  explicit pooled_worker(depth_counter depth, const A&... a) : W(a...), depth_(std::move(depth)) {}

 protected:
  bool dispatch(envelope& e) override {
    if (((e.type == type_id<Msgs>()) || ...)) depth_->fetch_sub(1, std::memory_order_relaxed);
    return W::dispatch(e);
  }

 private:
  depth_counter depth_;
};

}  // namespace internal

/// A pool of Worker actors for the messages Msgs. Spawn it like any actor,
/// with the options and Worker's constructor arguments (copied for each
/// worker); send it Msgs (tell or ask: a worker answers the asker). Each
/// message goes to the worker with the fewest waiting. Worker must not be
/// `final` (the pool wraps it to count its queue).
///
///     auto p = sys.spawn<troupe::pool<resizer, resize>>(troupe::pool_options{.max_workers = 4});
template <class Worker, class... Msgs>
class pool : public actor<pool<Worker, Msgs...>, Msgs..., child_exited, pool_stats_query,
                          internal::pool_tick> {
 public:
  template <class... Args>
  explicit pool(pool_options o, const Args&... args) : opts_(o) {
    if (opts_.max_workers == 0) opts_.max_workers = 1;
    if (opts_.min_workers > opts_.max_workers) opts_.min_workers = opts_.max_workers;
    make_ = [args = std::make_tuple(args...)](pool& p, internal::depth_counter d) {
      return std::apply(
          [&](const auto&... a) {
            return p.template spawn<internal::pooled_worker<Worker, Msgs...>>(
                p.opts_.worker_placement, d, a...);
          },
          args);
    };
  }

  void on_start() {
    while (workers_.size() < opts_.min_workers) add_worker();
  }

  template <class M>
  void on(const M&) {
    entry* best = nullptr;
    for (entry& w : workers_) {
      if (!best || depth(w) < depth(*best)) best = &w;
    }
    if (!best || (depth(*best) >= opts_.grow_at && workers_.size() < opts_.max_workers)) {
      best = &add_worker();
    }
    best->depth->fetch_add(1, std::memory_order_relaxed);
    ++best->given;
    ++stats_.forwarded;
    this->forward(best->addr);
  }

  void on(const child_exited& m) {
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      if (workers_[i].addr == m.child) {  // it ended on its own
        workers_.erase(workers_.begin() + static_cast<std::ptrdiff_t>(i));
        ++stats_.replaced;
        break;
      }
    }
    while (workers_.size() < opts_.min_workers) add_worker();
  }

  pool_stats on(const pool_stats_query&) {
    stats_.workers = static_cast<std::uint32_t>(workers_.size());
    return stats_;
  }

  void on(const internal::pool_tick&) {
    ticking_ = false;
    // Idle: nothing waiting and nothing given since the last tick, for
    // ticks_to_idle ticks in a row (ticks come every idle / ticks_to_idle).
    for (std::size_t i = workers_.size(); i-- > 0 && workers_.size() > opts_.min_workers;) {
      entry& w = workers_[i];
      if (depth(w) == 0 && w.given == w.given_at_tick) {
        if (++w.idle_ticks >= ticks_to_idle) {
          this->tell(w.addr, exit_request{});  // behind what it was given
          workers_.erase(workers_.begin() + static_cast<std::ptrdiff_t>(i));
        }
      } else {
        w.idle_ticks = 0;
      }
      if (i < workers_.size()) workers_[i].given_at_tick = workers_[i].given;
    }
    arm_tick();
  }

 protected:
  supervision_policy supervision() const override { return opts_.worker_supervision; }

 private:
  static constexpr unsigned ticks_to_idle = 4;
  struct entry {
    address addr;
    internal::depth_counter depth;
    std::uint64_t given = 0;
    std::uint64_t given_at_tick = 0;
    unsigned idle_ticks = 0;
  };
  static std::int64_t depth(const entry& w) {
    return std::max<std::int64_t>(0, w.depth->load(std::memory_order_relaxed));
  }
  entry& add_worker() {
    auto d = std::make_shared<std::atomic<std::int64_t>>(0);
    workers_.push_back(entry{make_(*this, d), d});
    if (workers_.size() > stats_.peak) stats_.peak = static_cast<std::uint32_t>(workers_.size());
    arm_tick();
    return workers_.back();
  }
  /// Ticks only while there is a worker to shrink: an idle pool at its
  /// minimum costs nothing.
  void arm_tick() {
    if (ticking_ || workers_.size() <= opts_.min_workers) return;
    ticking_ = true;
    this->wakeup_after(opts_.idle / ticks_to_idle, internal::pool_tick{});
  }

  pool_options opts_;
  std::function<address(pool&, internal::depth_counter)> make_;
  std::vector<entry> workers_;
  pool_stats stats_;
  bool ticking_ = false;
};

}  // namespace troupe
