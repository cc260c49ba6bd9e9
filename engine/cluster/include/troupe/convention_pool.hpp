#pragma once
// A pool spread over the convention: one address whose workers — actors of
// a registered type — are placed on the members that fit, added where
// there is room while they all have work waiting, moved onto a member that
// joins under load, dropped with a member that is lost, and stopped again
// when idle.
//
//     auto pool = troupe::spawn_convention_pool<resize>(
//         sys, "img.resizer", {{"quality", 80}},
//         {.where = {.requirements = {{"gpu", true}}}, .max_workers = 12, .max_per_member = 4});
//     auto r = sys.ask<resized>(pool.value(), resize{...}, 5s);   // a worker answers
//
// How it measures load without wrapping the worker: every `sample_every`
// it sends each worker's shard a small control query (how many messages
// wait in that mailbox?), on this engine or across the link, and the
// answer comes back as a message; between answers it adds what it gave
// since. Its message path never waits: placements run in helper actors
// that report back.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "troupe/actor.hpp"
#include "troupe/convention.hpp"
#include "troupe/internal/router_control.hpp"
#include "troupe/result.hpp"
#include "troupe/system.hpp"

namespace troupe {

struct convention_pool_options {
  /// Where workers may go: `requirements` over the members' capabilities
  /// (and the type's own capability_check), `spawn` options on the member,
  /// `timeout` for one placement. `prefer_local` decides only where
  /// spawn_convention_pool puts the first worker.
  place_options where{};
  std::uint32_t min_workers = 1;
  std::uint32_t max_workers = 16;
  /// At most this many workers on one member; 0: no limit.
  std::uint32_t max_per_member = 0;
  /// A worker is added when every worker has at least this many messages
  /// waiting in its mailbox (as last sampled).
  std::uint32_t grow_at = 8;
  /// A worker above min_workers with nothing waiting and nothing given for
  /// this long is stopped (after what it was given).
  duration idle = std::chrono::seconds(2);
  /// How often the workers' mailboxes are sampled while the pool has work.
  duration sample_every = std::chrono::milliseconds(50);
  /// A placement that failed is tried again after this long.
  duration retry_every = std::chrono::milliseconds(500);
};

/// errc::misuse naming the bad option, or done: the checks a pool makes
/// of its options (min_workers <= max_workers, both >= 1, grow_at >= 1,
/// positive durations, a type name, requirements that parse).
result<done> check_convention_pool_options(const std::string& type,
                                           const convention_pool_options& o);

/// Ask a convention pool for this to see it.
struct convention_pool_stats_query {};
struct convention_pool_stats {
  std::string type;
  std::uint32_t workers = 0;
  std::uint32_t placing = 0;   ///< placements in flight
  std::uint32_t retiring = 0;  ///< stopped, finishing what they were given
  std::uint32_t peak = 0;      ///< most workers at once
  std::map<std::uint32_t, std::uint32_t> workers_per_engine;
  /// Messages given to workers on each engine, since the pool started.
  std::map<std::uint32_t, std::uint64_t> forwarded_per_engine;
  std::vector<address> worker_addresses;
  std::uint64_t forwarded = 0;
  std::uint64_t refused = 0;  ///< found no worker (asks failed, tells dead-lettered)
  /// Asks given to workers lost with their member, ended errc::peer_lost
  /// where they still waited.
  std::uint64_t abandoned_asks = 0;
  std::uint32_t placed = 0;   ///< workers placed, in all
  std::uint32_t grown = 0;    ///< of them, for load
  std::uint32_t moved = 0;    ///< onto a member that had none, one retired elsewhere
  std::uint32_t shrunk = 0;   ///< stopped while idle
  std::uint32_t dropped = 0;  ///< ended, or lost with their member
  std::uint32_t failed_placements = 0;
  std::string last_error;  ///< of the last placement that failed
};
void to_json(nlohmann::json& j, const convention_pool_stats& s);
void from_json(const nlohmann::json& j, convention_pool_stats& s);

namespace internal {

struct cpool_tick {};
/// From a placing helper: the worker, or why not.
struct cpool_placed {
  std::uint64_t id = 0;
  address worker;
  errc code = errc::not_found;
  std::string error;  ///< empty when placed
};
/// From a helper: this engine as a member (its capabilities).
struct cpool_home {
  bool ok = false;
  member me;
};

/// The pool's state and decisions, apart from its message types: one
/// copy of the code for every convention_pool<Msgs...>. Each call comes
/// from the pool's own handlers, on its shard, with the pool as `self`.
class convention_pool_core {
 public:
  convention_pool_core(std::string type, nlohmann::json args, convention_pool_options o,
                       std::vector<address> workers);
  convention_pool_core(convention_pool_core&&) noexcept;
  ~convention_pool_core();

