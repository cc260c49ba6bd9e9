#pragma once

#include <nlohmann/json_fwd.hpp>
// The engine's entry points that the public templates call. Implemented in
// engine/shard.cpp, engine/system.cpp and engine/fiber.cpp. Not for module
// authors: use troupe/actor.hpp and troupe/system.hpp.

#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <typeinfo>

#include "troupe/address.hpp"
#include "troupe/internal/envelope.hpp"
#include "troupe/message.hpp"

namespace troupe {
class actor_base;
struct supervision_policy;
}  // namespace troupe

namespace troupe::internal {

class shard;
class system_impl;
/// The layers' way from a troupe::system to its engine (engine/core/system.cpp).
struct system_access;

/// Why a handler failed: the exception it threw, with its type and text
/// taken where it was caught (describing it later would mean throwing it
/// again), or the reason given to fail_with().
struct failure {
  std::exception_ptr ptr;                ///< null for fail_with()
  const std::type_info* type = nullptr;  ///< of a std::exception; null otherwise
  const char* what = nullptr;            ///< into the exception object
  std::string reason;                    ///< fail_with()'s
  bool failed = false;
  explicit operator bool() const noexcept { return failed; }
};

/// In a catch block: the exception being handled, as a failure.
inline failure caught(const std::exception* ex) {
  failure f;
  f.ptr = std::current_exception();
  f.failed = true;
  if (ex) {
    f.type = &typeid(*ex);
    f.what = ex->what();
  }
  return f;
}

/// Someone waiting for the reply to one ask. The shard calls complete()
/// exactly once, from its loop (never from inside send or start_ask), with
/// the reply or an ask_failure envelope; the callee owns the envelope.
struct pending_ask {
  virtual void complete(envelope* reply) noexcept = 0;

 protected:
  ~pending_ask() = default;
};

/// Makes instances of one actor class: the first, and fresh ones for
/// restarts. Static for default-constructible classes, else one per actor.
struct actor_factory {
  virtual actor_base* make() const = 0;
  /// The actor has ended for good.
  virtual void release() noexcept {}

