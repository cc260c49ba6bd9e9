#pragma once
// The engine's view of an actor's private parts: mailbox, state bits and
// the virtual hooks. Only engine/*.cpp include this.

#include "troupe/actor.hpp"

namespace troupe::internal {

enum actor_state : std::uint16_t {
  st_ready = 1u << 0,      ///< in its shard's run queue
  st_waiting = 1u << 1,    ///< a coroutine or fiber owns the current message
  st_stopping = 1u << 2,   ///< ends when the current message is finished
  st_started = 1u << 3,    ///< installed on its shard
  st_held = 1u << 4,       ///< takes no message: waits for a restart or for its children
  st_retired = 1u << 5,    ///< replaced or ended while in the run queue: free it there
  st_bounded = 1u << 6,    ///< has a mailbox limit (in its shard's mailbox_limits_)
  st_failing = 1u << 7,    ///< called fail_with() (the reason is in self_failures_)
  st_forwarded = 1u << 8,  ///< its handler passed the current message on (forward())
};

struct actor_access {
  static envelope*& head(actor_base& a) noexcept { return a.mbox_head_; }
  static envelope*& tail(actor_base& a) noexcept { return a.mbox_tail_; }
  static actor_base*& next_ready(actor_base& a) noexcept { return a.next_ready_; }
  /// Handlers run on their actor's shard: the calling thread's.
  static shard* home(const actor_base&) noexcept { return this_shard; }
  static envelope*& current(actor_base& a) noexcept { return a.current_; }
  static std::uint32_t slot(const actor_base& a) noexcept { return a.self_.slot(); }
  static std::uint16_t& state(actor_base& a) noexcept { return a.state_; }
  static std::uint32_t& queued(actor_base& a) noexcept { return a.queued_; }
  static void place(actor_base& a, const address& self) noexcept { a.self_ = self; }
  static bool dispatch(actor_base& a, envelope& e) { return a.dispatch(e); }
  static void started(actor_base& a) { a.started(); }
  static fiber_state** fiber_slot(actor_base& a) noexcept { return a.fiber_slot(); }
  static bool accepts(const actor_base& a, const message_type* t) noexcept { return a.accepts(t); }
};

}  // namespace troupe::internal