  void start(actor_base& self);
  /// The worker for the message being handled, counted as given to it;
  /// null when the pool has none (then refuse()).
  address route(actor_base& self);
  /// No worker: an ask ends with the reason, a tell is dead-lettered.
  result<done> refuse(actor_base& self);
  void on_update(actor_base& self, const convention_update& u);
  void on_terminated(actor_base& self, const terminated& t);
  void on_depth(actor_base& self, const mailbox_depth& d);
  void on_tick(actor_base& self);
  void on_placed(actor_base& self, const cpool_placed& p);
  void on_home(actor_base& self, const cpool_home& h);
  void on_exit(actor_base& self);
  convention_pool_stats stats() const;

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace internal

/// A pool over the convention for the messages Msgs: spawn it (best with
/// spawn_convention_pool below) and send it Msgs, by tell or ask; each goes
/// to the worker with the fewest waiting, and a worker answers the asker
/// itself (forward()).
///
/// - Workers are actors of the type registered as `type` (register_actor,
///   a module), made from `args` on members that fit `options.where`.
/// - Growth: while every worker has `grow_at` or more waiting and there are
///   fewer than max_workers, one more is placed — on a fitting member that
///   has none yet, else on the one with the fewest per shard. A member that
///   joins while the pool is under load gets a worker at once; at
///   max_workers, one is moved there from the member with the most.
/// - Loss: a worker that ends, or whose member is lost or leaves, is
///   dropped. When its member was lost, the asks it had been given and
///   had not answered end at once with errc::peer_lost (the pool tells
///   each asker's shard, which ends the ask if it still waits) instead of
///   waiting for their timeouts. The pool serves on with the others and
///   places more while under load or below min_workers.
/// - Idle workers above min_workers are stopped after `idle`.
/// - With no worker at all (all lost, or none placed yet) an ask fails at
///   once with errc::dead_actor and the reason, and a tell is a dead
///   letter: nothing waits for a worker that may never come.
///
/// Threads: an actor like any other. Workers are supervised on their own
/// members by those engines' root guardians (a handler that throws
/// restarts there); the pool acts when one is gone. An exit_request to the
/// pool stops its workers too; a pool that fails leaves them running.
///
/// Msgs: distinct message types, none of the pool's own (convention_update,
/// terminated, exit_request, the stats query). To cross engines they must
/// be registered by name on every engine (register_message, a module).
template <class... Msgs>
class convention_pool
    : public actor<convention_pool<Msgs...>, Msgs..., convention_update, terminated, exit_request,
                   convention_pool_stats_query, internal::mailbox_depth, internal::cpool_tick,
                   internal::cpool_placed, internal::cpool_home> {
  static_assert(sizeof...(Msgs) > 0,
                "convention_pool<Msgs...>: list the message types the pool passes to its workers.");
  static_assert(((!std::is_same_v<Msgs, convention_update> && !std::is_same_v<Msgs, terminated> &&
                  !std::is_same_v<Msgs, exit_request> &&
                  !std::is_same_v<Msgs, convention_pool_stats_query>)&&...),
                "convention_pool<Msgs...>: the pool handles convention_update, terminated, "
                "exit_request and convention_pool_stats_query itself; they cannot be passed "
                "to its workers.");

 public:
  /// `workers`: ones already placed (spawn_convention_pool's first), adopted.
  convention_pool(std::string type, nlohmann::json args, convention_pool_options options,
                  std::vector<address> workers = {})
      : core_(std::move(type), std::move(args), std::move(options), std::move(workers)) {}

  void on_start() { core_.start(*this); }

  template <class M>
  result<done> on(const M&) {
    const address worker = core_.route(*this);
    if (worker.is_null()) return core_.refuse(*this);
    this->forward(worker);  // the worker answers; this return value is not a reply
    return done{};
  }
  void on(const convention_update& u) { core_.on_update(*this, u); }
  void on(const terminated& t) { core_.on_terminated(*this, t); }
  void on(const exit_request&) { core_.on_exit(*this); }
  // Not const: the template above would win for a non-const pool.
  convention_pool_stats on(const convention_pool_stats_query&) { return core_.stats(); }
  void on(const internal::mailbox_depth& d) { core_.on_depth(*this, d); }
  void on(const internal::cpool_tick&) { core_.on_tick(*this); }
  void on(const internal::cpool_placed& p) { core_.on_placed(*this, p); }
  void on(const internal::cpool_home& h) { core_.on_home(*this, h); }

 private:
  internal::convention_pool_core core_;
};

/// Checks the options, places the first worker (where spawn_placed would:
/// options.where, prefer_local included) and spawns a convention_pool
/// around it; the rest up to min_workers follow at once, from the pool.
/// Blocks the calling thread (not a shard's) until placed. Errors name
/// the cause: errc::misuse for bad options or requirements,
/// errc::not_found when no member fits or none has the type.
template <class... Msgs>
result<address> spawn_convention_pool(system& sys, std::string type, nlohmann::json args,
                                      convention_pool_options options = {}) {
  if (result<done> ok = check_convention_pool_options(type, options); !ok) return ok.err();
  result<address> first = troupe::spawn_placed(sys, type, args, options.where);
  if (!first) {
    return error(first.err().code(), "convention pool of '" + type +
                                         "': placing its first worker: " + first.err().text());
  }
  return sys.spawn<convention_pool<Msgs...>>(std::move(type), std::move(args), std::move(options),
                                             std::vector<address>{first.value()});
}

}  // namespace troupe
