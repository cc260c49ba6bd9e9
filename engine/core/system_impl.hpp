#pragma once
// The engine behind troupe::system: shards, their threads and lanes, the
// outside askers, and the shutdown coordinator.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <functional>

#include "core/blocking_pool.hpp"
#include "core/extension_points.hpp"
#include "core/shard.hpp"
#include "troupe/extension.hpp"
#include "troupe/module.hpp"
#include "troupe/system.hpp"

namespace troupe::internal {

/// Control payloads: messages for a shard itself, not for an actor.
struct install_actor {
  actor_base* actor;
  actor_factory* factory;
  address parent;
  bool has_policy;  ///< false: the root guardian's
  std::uint32_t mailbox_limit;
  supervision_policy policy;
  std::string name;  ///< of a named actor, else empty
};
/// To shard 0 of an engine, from any engine (an ask): spawn the actor type
/// registered as `type`. Reply: its address.
struct remote_spawn {
  std::string type;
  nlohmann::json args;  ///< the type's constructor arguments; null: none
  std::int32_t shard = -1;
  std::uint8_t where = 0;  ///< troupe::placement
  std::uint32_t mailbox_limit = 0;
};
void to_json(nlohmann::json& j, const remote_spawn& m);
void from_json(const nlohmann::json& j, remote_spawn& m);
/// To every shard: count (and with `stop`, halt) the actors whose vtable
/// lies in [lo, hi), the segments of a module; `done` gets the count.
struct module_census {
  std::uintptr_t lo, hi;
  bool stop;
  std::function<void(std::size_t)> done;
};
struct enter_phase_msg {
  shutdown_phase phase;
};
struct watch_request {
  address watcher;
};
/// To a parent: its child has ended.
struct child_ended {
  address child;
  exit_kind kind;
  std::string reason;
  bool was_linked;  ///< it was in its (local) parent's list until it ended
};
/// To a parent: its child failed and the policy escalates: it fails too.
struct escalation {
  address child;
  std::string reason;
};
/// To a child: end now, with your children (your parent restarts or ends).
struct halt {
  std::string reason;
};
/// To an all-for-one parent: restart every child but `failed`.
struct restart_siblings {
  address failed;
};
/// To a child of an all-for-one parent: restart (a sibling failed).
struct restart_request {
  std::string reason;
};
struct set_dead_letter_handler_msg {
  address handler;
};
/// To every shard: the link to `engine` is gone; fail the asks to it.
struct peer_lost_msg {
  std::uint32_t engine;
  std::string why;
};
/// To a name's directory shard (an ask; the reply is the address): the
/// actor of that name, made from `actor` if there is none yet.
struct name_claim {
  std::string name;
  actor_base* actor;
  actor_factory* factory;
  std::uint16_t target_shard;
  std::uint32_t mailbox_limit;
};
/// To a name's directory shard (an ask): the address of that name.
struct name_lookup {
  std::string name;
};
/// To a name's directory shard: the actor `who` of that name has ended.
struct name_release {
  std::string name;
  address who;
};
/// To every shard: forget a cached name that pointed at `who`.
struct name_forget {
  std::string name;
  address who;
};
/// From a shard of another engine to a name's directory shard (an ask):
/// the address of the actor named `name`, or the null address, which
/// reserves the name for the asking engine until its name_bind.
struct name_reserve {
  std::string name;
};
/// To a name's directory shard: the engine that reserved `name` has
/// spawned `who` under it.
struct name_bind {
  std::string name;
  address who;
};
/// To a name's new directory shard, when the engines that are up changed:
/// the name, its actor and the engines that looked it up.
struct name_handoff {
  std::string name;
  address who;
  std::vector<std::uint32_t> subscribers;
  std::uint32_t hops = 0;  ///< forwards so far: engines whose views differ stop bouncing it
};
/// To every shard of this engine: an engine came up; hand the names kept
/// here that now belong to another engine's directory to it.
struct rehome_names {};
void to_json(nlohmann::json& j, const name_handoff& m);
void from_json(const nlohmann::json& j, name_handoff& m);
void to_json(nlohmann::json& j, const name_lookup& m);
void from_json(const nlohmann::json& j, name_lookup& m);
void to_json(nlohmann::json& j, const name_reserve& m);
void from_json(const nlohmann::json& j, name_reserve& m);
void to_json(nlohmann::json& j, const name_bind& m);
void from_json(const nlohmann::json& j, name_bind& m);
void to_json(nlohmann::json& j, const name_release& m);
void from_json(const nlohmann::json& j, name_release& m);
void to_json(nlohmann::json& j, const name_forget& m);
void from_json(const nlohmann::json& j, name_forget& m);

/// The logger's level for an actor's log_level.
spdlog::level::level_enum spdlog_level(log_level l) noexcept;

/// The modules loaded in this process (engine/module.cpp).
std::vector<module_info> loaded_modules();
/// The whole file at `path`; false if it cannot be read.
bool read_whole_file(const std::string& path, std::string& out);
/// SHA-256 of `bytes`, in lower-case hex.
std::string sha256_hex(std::string_view bytes);

class system_impl {
 public:
  system_impl(system_options options, std::vector<extension_ptr> extensions);
  ~system_impl();

  void stop();
  std::uint64_t run_until_idle();

