// A shard driven by troupe::testing::fixture (see shard.hpp): one message
// at a time, in inline mode.

#include "core/shard.hpp"

#include "core/actor_access.hpp"

namespace troupe::internal {

namespace {

using acc = actor_access;

}  // namespace

// ---------------------------------------------------------------- the test fixture

// Inline mode only, driven by troupe::testing::fixture: the pieces of
// step() taken apart, so that a test runs one message at a time.

bool shard::settle() {
  bool any = false;
  for (;;) {
    bool work = drain_inbound();
    work |= run_control();
    work |= run_timers();
    work |= flush_outbound();
    if (!work) return any;
    any = true;
  }
}

const envelope* shard::peek_next() {
  if (replies_head_) return replies_head_;
  // The same actors, in the same order, that run_one() takes and skips.
  for (actor_base* a = ready_head_; a; a = acc::next_ready(*a)) {
    if (acc::state(*a) & st_retired) continue;
    if (const envelope* e = acc::head(*a)) return e;
  }
  return nullptr;
}

bool shard::run_one() {
  if (envelope* r = replies_head_) {
    replies_head_ = r->next;
    if (!replies_head_) replies_tail_ = nullptr;
    complete_pending(r);
    return true;
  }
  while (ready_head_) {
    actor_base* a = ready_head_;
    ready_head_ = acc::next_ready(*a);
    if (!ready_head_) ready_tail_ = nullptr;
    acc::state(*a) &= static_cast<std::uint16_t>(~st_ready);
    if (acc::state(*a) & st_retired) {
      delete a;  // ended or replaced while it waited here
      continue;
    }
    envelope* e = acc::head(*a);
    if (!e) continue;  // its messages were taken in an earlier turn
    acc::head(*a) = e->next;
    if (!e->next) acc::tail(*a) = nullptr;
    --acc::queued(*a);
    if (handle(*a, e) && acc::head(*a)) make_ready(*a);
    return true;
  }
  return false;
}

std::optional<std::size_t> shard::mail_waiting(const address& a) {
  if (a.engine() != engine_ || a.shard() != index_ || a.slot() >= slots_.size()) return {};
  const slot_entry& s = slots_[a.slot()];
  if (!s.actor || s.incarnation != a.incarnation()) return {};
  std::size_t n = acc::queued(*s.actor);
  for (const envelope* r = replies_head_; r; r = r->next) n += r->target == a;
  return n;
}

std::size_t shard::mail_waiting() {
  std::size_t n = 0;
  for (const envelope* r = replies_head_; r; r = r->next) ++n;
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].actor) n += acc::queued(*slots_[i].actor);
  }
  return n;
}

std::size_t shard::fire_due_timers() {
  const time_point t = now();
  std::size_t n = 0;
  while (!timers_.empty() && timers_.front().when <= t) n += fire_next_timer();
  return n;
}

std::size_t shard::discard_waiting() {
  std::size_t n = 0;
  // A dead ask is answered with its failure, which waits as a reply: again.
  for (bool found = true; found;) {
    found = false;
    while (envelope* r = replies_head_) {
      replies_head_ = r->next;
      if (!replies_head_) replies_tail_ = nullptr;
      dead_letter(r, dead_reason::shutting_down);
      ++n;
      found = true;
    }
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
      actor_base* a = slots_[i].actor;
      if (!a || !acc::head(*a)) continue;
      envelope* e = std::exchange(acc::head(*a), nullptr);
      acc::tail(*a) = nullptr;
      acc::queued(*a) = 0;
      while (e) {
        envelope* next = e->next;
        dead_letter(e, dead_reason::shutting_down, a);
        e = next;
        ++n;
      }
      found = true;
    }
  }
  return n;
}

}  // namespace troupe::internal
