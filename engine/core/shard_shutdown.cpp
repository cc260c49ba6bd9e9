// A shard's shutdown (see shard.hpp): the phases, closing, and the
// draining after it.

#include "core/shard.hpp"

#include <spdlog/spdlog.h>

#include "core/actor_access.hpp"
#include "core/describe.hpp"
#include "core/system_impl.hpp"
#include "troupe/internal/router_control.hpp"

namespace troupe::internal {

namespace {

using acc = actor_access;

}  // namespace

// ---------------------------------------------------------------- shutdown

void shard::enter_phase(shutdown_phase p) {
  phase_ = p;
  switch (p) {
    case shutdown_phase::exit_requests:
      // To the top of each tree: parents pass it on to their children
      // and end after them.
      for (std::uint32_t i = 0; i < slots_.size(); ++i) {
        if (slot_entry& s = slots_[i]; s.actor && slots_.life(i).parent.is_null()) {
          shard_counters::bump(counters_.sent);
          enqueue(*s.actor, make_envelope(exit_request{}, address{},
                                          address(engine_, index_, i, s.incarnation)));
        }
      }
      break;
    case shutdown_phase::cancel_waits: {
      // Asks end with an error, sleeps end now, wakeups are dead letters,
      // socket operations end with ECANCELED.
      if (router_) router_->stop();
      if (reactor_) reactor_->cancel_all();
      std::vector<timer_entry> timers = std::move(timers_);
      timers_.clear();
      for (timer_entry& te : timers) {
        if (te.kind == timer_kind::restart) {
          const auto slot = static_cast<std::uint32_t>(te.request >> 32);
          if (slot < slots_.size() && slots_[slot].actor &&
              slots_[slot].incarnation == static_cast<std::uint32_t>(te.request)) {
            replace(slot);  // the fresh instance gets its exit request like the rest
          }
        } else if (te.kind == timer_kind::wakeup) {
          if (live_wakeups_.erase(te.seq) > 0) {
            shard_counters::bump(counters_.sent);
            dead_letter(te.msg, dead_reason::shutting_down);
          } else {
            destroy_envelope(te.msg);
          }
        } else {
          te.when = now();
          push_timer(te);
        }
      }
      break;
    }
    case shutdown_phase::closed: close(); break;
    case shutdown_phase::running: break;
  }
}

void shard::close() {
  for (auto& [slot, list] : parked_) {
    for (envelope* e : list) {
      if (e->flags & flag_control) {  // a watch on an actor that never came
        if (e->type == type_id<watch_request>()) {
          notify_watcher(e->as<watch_request>().watcher, e->target, "shutdown");
        }
        destroy_envelope(e);
      } else {
        dead_letter(e, dead_reason::shutting_down);
      }
    }
  }
  parked_.clear();
  // Objects retired while queued are freed here; the rest leave the queue.
  for (actor_base* a = ready_head_; a;) {
    actor_base* next = acc::next_ready(*a);
    if (acc::state(*a) & st_retired) {
      delete a;
    } else {
      acc::state(*a) &= static_cast<std::uint16_t>(~st_ready);
    }
    a = next;
  }
  ready_head_ = ready_tail_ = nullptr;
  for (auto& [slot, end] : ending_) {
    if (end.held) dead_letter(std::exchange(end.held, nullptr), dead_reason::shutting_down);
  }
  ending_.clear();
  remote_children_.clear();
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    slot_entry& s = slots_[i];
    if (!s.actor) continue;
    actor_base& a = *s.actor;
    if (acc::state(a) & st_waiting) {
      // Still inside a handler that never ended: its frame is abandoned with
      // the actor, and its message counted as shutting-down.
      spdlog::warn("actor {} ({}) still busy at shutdown", a.self().to_string(), actor_name(&a));
    }
    finalize_stop(a, exit_kind::shutdown, "shutdown");
  }
  // Asks still open here were started after their actors' last chance to
  // end them; nobody will resume their waiters.
  for (pending_entry& pe : pending_) pe.waiter = nullptr;
  run_control();
  run_replies();
  flush_outbound();
}

bool shard::drain_after_close() {
  bool work = drain_inbound();
  work |= run_control();
  work |= run_replies();  // nobody waits any more: late replies
  work |= !dirty_.empty();
  flush_outbound();
  return work;
}

}  // namespace troupe::internal
