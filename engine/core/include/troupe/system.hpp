#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "troupe/actor.hpp"
#include "troupe/address.hpp"
#include "troupe/extension.hpp"
#include "troupe/internal/runtime.hpp"
#include "troupe/io/backend.hpp"
#include "troupe/lifecycle.hpp"
#include "troupe/message.hpp"
#include "troupe/module.hpp"
#include "troupe/result.hpp"

namespace troupe {

namespace testing {
class fixture;
}

/// Counters of one engine, summed over its shards. The contract makes them
/// add up: sent = delivered + dead_letters + poisoned + in flight (0 after
/// stop()). A message that fails and is retried counts once, by its end.
struct stats {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dead_letters = 0;
  /// Messages whose handler failed for good (returned to the sender as
  /// poison, or failing its ask).
  std::uint64_t poisoned = 0;
  /// Handler failures, and restarts of failed actors.
  std::uint64_t failures = 0;
  std::uint64_t restarts = 0;
  /// Messages handed to links to other engines (delivered there).
  std::uint64_t sent_remote = 0;
  /// Connections to other engines served (a shard serves its own).
  std::uint64_t links = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(dead_reason::count_)> dead_by_reason{};
  std::uint64_t actors_live = 0;
  std::uint64_t actors_spawned = 0;
  std::uint64_t dead(dead_reason r) const { return dead_by_reason[static_cast<std::size_t>(r)]; }
};

struct system_options {
  /// Shards (threads); 0 = one per core. Ignored when inline_mode is set.
  unsigned shards = 0;
  /// Run on the caller's thread: no worker threads, deterministic order,
  /// virtual time for timers. Drive it with run_until_idle() or ask().
  bool inline_mode = false;
  io::backend_choice io = io::backend_choice::automatic;
  std::uint32_t engine_id = 1;
  /// Messages an actor handles in a row before the shard moves on.
  unsigned throughput = 64;
  /// Pin shard i to the i-th CPU this process may run on (when there are
  /// at least as many CPUs as shards), so that two shards never share a
  /// core and a shard's caches stay warm.
  bool pin_shards = true;
  /// The root guardian's policy: for actors spawned from outside.
  supervision_policy root_supervision{};
};

/// An engine: its shards, their threads and their actors; links to other
/// engines and the convention are extensions added at construction
/// (troupe/remote.hpp, troupe/convention.hpp).
///
/// Threads: every member may be called from any thread that is not one of
/// its shards (an outside thread); in inline mode, from the thread that
/// created it. Lifetime: the destructor calls stop().
class system {
 public:
  /// Starts the shards (their threads, unless inline). Throws
  /// std::invalid_argument for a bad option, std::runtime_error when the
  /// engine cannot start (a listener that cannot bind, no io backend).
  explicit system(system_options options = {});
  /// The same, with layers above the core, configured and attached in the
  /// order given (a convention needs links before it).
  system(system_options options, std::vector<extension_ptr> extensions);
  template <class... E>
  requires(sizeof...(E) > 0 && (std::is_convertible_v<E, extension_ptr> && ...))
      system(system_options options, E&&... extensions)
      : system(std::move(options), make_list(std::forward<E>(extensions)...)) {}
  ~system();
  system(const system&) = delete;
  system& operator=(const system&) = delete;

  template <class A, class... Args>
  address spawn(spawn_options o, Args&&... args) {
    static_assert(std::is_base_of_v<actor_base, A>,
                  "spawn<A>: A must be an actor class, derived from troupe::actor<A, Msgs...>.");
    internal::actor_factory* f = internal::factory_for<A>(args...);
    return internal::spawn_actor(nullptr, impl_.get(), new A(std::forward<Args>(args)...), f,
                                 address{}, nullptr, o);
  }
  template <class A, class... Args>
  address spawn(Args&&... args) {
    return spawn<A>(spawn_options{}, std::forward<Args>(args)...);
  }

