// A shard's pending asks (see shard.hpp): the table of requests waiting
// for a reply, their timeouts, and the replies and failures run on this
// shard.

#include "core/shard.hpp"

namespace troupe::internal {

// ---------------------------------------------------------------- asks

void shard::start_ask(pending_ask& p, envelope* request, duration timeout) {
  std::uint32_t i;
  if (pending_free_ != UINT32_MAX) {
    i = pending_free_;
    pending_free_ = pending_[i].next_free;
  } else {
    i = static_cast<std::uint32_t>(pending_.size());
    pending_.emplace_back();
  }
  pending_entry& pe = pending_[i];
  pe.waiter = &p;
  // Request ids are 61 bits: 29 of generation, 32 of index.
  pe.generation = (pe.generation + 1) & 0x1fffffffu;
  if (pe.generation == 0) pe.generation = 1;
  pe.target = request->target;
  pe.timeout = timeout;
  const std::uint64_t id = (static_cast<std::uint64_t>(pe.generation) << 32) | (i + 1);
  request->request = id;
  if (phase_ >= shutdown_phase::cancel_waits) timeout = duration::zero();
  push_timer({now() + timeout, timer_seq_++, timer_kind::ask_timeout, nullptr, {}, id});
  send(request);
}

void shard::complete_pending(envelope* reply) {
  const std::uint64_t id = reply->request;
  const std::uint32_t i = static_cast<std::uint32_t>(id & 0xffffffffu) - 1;
  if (i < pending_.size() && pending_[i].waiter &&
      pending_[i].generation == static_cast<std::uint32_t>(id >> 32)) {
    pending_entry& pe = pending_[i];
    pending_ask* w = std::exchange(pe.waiter, nullptr);
    pe.next_free = pending_free_;
    pending_free_ = i;
    shard_counters::bump(counters_.delivered);
    w->complete(reply);  // the ask's timer finds the entry gone and does nothing
    return;
  }
  dead_letter(reply, dead_reason::late_reply);
}

void shard::fail_ask(std::uint64_t request, errc code, std::string text) {
  auto* e =
      make_envelope(ask_failure{code, std::move(text)}, address{}, address(engine_, index_, 0, 0));
  e->request = request;
  e->flags |= flag_reply;
  shard_counters::bump(counters_.sent);
  complete_pending(e);
}

void shard::queue_failure(const envelope& request, errc code, std::string text) {
  if (request.sender.is_null()) return;
  send_reply(request,
             make_envelope(ask_failure{code, std::move(text)}, request.target, request.sender));
}

bool shard::run_control() {
  if (!control_head_) return false;
  while (control_head_) {
    envelope* list = control_head_;
    control_head_ = control_tail_ = nullptr;
    while (list) {
      envelope* next = list->next;
      handle_control(list);
      list = next;
    }
  }
  return true;
}

bool shard::run_replies() {
  if (!replies_head_) return false;
  envelope* list = replies_head_;
  replies_head_ = replies_tail_ = nullptr;
  while (list) {
    envelope* next = list->next;
    complete_pending(list);
    list = next;
  }
  return true;
}

}  // namespace troupe::internal