 protected:
  ~actor_factory() = default;
};

// --- on the calling actor's own shard thread ---------------------------

/// Routes `e` to its target: this shard, another shard, or the outside.
void send(shard& s, envelope* e);
/// Answers request `request` with `reply` (the request's sender gets it).
void send_reply(shard& s, const envelope& request, envelope* reply);
/// Registers `p`, sends `request` as an ask, arms the timeout.
void start_ask(shard& s, pending_ask& p, envelope* request, duration timeout);
timer_id start_timer(shard& s, duration after, envelope* e);
bool cancel_timer(shard& s, timer_id id) noexcept;
void sleep(shard& s, duration d, std::coroutine_handle<> h);
/// Installs or ships `a` and returns its address. `from` null: outside.
/// `factory` (may be null) makes fresh instances for restarts; `parent`
/// and `policy` are its supervisor's (null: the root guardian's).
address spawn_actor(shard* from, system_impl* sys, actor_base* a, actor_factory* factory,
                    const address& parent, const supervision_policy* policy,
                    const spawn_options& o);
/// Marks the actor as waiting for a coroutine handler that owns `e`.
void begin_task(actor_base& a) noexcept;
/// The coroutine handler that owns `e` ended (with `failure` if it threw).
void end_task(actor_base& a, envelope* e, failure f) noexcept;
void request_stop(actor_base& a) noexcept;
/// fail_with(): the handler being run ends its actor as failed, as if it had thrown.
void request_failure(actor_base& a, std::string reason);
/// True once the running handler has called fail_with() or forward(): its
/// return value is not the reply.
bool failing(const actor_base& a) noexcept;
/// forward(): the current message goes on to `to` once the handler ends.
void forward_current(actor_base& a, const address& to);
void actor_log(shard& s, const address& who, log_level level, std::string text);
/// `watcher` gets a terminated notice when `target` ends.
void watch(shard& s, const address& watcher, const address& target);
std::size_t shard_count(const shard& s) noexcept;
void set_dead_letter_handler(shard& s, const address& handler);

// --- the directory (engine/directory.cpp); `from` null: outside ---------

/// An ask (control) to the name's directory shard: the actor named `name`,
/// made from `a` (placed by `o`) if none lives. Reply: its address.
envelope* make_name_claim(shard* from, system_impl* sys, const address& sender, std::string name,
                          actor_base* a, actor_factory* factory, const spawn_options& o);
/// An ask (control) to the name's directory shard. Reply: the address, or
/// errc::not_found.
envelope* make_name_lookup(shard* from, system_impl* sys, const address& sender, std::string name);
std::optional<address> cached_name(shard& s, const std::string& name);
/// An ask (control) to shard 0 of `engine`: spawn the actor type
/// registered there as `type_name`. Reply: its address, or errc::not_found.
envelope* make_remote_spawn(std::uint32_t engine, const address& sender, std::string type_name,
                            const spawn_options& o);
/// The same, with the type's constructor arguments.
envelope* make_remote_spawn(std::uint32_t engine, const address& sender, std::string type_name,
                            const spawn_options& o, const nlohmann::json& args);
/// An actor type registered by name (register_actor): makes an instance
/// (and the factory of its restarts) from JSON arguments, or says why not.
struct actor_type {
  struct made {
    actor_base* actor = nullptr;
    actor_factory* factory = nullptr;
  };
  made (*make)(const nlohmann::json& args, std::string& error) = nullptr;
  const void* tag = nullptr;  ///< one per class: a second registration of a name must match
  /// The class's own verdict on an engine's capabilities for these
  /// arguments (its static capability_check), or null: any engine will do.
  bool (*fits)(const nlohmann::json& capabilities, const nlohmann::json& args) = nullptr;
};
void register_actor_type(std::string type_name, actor_type t);
std::optional<actor_type> actor_type_named(std::string_view type_name) noexcept;
void unregister_actor_type(const std::string& type_name);
void cache_name(shard& s, const std::string& name, const address& a);

/// The shard whose thread is calling, or nullptr outside any shard.
/// constinit: no dynamic initialization, so no TLS wrapper call on each use.
extern constinit thread_local shard* this_shard;

// --- blocking work (troupe::run_blocking, engine/core/blocking_pool.cpp) --

/// One call of run_blocking: run() on a pool thread, then `waiter` is
/// resumed on `home`'s thread. Lives in the awaiting coroutine's frame.
struct blocking_job {
  /// On a pool thread; must not throw (it keeps what f threw).
  virtual void run() noexcept = 0;
  shard* home = nullptr;
  std::coroutine_handle<> waiter;

 protected:
  ~blocking_job() = default;
};
/// From `s`'s thread: queues `j` for the pool of `s`'s system and returns
/// true (j.waiter is resumed on `s` once j.run() returned); in inline mode
/// runs `j` here and returns false. Throws std::runtime_error naming the
/// limit when the queue is full, std::logic_error while the engine stops.
bool submit_blocking(shard& s, blocking_job& j);

// --- stackful actors ------------------------------------------------------

struct fiber_state;
void destroy_fiber(fiber_state* f) noexcept;
/// From inside a stackful actor's handler: sends `request` as an ask and
/// suspends the fiber until `p` completes. Returns false (and destroys
/// `request`) when not called from a stackful actor's handler.
bool fiber_ask(pending_ask& p, envelope* request, duration timeout);

// --- from outside threads --------------------------------------------------

void outside_send(system_impl& sys, envelope* e);
/// Blocks the calling thread (or, in inline mode, runs the engine on it)
/// until the reply or the timeout. Returns the reply or an ask_failure.
envelope* outside_ask(system_impl& sys, envelope* request, duration timeout);

}  // namespace troupe::internal
