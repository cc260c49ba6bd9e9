// How actors end, fail and come back: supervision on the failed actor's own
// shard, the tree of parents and children, poison and child-exited notices.
//
// A failure is handled where the actor lives, with its supervisor's policy
// copied (interned) into its slot when it was spawned: a one-for-one restart
// touches nothing but its own shard. What concerns the parent (an
// escalation, an all-for-one restart, a child that ended) travels to the
// parent's shard as a control message.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "core/actor_access.hpp"
#include "core/describe.hpp"
#include "core/shard.hpp"
#include "core/system_impl.hpp"

namespace troupe::internal {

namespace {

using acc = actor_access;

const supervision_policy default_policy{};

std::int64_t ns_of(time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

/// The delay before the n-th restart in a window (n >= 1).
duration backoff_for(const supervision_policy& p, std::uint32_t n) {
  if (p.backoff <= std::chrono::microseconds::zero()) return duration::zero();
  duration d = p.backoff;
  const duration cap = p.backoff_max > p.backoff ? duration(p.backoff_max) : duration(p.backoff);
  for (std::uint32_t i = 1; i < n && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

envelope* control(auto&& payload, const address& from, const address& to) {
  envelope* e = make_envelope(std::forward<decltype(payload)>(payload), from, to);
  e->flags |= flag_control;
  return e;
}

}  // namespace

const supervision_policy* shard::intern(const supervision_policy& p) {
  if (p == default_policy) return &default_policy;
  for (const supervision_policy& q : policies_) {
    if (q == p) return &q;
  }
  policies_.push_back(p);
  return &policies_.back();
}

const supervision_policy& shard::policy_of(const slot_life& s) const {
  if (s.policy) return *s.policy;
  return root_policy_ ? *root_policy_ : default_policy;
}

bool shard::has_children(std::uint32_t slot) const {
  if (slots_.life(slot).first_child) return true;
  auto r = remote_children_.find(slot);
  return r != remote_children_.end() && !r->second.empty();
}

void shard::link_child(std::uint32_t parent, std::uint32_t child) {
  slot_life& p = slots_.life(parent);
  slot_life& c = slots_.life(child);
  c.next_sibling = p.first_child;
  c.prev_sibling = 0;
  if (p.first_child) slots_.life(p.first_child - 1).prev_sibling = child + 1;
  p.first_child = child + 1;
}

bool shard::unlink_child(std::uint32_t child) {
  slot_life& c = slots_.life(child);
  if (c.prev_sibling == not_linked) return false;
  if (c.prev_sibling == 0) {
    slots_.life(c.parent.slot()).first_child = c.next_sibling;
  } else {
    slots_.life(c.prev_sibling - 1).next_sibling = c.next_sibling;
  }
  if (c.next_sibling) slots_.life(c.next_sibling - 1).prev_sibling = c.prev_sibling;
  c.prev_sibling = not_linked;
  c.next_sibling = 0;
  return true;
}

void shard::detach_children(std::uint32_t slot) {
  for (std::uint32_t c = slots_.life(slot).first_child; c;) {
    slot_life& child = slots_.life(c - 1);
    c = child.next_sibling;
    child.next_sibling = 0;
    child.prev_sibling = not_linked;
  }
  slots_.life(slot).first_child = 0;
  remote_children_.erase(slot);
}

bool shard::on_failure(actor_base& a, envelope* e, const failure& f) {
  const std::uint32_t slot = acc::slot(a);
  slot_life& s = slots_.life(slot);
  const supervision_policy& p = policy_of(s);
  shard_counters::bump(counters_.failures);
  const std::string why = describe(f);
  if (may_log()) {
    spdlog::error("actor {} ({}) failed{}: {}", a.self().to_string(), actor_name(&a),
                  e ? " handling " + type_name(e->type) : std::string(), why);
  }

  directive d = p.on_failure;
  if (p.decide) {
    try {
      d = p.decide(f.ptr);
    } catch (...) {
      d = directive::stop;  // a decider that throws cannot choose a restart
    }
  }
  exit_kind kind = exit_kind::failed;
  std::string reason = "failed: " + why;
  std::uint32_t restarts_in_window = 0;
  if (phase_ != shutdown_phase::running) d = directive::stop;
  if (d == directive::restart && !s.factory) {
    d = directive::stop;
    reason += " (not restarted: it cannot be made again from its constructor arguments)";
  }
  if (d == directive::restart) {
    const std::int64_t t = ns_of(now());
    const std::int64_t window =
        std::chrono::duration_cast<std::chrono::nanoseconds>(p.within).count();
    restart_window& w = windows_[slot];
    if (w.count == 0 || t - w.start > window) {
      w.start = t;
      w.count = 0;
    }
    restarts_in_window = ++w.count;
    if (w.count > p.max_restarts) {
      d = directive::escalate;
      kind = exit_kind::restart_limit;
      reason = "restart limit reached (" + std::to_string(p.max_restarts) + " in " +
               std::to_string(p.within.count()) + "ms); last failure: " + why;
    }
  }

  if (d == directive::restart) {
    envelope* retry = nullptr;
    if (e) {
      if (p.retry_once && !(e->flags & flag_retried)) {
        e->flags |= flag_retried;
        retry = e;
      } else {
        poison_message(a, e, why);
      }
    }
    shard_counters::bump(counters_.restarts);
    if (p.scope == supervision_scope::all_for_one && !s.parent.is_null()) {
      send(control(restart_siblings{a.self()}, a.self(), s.parent));
    }
    restart(a, retry, backoff_for(p, restarts_in_window));
    return false;
  }
  if (e) poison_message(a, e, why);
  if (d == directive::escalate && !s.parent.is_null()) {
    send(control(escalation{a.self(), reason}, a.self(), s.parent));
  }
  return end_actor(a, kind, std::move(reason), true);
}

void shard::poison_message(const actor_base& a, envelope* e, const std::string& why) {
  shard_counters::bump(counters_.poisoned);
  if (e->request && !e->is_reply()) {
    queue_failure(*e, errc::failed,
                  "actor " + a.self().to_string() + " (" + actor_name(&a) + ") failed handling " +
                      type_name(e->type) + ": " + why);
    destroy_envelope(e);
    return;
  }
  const bool actor_sender = !e->sender.is_null() && e->sender.shard() != address::outside_shard;
  if (actor_sender && e->type != type_id<poison>()) {
    // Poison that fails its receiver again is not sent back: two actors
    // that both throw on poison would pass it to and fro for ever.
    const address sender = e->sender, target = e->target;
    send(make_envelope(poison{target, why, message_ref(e)}, target, sender));
    return;
  }
  destroy_envelope(e);
}

void shard::restart(actor_base& a, envelope* retry, duration delay) {
  const std::uint32_t slot = acc::slot(a);
  // The failed instance's children end; what they report afterwards is
  // not for the fresh instance, which never had them.
  end_children(slot, true);
  detach_children(slot);
  if (retry) {
    retry->next = acc::head(a);
    acc::head(a) = retry;
    if (!acc::tail(a)) acc::tail(a) = retry;
    ++acc::queued(a);
  }
  if (delay > duration::zero() || restart_depth_ > 0) {
    acc::state(a) |= st_held;
    push_timer({now() + delay,
                timer_seq_++,
                timer_kind::restart,
                nullptr,
                {},
                (static_cast<std::uint64_t>(slot) << 32) | slots_[slot].incarnation});
    return;
  }
  replace(slot);
}

void shard::replace(std::uint32_t slot) {
  slot_entry& s = slots_[slot];
  actor_base& old = *s.actor;
  const slot_life& life = slots_.life(slot);
  acc::state(old) &= static_cast<std::uint16_t>(~st_held);
  actor_base* fresh = nullptr;
  try {
    fresh = life.factory->make();
  } catch (...) {
    const std::string why = describe_failure(std::current_exception());
    spdlog::error("actor {} ({}) could not be restarted: its constructor threw {}",
                  old.self().to_string(), actor_name(&old), why);
    end_actor(old, exit_kind::failed, "failed: restart: " + why, true);
    return;
  }
  acc::head(*fresh) = std::exchange(acc::head(old), nullptr);
  acc::tail(*fresh) = std::exchange(acc::tail(old), nullptr);
  acc::queued(*fresh) = std::exchange(acc::queued(old), 0);
  acc::place(*fresh, old.self());
  acc::state(*fresh) = static_cast<std::uint16_t>(st_started | (acc::state(old) & st_bounded));
  s.actor = fresh;
  retire(old);
  ++restart_depth_;
  failure f;
  try {
    acc::started(*fresh);
  } catch (const std::exception& ex) {
    f = caught(&ex);
  } catch (...) {
    f = caught(nullptr);
  }
  if (acc::state(*fresh) & st_failing) {
    acc::state(*fresh) &= static_cast<std::uint16_t>(~st_failing);
    auto it = self_failures_.find(slot);
    if (!f) f = std::move(it->second);
    self_failures_.erase(it);
  }
  if (f) {
    on_failure(*fresh, nullptr, f);
    --restart_depth_;
    return;
  }
  --restart_depth_;
  if (acc::state(*fresh) & st_stopping) {
    end_actor(*fresh, exit_kind::normal, "stopped");
  } else if (acc::head(*fresh)) {
    make_ready(*fresh);
  }
}

bool shard::end_children(std::uint32_t slot, bool halt_them) {
  if (!has_children(slot)) return false;
  const address self = slots_[slot].actor->self();
  for_each_child(slot, [&](const address& child) {
    if (halt_them) {
      send(control(halt{"its parent " + self.to_string() + " ended or restarted"}, self, child));
    } else {
      send(make_envelope(exit_request{}, self, child));
    }
  });
  return true;
}

bool shard::end_actor(actor_base& a, exit_kind kind, std::string reason, bool halt_children) {
  const std::uint32_t slot = acc::slot(a);
  if (end_children(slot, halt_children)) {
    acc::state(a) |= st_held;
    ending& end = ending_[slot];
    end.kind = kind;
    end.reason = std::move(reason);
    return false;
  }
  finalize_stop(a, kind, std::move(reason));
  return false;
}

void shard::on_child_ended(envelope* e) {
  const address parent = e->target;
  child_ended& m = e->as<child_ended>();
  const std::uint32_t slot = parent.slot();
  slot_entry* s = slot < slots_.size() ? &slots_[slot] : nullptr;
  bool known = false;
  if (s && s->actor && s->incarnation == parent.incarnation()) {
    if (m.was_linked) {
      known = true;  // it left the list when it ended, on this shard
    } else if (auto r = remote_children_.find(slot); r != remote_children_.end()) {
      known = r->second.erase(m.child) > 0;
      if (r->second.empty()) remote_children_.erase(r);
    }
  }
  if (!known) {  // a child of an earlier instance, or a parent already gone
    destroy_envelope(e);
    return;
  }
  actor_base& a = *s->actor;
  auto end = ending_.find(slot);
  if (end != ending_.end() && (acc::state(a) & st_held)) {
    if (has_children(slot)) {
      destroy_envelope(e);
      return;  // more to wait for
    }
    acc::state(a) &= static_cast<std::uint16_t>(~st_held);
    if (envelope* held = std::exchange(end->second.held, nullptr)) {
      // Its children are gone: now it handles its exit request.
      ending_.erase(end);
      if (handle(a, held) && acc::head(a)) make_ready(a);
    } else {
      exit_kind kind = end->second.kind;
      std::string reason = std::move(end->second.reason);
      ending_.erase(end);
      finalize_stop(a, kind, std::move(reason));
    }
    destroy_envelope(e);
    return;
  }
  if (acc::accepts(a, type_id<child_exited>())) {
    send(make_envelope(child_exited{m.child, m.kind, std::move(m.reason)}, m.child, parent));
  }
  destroy_envelope(e);
}

void shard::finalize_stop(actor_base& a, exit_kind kind, std::string reason) {
  const std::uint32_t slot = acc::slot(a);
  const address self = a.self();
  if (auto w = watchers_.find(slot); w != watchers_.end()) {
    std::vector<address> list = std::move(w->second);
    watchers_.erase(w);
    for (const address& watcher : list) notify_watcher(watcher, self, reason);
  }
  envelope* e = acc::head(a);
  acc::head(a) = acc::tail(a) = nullptr;
  acc::queued(a) = 0;
  while (e) {
    envelope* next = e->next;
    dead_letter(e, dead_reason::actor_stopped, &a);
    e = next;
  }
  slot_entry& hot = slots_[slot];
  slot_life& s = slots_.life(slot);
  const bool was_linked = unlink_child(slot);
  if (!s.parent.is_null()) {
    // A parent on this shard that neither waits for its children nor
    // listens for their exits has nothing to learn: no message.
    const actor_base* p = was_linked ? slots_[s.parent.slot()].actor : nullptr;
    const bool quiet = p && !(acc::state(*const_cast<actor_base*>(p)) & st_held) &&
                       !acc::accepts(*p, type_id<child_exited>());
    if (!quiet) {
      send(control(child_ended{self, kind, std::move(reason), was_linked}, self, s.parent));
    }
  }
  if (acc::state(a) & st_bounded) mailbox_limits_.erase(slot);
  if (!slot_names_.empty()) release_name(slot, self);
  if (!windows_.empty()) windows_.erase(slot);
  if (s.factory) s.factory->release();
  s.factory = nullptr;
  s.parent = address{};
  hot.actor = nullptr;
  hot.next_free = free_head_;
  free_head_ = slot;
  shard_counters::drop(counters_.live);
  retire(a);
}

void shard::retire(actor_base& a) {
  if (acc::state(a) & st_ready) {
    acc::state(a) |= st_retired;  // run_ready frees it when it gets there
  } else {
    delete &a;
  }
}

}  // namespace troupe::internal
