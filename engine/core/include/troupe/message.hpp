#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>

#include "troupe/address.hpp"

namespace troupe {

/// What can travel as a message: an object type (no reference, no array,
/// not const) that can be moved without throwing. Locally a message is
/// moved, never copied or serialized.
template <class T>
concept message = std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T> &&
                  std::is_nothrow_move_constructible_v<T> && std::is_destructible_v<T>;

/// Asks an actor to end (Thespian's ActorExitRequest). An actor may handle
/// it to clean up; handled or not, the actor stops after it. Shutdown sends
/// one to every actor, behind the messages already in its mailbox.
struct exit_request {};

/// Told to each watcher when a watched actor has ended (Erlang's 'DOWN'):
/// exactly once per watch, at once if it had ended before the watch.
struct terminated {
  address who;
  /// "stopped", "failed: <exception>", "shutdown", or "not alive" when the
  /// actor had already ended (or never existed) when the watch arrived.
  std::string reason;
};

/// Where a new actor goes.
enum class placement : std::uint8_t {
  automatic,     ///< from an actor: its own shard; from outside: round-robin
  local,         ///< the spawning actor's shard (outside: shard 0)
  round_robin,   ///< the next shard in turn
  least_loaded,  ///< the shard with the fewest live actors
};

struct spawn_options {
  placement where = placement::automatic;
  int shard = -1;  ///< >= 0: exactly this shard (modulo the shard count)
  /// > 0: at most this many messages wait in the mailbox; more are
  /// dead-lettered ("mailbox full"), an ask fails, an actor sender that
  /// lists troupe::undelivered is told.
  std::uint32_t mailbox_limit = 0;
};

/// Names a pending timer so that it can be cancelled.
using timer_id = std::uint64_t;

using duration = std::chrono::nanoseconds;

/// How much a line an actor logs (actor_base::write_log) matters.
enum class log_level : std::uint8_t { debug, info, warn, error };

}  // namespace troupe
