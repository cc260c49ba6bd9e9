// A shard's control messages (see shard.hpp): the handlers the core
// registers for installs, lost peers, supervision, mailbox depths, abandoned
// asks and watches, and the dispatch to the layers' own.

#include "core/shard.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/actor_access.hpp"
#include "core/system_impl.hpp"
#include "troupe/internal/router_control.hpp"

namespace troupe::internal {

namespace {

using acc = actor_access;

}  // namespace

// ---------------------------------------------------------------- control messages

void shard::handle_control(envelope* e) {
  if (const control_registry::handler* h = sys_.controls().find(e->type)) {
    if (!(*h)(*this, e)) destroy_envelope(e);
    return;
  }
  // A layer this engine does not run (a convention's hello to an engine in
  // none, say): nothing here knows what to do with it.
  spdlog::debug(
      "engine {}: a control message {} from engine {} that no layer of this engine "
      "handles",
      engine_, type_name(e->type), e->sender.engine());
  destroy_envelope(e);
}

void shard::add_core_controls(control_registry& r) {
  r.add<install_actor>([](shard& s, envelope* e) { return s.on_install(e); });
  r.add<child_ended>([](shard& s, envelope* e) {
    s.on_child_ended(e);
    return true;
  });
  for (const message_type* t :
       {type_id<name_claim>(), type_id<name_lookup>(), type_id<name_release>(),
        type_id<name_forget>(), type_id<name_reserve>(), type_id<name_bind>(),
        type_id<name_handoff>(), type_id<rehome_names>()}) {
    r.add(t, [](shard& s, envelope* e) { return s.handle_name_control(e); });
  }
  r.add<remote_spawn>([](shard& s, envelope* e) {
    s.handle_remote_spawn(e);
    return false;
  });
  r.add<module_census>([](shard& s, envelope* e) {
    s.handle_census(e);
    return false;
  });
  r.add<peer_lost_msg>([](shard& s, envelope* e) { return s.on_peer_lost(e); });
  r.add<set_dead_letter_handler_msg>([](shard& s, envelope* e) {
    s.dead_letter_handler_ = e->as<set_dead_letter_handler_msg>().handler;
    return false;
  });
  for (const message_type* t : {type_id<escalation>(), type_id<halt>(), type_id<restart_siblings>(),
                                type_id<restart_request>()}) {
    r.add(t, [](shard& s, envelope* e) { return s.on_supervision_control(e); });
  }
  r.add<enter_phase_msg>([](shard& s, envelope* e) {
    s.enter_phase(e->as<enter_phase_msg>().phase);
    return false;
  });
  r.add<mailbox_depth_query>([](shard& s, envelope* e) { return s.on_mailbox_depth_query(e); });
  r.add<abandon_ask>([](shard& s, envelope* e) { return s.on_abandon_ask(e); });
  r.add<watch_request>([](shard& s, envelope* e) { return s.on_watch_request(e); });
}

bool shard::on_install(envelope* e) {
  install_actor& m = e->as<install_actor>();
  install(m.actor, e->target.slot(), e->target.incarnation(), m.factory, m.parent,
          m.has_policy ? &m.policy : nullptr, m.mailbox_limit, &m.name);
  return false;
}

bool shard::on_peer_lost(envelope* e) {
  const peer_lost_msg& m = e->as<peer_lost_msg>();
  if (router_) router_->engine_lost(m.engine, m.why);
  // Watches from the lost engine: their notices could not reach it.
  for (auto& [slot, list] : watchers_) {
    std::erase_if(list, [&](const address& w) { return w.engine() == m.engine; });
  }
  forget_names_of(m.engine);
  for (std::uint32_t i = 0; i < pending_.size(); ++i) {
    pending_entry& pe = pending_[i];
    if (pe.waiter && pe.target.engine() == m.engine) {
      fail_ask((static_cast<std::uint64_t>(pe.generation) << 32) | (i + 1), errc::peer_lost, m.why);
    }
  }
  return false;
}

bool shard::on_supervision_control(envelope* e) {
  const address& to = e->target;
  slot_entry* s = to.slot() < slots_.size() ? &slots_[to.slot()] : nullptr;
  if (s && s->actor && s->incarnation == to.incarnation()) {
    actor_base& a = *s->actor;
    if (e->type == type_id<escalation>()) {
      const escalation& m = e->as<escalation>();
      if (acc::state(a) & st_waiting) {
        // Busy in a coroutine or fiber: it ends when that handler does.
        acc::state(a) |= st_stopping;
        ending_.try_emplace(
            to.slot(), ending{exit_kind::failed,
                              "failed: child " + m.child.to_string() + " escalated: " + m.reason});
      } else if ((acc::state(a) & st_held) == 0) {
        failure f;
        f.failed = true;
        f.reason = "child " + m.child.to_string() + " escalated: " + m.reason;
        on_failure(a, nullptr, f);
      }
    } else if (e->type == type_id<halt>()) {
      std::string why = std::move(e->as<halt>().reason);
      if (acc::state(a) & st_waiting) {
        acc::state(a) |= st_stopping;
        ending_.try_emplace(to.slot(), ending{exit_kind::stopped, std::move(why)});
      } else if (!ending_.contains(to.slot())) {
        end_actor(a, exit_kind::stopped, std::move(why), true);
      }
    } else if (e->type == type_id<restart_siblings>()) {
      const address failed = e->as<restart_siblings>().failed;
      for_each_child(to.slot(), [&](const address& child) {
        if (child == failed) return;
        envelope* r = make_envelope(
            restart_request{"sibling " + failed.to_string() + " failed (all-for-one)"}, a.self(),
            child);
        r->flags |= flag_control;
        send(r);
      });
    } else if ((acc::state(a) & (st_waiting | st_held | st_stopping)) == 0 &&
               slots_.life(to.slot()).factory && phase_ == shutdown_phase::running) {
      shard_counters::bump(counters_.restarts);
      restart(a, nullptr, duration::zero());
    }
  }
  return false;
}

bool shard::on_mailbox_depth_query(envelope* e) {
  // A pool's load sample: what waits for this actor, answered here.
  const address& to = e->target;
  slot_entry* s = to.slot() < slots_.size() ? &slots_[to.slot()] : nullptr;
  const bool alive = s && s->actor && s->incarnation == to.incarnation();
  if (!e->sender.is_null()) {
    send(make_envelope(mailbox_depth{to, e->as<mailbox_depth_query>().seq,
                                     alive ? acc::queued(*s->actor) : 0u, alive ? 1u : 0u},
                       to, e->sender));
  }
  return false;
}

bool shard::on_abandon_ask(envelope* e) {
  // A pool gave this ask to a worker that was lost: it ends, if it waits.
  abandon_ask& m = e->as<abandon_ask>();
  const std::uint32_t i = static_cast<std::uint32_t>(m.request & 0xffffffffu) - 1;
  if (i < pending_.size() && pending_[i].waiter &&
      pending_[i].generation == static_cast<std::uint32_t>(m.request >> 32)) {
    fail_ask(m.request, m.code, std::move(m.text));
  }
  return false;
}

bool shard::on_watch_request(envelope* e) {
  const address& to = e->target;
  const address watcher = e->as<watch_request>().watcher;
  slot_entry* s = to.slot() < slots_.size() ? &slots_[to.slot()] : nullptr;
  if (s && s->actor && s->incarnation == to.incarnation()) {
    watchers_[to.slot()].push_back(watcher);
    return false;
  }
  if ((!s || s->incarnation == 0) && to.incarnation() == 1 &&
      to.slot() < fresh_.load(std::memory_order_relaxed) && phase_ != shutdown_phase::closed) {
    park(to.slot(), e);  // its actor is on the way: the watch waits for it
    return true;
  }
  notify_watcher(watcher, to, "not alive");
  return false;
}

}  // namespace troupe::internal