  shard& shard_at(std::size_t i) { return *shards_[i]; }
  std::size_t shard_count() const noexcept { return shards_.size(); }
  std::uint32_t engine() const noexcept { return options_.engine_id; }
  bool inline_mode() const noexcept { return options_.inline_mode; }
  const system_options& options() const noexcept { return options_; }

  // --- extension points (engine/core/extension_points.hpp) ---
  /// The extension of type E this system was given, or null. Any thread.
  template <class E>
  E* find_extension() const noexcept {
    for (const auto& x : extensions_) {
      if (auto* e = dynamic_cast<E*>(x.get())) return e;
    }
    return nullptr;
  }
  /// Before the shards run (extension::attach): shard i reaches other
  /// engines through `r` from now on.
  void set_router(std::size_t shard, std::unique_ptr<remote_router> r);
  /// Some layer routes to other engines: addresses of other engines are
  /// worth sending to, and names spread over the engines that are up.
  bool has_router() const noexcept { return has_router_; }
  /// Before the shards run: the directory's names live in `b` instead.
  void set_name_backend(std::unique_ptr<name_backend> b) { names_ = std::move(b); }
  name_backend* names_backend() const noexcept { return names_.get(); }
  /// Before the shards run: actors' log lines go to `f` too.
  void set_log_forwarder(std::unique_ptr<log_forwarder> f) { log_forwarder_ = std::move(f); }
  log_forwarder* log_forward() const noexcept { return log_forwarder_.get(); }
  /// The handlers of control messages; filled before the shards run.
  control_registry& controls() noexcept { return controls_; }
  const control_registry& controls() const noexcept { return controls_; }
  /// The threads for blocking work (troupe::run_blocking). Any thread.
  blocking_pool& blocking() noexcept { return blocking_; }

  /// The engines this one knows to be up (itself and its linked peers),
  /// sorted: the directory spreads names over them.
  std::vector<std::uint32_t> known_engines() const;
  std::vector<stats> shard_counters_each() const;
  void engine_up(std::uint32_t id);
  /// A new actor of a registered type, made from `args` (engine/remote.cpp).
  result<address> spawn_type(const std::string& type_name, const nlohmann::json& args,
                             const spawn_options& o, const std::string& name);
  // modules (engine/module.cpp)
  result<module_info> load_module(const std::string& path);
  result<done> unload_module(const std::string& name, bool stop_actors);
  /// Live actors with code in [lo, hi) over all shards (SIZE_MAX: no answer).
  std::size_t census(std::uintptr_t lo, std::uintptr_t hi, bool stop);
  void engine_down(std::uint32_t id);
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  /// From a shard's thread, as it goes to sleep with nothing queued: wakes
  /// stop()'s wait for quiet, if it waits (else one relaxed load).
  void note_idle() noexcept;

  /// Chooses the shard for a new actor.
  std::uint16_t place(const spawn_options& o, shard* from);
  void outside_send(envelope* e);
  envelope* outside_ask(envelope* request, duration timeout);
  /// From a shard: a reply to an outside asker. False if nobody waits (late).
  bool deliver_outside(envelope* reply);
  /// The link to `engine` died: outside asks waiting on it end with `why`.
  void fail_outside_asks(std::uint32_t engine, const std::string& why);

  stats counters() const;
  std::string io_description() const;
  void set_dead_letter_handler(const address& handler);
  const supervision_policy& root_policy() const noexcept { return options_.root_supervision; }

  /// Counted where no shard is involved (outside sends, after stop).
  shard_counters outside_counters;

 private:
  struct outside_waiter {
    envelope* reply = nullptr;
    address target;
  };
  void start_threads();
  void wait_quiet();
  void broadcast_phase(shutdown_phase p);
  void dead_letter_outside(envelope* e, dead_reason why);

  system_options options_;
  std::vector<std::unique_ptr<envelope_ring>> rings_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint32_t> round_robin_{0};
  std::atomic<bool> stopped_{false};
  std::mutex stop_lock_;
  /// wait_quiet() runs: the shards count their falling asleep in idle_epoch_.
  std::atomic<bool> quiet_watch_{false};
  std::mutex quiet_lock_;
  std::condition_variable quiet_cv_;
  std::uint64_t idle_epoch_ = 0;  ///< under quiet_lock_

  std::mutex waiters_lock_;
  std::condition_variable waiters_cv_;
  std::unordered_map<std::uint64_t, outside_waiter*> waiters_;
  std::atomic<std::uint64_t> next_request_{1};
  bool has_router_ = false;
  mutable std::mutex engines_lock_;
  std::vector<std::uint32_t> peers_up_;  ///< sorted
  control_registry controls_;
  blocking_pool blocking_;
  std::unique_ptr<name_backend> names_;
  std::unique_ptr<log_forwarder> log_forwarder_;
  /// Declared last: destroyed first, while the shards (and the routers
  /// they own) still exist.
  std::vector<extension_ptr> extensions_;
};

/// From a troupe::system to its engine, for the layers' free functions.
struct system_access {
  static system_impl& impl(troupe::system& s) noexcept { return *s.impl_; }
  static const system_impl& impl(const troupe::system& s) noexcept { return *s.impl_; }
};

}  // namespace troupe::internal
