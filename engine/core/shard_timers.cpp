// A shard's timers (see shard.hpp): wake-ups, sleeps, and the ask
// timeouts they fire.

#include "core/shard.hpp"

#include <algorithm>
#include <functional>

#include "core/actor_access.hpp"

namespace troupe::internal {

namespace {

using acc = actor_access;

std::string format_duration(duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
  return std::to_string(us) + "us";
}

}  // namespace

// ---------------------------------------------------------------- timers

void shard::push_timer(timer_entry t) {
  timers_.push_back(t);
  std::push_heap(timers_.begin(), timers_.end(), std::greater<>{});
}

std::optional<time_point> shard::next_timer() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.front().when;
}

timer_id shard::start_timer(duration after, envelope* e) {
  const timer_id id = timer_seq_++;
  if (phase_ >= shutdown_phase::cancel_waits) {
    shard_counters::bump(counters_.sent);
    dead_letter(e, dead_reason::shutting_down);
    return id;
  }
  live_wakeups_.insert(id);
  push_timer({now() + after, id, timer_kind::wakeup, e, {}, 0});
  return id;
}

bool shard::cancel_timer(timer_id id) noexcept { return live_wakeups_.erase(id) > 0; }

void shard::sleep(duration d, std::coroutine_handle<> h) {
  if (phase_ >= shutdown_phase::cancel_waits) d = duration::zero();
  push_timer({now() + d, timer_seq_++, timer_kind::resume, nullptr, h, 0});
}

bool shard::run_timers() {
  if (timers_.empty()) return false;
  const time_point t = now();
  bool fired = false;
  while (!timers_.empty() && timers_.front().when <= t) {
    fired = true;
    fire_next_timer();
  }
  return fired;
}

bool shard::fire_next_timer() {
  std::pop_heap(timers_.begin(), timers_.end(), std::greater<>{});
  timer_entry te = timers_.back();
  timers_.pop_back();
  switch (te.kind) {
    case timer_kind::wakeup:
      if (live_wakeups_.erase(te.seq) > 0) {
        send(te.msg);
        return true;
      }
      destroy_envelope(te.msg);  // cancelled: never sent
      return false;
    case timer_kind::resume: te.h.resume(); return true;
    case timer_kind::restart: {
      const auto slot = static_cast<std::uint32_t>(te.request >> 32);
      if (slot < slots_.size() && slots_[slot].actor &&
          slots_[slot].incarnation == static_cast<std::uint32_t>(te.request) &&
          (acc::state(*slots_[slot].actor) & st_held) && !ending_.contains(slot)) {
        replace(slot);
        return true;
      }
      return false;
    }
    case timer_kind::ask_timeout: {
      const std::uint32_t i = static_cast<std::uint32_t>(te.request & 0xffffffffu) - 1;
      if (i < pending_.size() && pending_[i].waiter &&
          pending_[i].generation == static_cast<std::uint32_t>(te.request >> 32)) {
        const pending_entry& pe = pending_[i];
        if (phase_ >= shutdown_phase::cancel_waits) {
          fail_ask(te.request, errc::shutting_down,
                   "the engine is shutting down; ask to " + pe.target.to_string() + " abandoned");
        } else {
          fail_ask(
              te.request, errc::timeout,
              "no reply from " + pe.target.to_string() + " within " + format_duration(pe.timeout));
        }
        return true;
      }
      return false;
    }
  }
  return false;
}

}  // namespace troupe::internal