  /// The actor named `name`: the one that lives, or a new A made from
  /// `args`, placed by `o` (Thespian's globalName). Blocks until the
  /// name's directory shard answers.
  template <class A, class... Args>
  result<address> spawn_named(std::string name, spawn_options o, Args&&... args) {
    static_assert(std::is_base_of_v<actor_base, A>,
                  "spawn_named<A>: A must be an actor class, derived from troupe::actor.");
    internal::actor_factory* f = internal::factory_for<A>(args...);
    return internal::take_reply<address>(internal::outside_ask(
        *impl_,
        internal::make_name_claim(nullptr, impl_.get(), address{}, std::move(name),
                                  new A(std::forward<Args>(args)...), f, o),
        std::chrono::seconds(10)));
  }

  /// A new actor of the type registered as `type_name` on engine `engine`
  /// (register_actor), placed there by `o`. Blocks until that engine
  /// answers: errc::not_found if it has no such type, errc::peer_lost if
  /// there is no link to it (or no links at all: see troupe/remote.hpp).
  result<address> spawn_on(std::uint32_t engine, std::string type_name, spawn_options o = {},
                           duration timeout = std::chrono::seconds(10)) {
    return internal::take_reply<address>(internal::outside_ask(
        *impl_, internal::make_remote_spawn(engine, address{}, std::move(type_name), o), timeout));
  }

  /// A new actor on this engine of the type registered as `type_name`,
  /// made from `args` (null for a default-constructible type); with a
  /// `name`, the one actor of that name (spawn_named). errc::not_found for
  /// an unknown type, errc::failed if its arguments do not suit it.
  result<address> spawn_type(const std::string& type_name, const nlohmann::json& args,
                             spawn_options o = {}, const std::string& name = {});

  /// Loads an actor module (.so): its actor and message types become
  /// known by name. Any failure is an error naming the file and the cause
  /// (errc::misuse); the engine goes on as it was.
  result<module_info> load_module(const std::string& path);
  /// Unloads a module. With live actors of the module it refuses, unless
  /// `stop_actors`: then they are stopped first.
  result<done> unload_module(const std::string& name, bool stop_actors = false);
  /// The modules loaded in this process.
  static std::vector<module_info> modules();

  /// The address of the actor named `name`, or errc::not_found.
  result<address> lookup_name(std::string name, duration timeout = std::chrono::seconds(5));

  /// Sends `msg` to `to` from outside (the sender is null).
  template <message M>
  void tell(const address& to, M msg) {
    internal::outside_send(*impl_, internal::make_envelope(std::move(msg), address{}, to));
  }

  /// Blocks the calling thread until `to` answers `msg`, the timeout
  /// passes, or the ask fails (Thespian's ActorSystem().ask). In inline
  /// mode it runs the engine on this thread meanwhile.
  template <class R, message M>
  result<R> ask(const address& to, M msg, duration timeout) {
    return internal::take_reply<R>(internal::outside_ask(
        *impl_, internal::make_envelope(std::move(msg), address{}, to), timeout));
  }

  /// Dead letters go to `handler` as troupe::dead_letter notices from now
  /// on (Thespian's handleDeadLetters); a null address turns that off.
  /// Counters and the rate-limited log keep counting either way.
  void set_dead_letter_handler(const address& handler);

  /// Inline mode: handles messages (advancing virtual time for timers)
  /// until nothing is left to do. Returns messages handled.
  std::uint64_t run_until_idle();

  /// Graceful stop: an exit_request to every actor, mailboxes drained,
  /// pending asks failed, the rest dead-lettered and counted. Idempotent.
  void stop();

  std::size_t shard_count() const noexcept;
  std::uint32_t engine_id() const noexcept;
  stats counters() const;
  /// The same, shard by shard (messages sent from outside are in no shard's).
  std::vector<stats> shard_counters() const;
  /// The engines this one knows to be up: itself and, with links, its
  /// linked peers.
  std::vector<std::uint32_t> engines() const;
  /// "io_uring (single_issuer ...)" or "epoll (...)".
  std::string io_description() const;

 private:
  template <class... E>
  static std::vector<extension_ptr> make_list(E&&... extensions) {
    std::vector<extension_ptr> list;
    (list.push_back(std::forward<E>(extensions)), ...);
    return list;
  }
  friend struct internal::system_access;
  friend class testing::fixture;  // drives an inline engine one message at a time
  std::unique_ptr<internal::system_impl> impl_;
};

/// The spelling DESIGN.md uses.
using System = system;

}  // namespace troupe
