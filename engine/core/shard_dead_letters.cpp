// A shard's dead letters (see shard.hpp): what happens to a message that
// cannot be delivered, and how often it is logged.

#include "core/shard.hpp"

#include <spdlog/spdlog.h>

#include "core/describe.hpp"

namespace troupe::internal {

namespace {

using clk = std::chrono::steady_clock;

errc errc_for(dead_reason why) {
  switch (why) {
    case dead_reason::unhandled: return errc::unhandled;
    case dead_reason::shutting_down: return errc::shutting_down;
    case dead_reason::mailbox_full: return errc::mailbox_full;
    case dead_reason::no_route:
    case dead_reason::peer_lost: return errc::peer_lost;
    default: return errc::dead_actor;
  }
}

}  // namespace

// ---------------------------------------------------------------- dead letters

void shard::dead_letter(envelope* e, dead_reason why, const actor_base* at) {
  shard_counters::bump(counters_.dead[static_cast<std::size_t>(why)]);
  log_dead_letter(*e, why, at);
  if (e->request && !e->is_reply() && !(e->flags & flag_control)) {
    std::string text;
    switch (why) {
      case dead_reason::unhandled:
        text = "actor " + e->target.to_string() + " (" + actor_name(at) + ") has no handler for " +
               type_name(e->type);
        break;
      case dead_reason::actor_stopped:
        text =
            "actor " + e->target.to_string() + " had stopped before handling " + type_name(e->type);
        break;
      case dead_reason::no_route:
        text = "no link to engine " + std::to_string(e->target.engine()) + " for " +
               e->target.to_string();
        break;
      case dead_reason::shutting_down: text = "the engine is shutting down"; break;
      case dead_reason::mailbox_full:
        text = "the mailbox of " + e->target.to_string() + " (" + actor_name(at) + ") is full";
        break;
      default: text = "no actor at " + e->target.to_string(); break;
    }
    queue_failure(*e, errc_for(why), std::move(text));
    destroy_envelope(e);
    return;
  }
  if (e->flags & (flag_control | flag_reply)) {
    destroy_envelope(e);
    return;
  }
  const bool actor_sender = !e->sender.is_null() && e->sender.shard() != address::outside_shard;
  if (why == dead_reason::mailbox_full && actor_sender && e->type != type_id<undelivered>()) {
    const address sender = e->sender;
    send(make_envelope(undelivered{e->target, why, message_ref(e)}, e->target, sender));
    return;
  }
  if (dead_letter_handler_ && e->type != type_id<troupe::dead_letter>() &&
      phase_ < shutdown_phase::cancel_waits) {
    const address target = e->target, sender = e->sender;
    send(make_envelope(troupe::dead_letter{target, sender, why, message_ref(e)}, sender,
                       dead_letter_handler_));
    return;
  }
  destroy_envelope(e);
}

void shard::log_dead_letter(const envelope& e, dead_reason why, const actor_base* at) {
  if (why == dead_reason::shutting_down) return;
  if (may_log()) {
    spdlog::info("dead letter ({}): {} to {}{}{}", to_string(why), type_name(e.type),
                 e.target.to_string(), at ? " " : "", at ? actor_name(at) : std::string());
  }
}

bool shard::may_log() {
  // At most 5 lines a second per shard of dead letters and failures; the
  // rest are summed up. The counters keep every one.
  const auto t = clk::now();
  if (t - log_window_ >= std::chrono::seconds(1)) {
    if (suppressed_ > 0) {
      spdlog::warn("shard {}: {} more dead letters and failures not logged", index_, suppressed_);
    }
    log_window_ = t;
    logged_in_window_ = 0;
    suppressed_ = 0;
  }
  if (logged_in_window_ < 5) {
    ++logged_in_window_;
    return true;
  }
  ++suppressed_;
  return false;
}

}  // namespace troupe::internal
