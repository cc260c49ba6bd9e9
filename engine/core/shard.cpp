#include "core/shard.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <stdexcept>

#include "core/actor_access.hpp"
#include "core/describe.hpp"
#include "core/system_impl.hpp"
#include "troupe/internal/router_control.hpp"

namespace troupe::internal {

constinit thread_local shard* this_shard = nullptr;

namespace {

using acc = actor_access;
using clk = std::chrono::steady_clock;

// How long a shard that just ran out of work keeps polling its lanes before
// it sleeps in the kernel: long enough to catch the next message of a
// cross-shard conversation without a wake-up syscall, short enough that an
// idle engine uses no CPU. It adapts between the two bounds: a sleep cut
// short by work (the spin gave up too soon: a stream whose producer paused,
// each pause costing a wake-up on both sides) doubles it, a long sleep
// (the engine is idle) halves it.
constexpr auto spin_min = std::chrono::microseconds(50);
constexpr auto spin_max = std::chrono::microseconds(500);
constexpr std::size_t ring_batch = 256;
constexpr std::size_t publish_every = 32;
constexpr unsigned ready_budget = 256;
// Messages handled per pass over the ready actors, however they are spread:
// an actor that keeps telling itself must not keep the shard from its lanes,
// timers and sockets (a link that is not read for long is closed as silent).
constexpr unsigned ready_message_budget = 8192;
// Back-pressure: while this many envelopes wait for room in the lanes to
// other shards, the shard stops running its actors (it still drains its own
// lanes, so two shards that flood each other both make progress). Memory
// stays bounded when producers outrun a consumer on another shard.
constexpr std::size_t lane_backlog_limit = 32768;
// Bytes a link may hold unsent before the shard stops running actors.
constexpr std::size_t link_backlog_limit = std::size_t{4} << 20;

}  // namespace

shard::shard(system_impl& sys, std::uint16_t index, std::uint32_t engine, bool inline_mode,
             unsigned throughput)
    : sys_(sys), index_(index), engine_(engine), inline_(inline_mode),
      throughput_(throughput == 0 ? 1 : throughput) {
  root_policy_ = intern(sys.root_policy());
}

shard::~shard() = default;

void shard::connect(std::vector<envelope_ring*> inbound, std::vector<envelope_ring*> outbound) {
  in_ = std::move(inbound);
  out_.resize(outbound.size());
  for (std::size_t i = 0; i < outbound.size(); ++i) out_[i].ring = outbound[i];
}

void shard::attach(io::backend_choice io) {
  this_shard = this;
  if (!inline_) reactor_ = std::make_unique<io::reactor>(io);
}

std::string shard::io_description() const {
  if (!reactor_) return "inline (no reactor)";
  std::string s = io::to_string(reactor_->kind());
  if (!reactor_->fallback_reason().empty()) s += " (fallback: " + reactor_->fallback_reason() + ")";
  return s;
}

time_point shard::now() const { return inline_ ? virtual_now_ : clk::now(); }

// ---------------------------------------------------------------- routing

shard::slot_entry& shard::entry(std::uint32_t slot) {
  if (slot >= slots_.size()) slots_.grow_to(std::size_t{slot} + 1);
  return slots_[slot];
}

void shard::send(envelope* e) {
  if ((e->flags & flag_control) == 0) shard_counters::bump(counters_.sent);
  const address to = e->target;  // a copy: once published, `e` belongs to another shard
  if (to.engine() != engine_) [[unlikely]] {
    send_remote(e);
    return;
  }
  if (to.shard() == index_) {
    if (e->flags & flag_control) {
      // Control for this shard runs from the loop, never inside a handler.
      e->next = nullptr;
      if (control_tail_)
        control_tail_->next = e;
      else
        control_head_ = e;
      control_tail_ = e;
      return;
    }
    if (e->is_reply()) {
      // Replies wait for the loop: completing an ask here would resume the
      // asker inside the sender's handler.
      e->next = nullptr;
      if (replies_tail_)
        replies_tail_->next = e;
      else
        replies_head_ = e;
      replies_tail_ = e;
      return;
    }
    deliver_here(e);
    return;
  }
  if (to.shard() == address::outside_shard) {
    if (sys_.deliver_outside(e)) {
      shard_counters::bump(counters_.delivered);
    } else {
      dead_letter(e, dead_reason::late_reply);
    }
    return;
  }
  if (to.shard() >= out_.size()) {
    dead_letter(e, dead_reason::no_such_actor);
    return;
  }
  push_lane(to.shard(), e);
}

void shard::send_remote(envelope* e) {
  if (e->target.is_null() && (e->flags & (flag_control | flag_reply)) == 0) {
    dead_letter(e, dead_reason::no_such_actor);
  } else if (router_) {
    router_->send(e);  // this shard's own connection to that engine
  } else if (e->flags & flag_control) {
    unroutable_control(e, "no link to engine " + std::to_string(e->target.engine()));
  } else {
    dead_letter(e, dead_reason::no_route);
  }
}

void shard::unroutable_control(envelope* e, const std::string& why) {
  if (e->type == type_id<watch_request>()) {
    notify_watcher(e->as<watch_request>().watcher, e->target, "engine lost: " + why);
  } else if (e->request != 0) {
    queue_failure(*e, errc::peer_lost, why);
  }
  destroy_envelope(e);
}

void shard::push_lane(std::uint16_t dst, envelope* e) {
  const address to(engine_, dst, 0, 0);
  lane& l = out_[to.shard()];
  if (l.overflow_head == nullptr && l.ring->push(e)) {
    // A handler that sends thousands of messages must not leave the other
    // shard idle until it returns: publish every few dozen.
    if (l.ring->unpublished() >= publish_every) {
      l.ring->publish();
      sys_.shard_at(to.shard()).wake();
    }
  } else {
    e->next = nullptr;
    if (l.overflow_tail)
      l.overflow_tail->next = e;
    else
      l.overflow_head = e;
    l.overflow_tail = e;
    ++overflowed_;
  }
  if (dirty_.empty() || dirty_.back() != to.shard()) dirty_.push_back(to.shard());
}

void shard::send_reply(const envelope& request, envelope* reply) {
  reply->request = request.request;
  reply->flags |= flag_reply;
  send(reply);
}

void shard::deliver_here(envelope* e) {
  if (e->target.engine() != engine_) [[unlikely]] {  // from a lane, for a link
    send_remote(e);
    return;
  }
  if (e->flags & flag_control) {
    handle_control(e);
    return;
  }
  if (e->is_reply()) {
    complete_pending(e);
    return;
  }
  const address& to = e->target;
  const std::uint32_t slot = to.slot();
  if (slot < slots_.size()) {
    slot_entry& s = slots_[slot];
    if (s.actor && s.incarnation == to.incarnation()) {
      if ((acc::state(*s.actor) & st_bounded) && acc::queued(*s.actor) >= mailbox_limits_[slot]) {
        dead_letter(e, dead_reason::mailbox_full, s.actor);
        return;
      }
      enqueue(*s.actor, e);
      return;
    }
    if (s.incarnation != 0 || to.incarnation() != 1) {
      dead_letter(e, to.incarnation() <= s.incarnation ? dead_reason::actor_stopped
                                                       : dead_reason::no_such_actor);
      return;
    }
  }
  // A fresh slot reserved for an actor whose install has not arrived yet
  // (it travels on another lane): hold the message until it does.
  if (to.incarnation() == 1 && slot < fresh_.load(std::memory_order_relaxed) &&
      phase_ != shutdown_phase::closed) {
    park(slot, e);
    return;
  }
  dead_letter(e, dead_reason::no_such_actor);
}

void shard::deliver_inbound(envelope* e) {
  if ((e->flags & (flag_control | flag_reply)) == 0 && e->target.engine() == engine_) {
    const address& to = e->target;
    if (to.slot() < slots_.size()) {
      slot_entry& s = slots_[to.slot()];
      if (s.actor && s.incarnation == to.incarnation() && acc::head(*s.actor) == nullptr &&
          (acc::state(*s.actor) & (st_ready | st_waiting | st_held)) == 0) {
        // Nothing queued before it, nobody running it: skip the mailbox.
        handle(*s.actor, e);
        return;
      }
    }
  }
  deliver_here(e);
}

void shard::park(std::uint32_t slot, envelope* e) { parked_[slot].push_back(e); }

void shard::enqueue(actor_base& a, envelope* e) {
  e->next = nullptr;
  envelope*& tail = acc::tail(a);
  if (tail)
    tail->next = e;
  else
    acc::head(a) = e;
  tail = e;
  ++acc::queued(a);
  make_ready(a);
}

void shard::make_ready(actor_base& a) {
  std::uint16_t& st = acc::state(a);
  if (st & (st_ready | st_waiting | st_held)) return;
  st |= st_ready;
  acc::next_ready(a) = nullptr;
  if (ready_tail_)
    acc::next_ready(*ready_tail_) = &a;
  else
    ready_head_ = &a;
  ready_tail_ = &a;
}

address shard::spawn_local(actor_base* a, actor_factory* factory, const address& parent,
                           const supervision_policy* policy, std::uint32_t mailbox_limit,
                           const std::string* name) {
  std::uint32_t slot, incarnation;
  if (free_head_ != UINT32_MAX) {
    slot = free_head_;
    free_head_ = slots_[slot].next_free;
    incarnation = slots_[slot].incarnation + 1;
  } else {
    slot = reserve_slot();
    incarnation = 1;
  }
  install(a, slot, incarnation, factory, parent, policy, mailbox_limit, name);
  return address(engine_, index_, slot, incarnation);
}

void shard::adopt(const address& parent, const address& child) {
  remote_children_[parent.slot()].insert(child);
}

void shard::install(actor_base* a, std::uint32_t slot, std::uint32_t incarnation,
                    actor_factory* factory, const address& parent, const supervision_policy* policy,
                    std::uint32_t mailbox_limit, const std::string* name) {
  if (name && !name->empty()) slot_names_[slot] = *name;  // before on_start, which may end it
  slot_entry& s = entry(slot);
  s.actor = a;
  s.incarnation = incarnation;
  slot_life& life = slots_.life(slot);
  life.factory = factory;
  life.policy = policy ? intern(*policy) : nullptr;
  life.parent = parent;
  if (mailbox_limit) {
    mailbox_limits_[slot] = mailbox_limit;
    acc::state(*a) |= st_bounded;
  }
  life.first_child = 0;
  life.next_sibling = 0;
  life.prev_sibling = not_linked;
  if (!parent.is_null() && parent.shard() == index_ && parent.engine() == engine_) {
    link_child(parent.slot(), slot);  // before on_start, which may end it
  }
  acc::place(*a, address(engine_, index_, slot, incarnation));
  acc::state(*a) |= st_started;
  shard_counters::bump(counters_.spawned);
  shard_counters::bump(counters_.live);
  auto parked = parked_.find(slot);
  std::vector<envelope*> waiting;
  if (parked != parked_.end()) {
    waiting = std::move(parked->second);
    parked_.erase(parked);
  }
  std::string start_failure;
  try {
    acc::started(*a);
  } catch (...) {
    start_failure = describe_failure(std::current_exception());
    spdlog::error("actor {} ({}) failed in on_start: {}",
                  address(engine_, index_, slot, incarnation).to_string(), actor_name(a),
                  start_failure);
    shard_counters::bump(counters_.failures);
    internal::request_stop(*a);
  }
  if (acc::state(*a) & st_failing) {  // fail_with() in on_start
    acc::state(*a) &= static_cast<std::uint16_t>(~st_failing);
    auto it = self_failures_.find(slot);
    if (start_failure.empty()) start_failure = std::move(it->second.reason);
    self_failures_.erase(it);
    shard_counters::bump(counters_.failures);
    internal::request_stop(*a);
  }
  // `started` may have queued messages; parked ones were sent earlier.
  envelope* queued = acc::head(*a);
  acc::head(*a) = acc::tail(*a) = nullptr;
  acc::queued(*a) = 0;
  for (envelope* e : waiting) {
    if (e->flags & flag_control) {
      handle_control(e);  // a watch that arrived first
    } else {
      enqueue(*a, e);
    }
  }
  while (queued) {
    envelope* next = queued->next;
    enqueue(*a, queued);
    queued = next;
  }
  if (phase_ != shutdown_phase::running && parent.is_null()) {
    enqueue(*a,
            make_envelope(exit_request{}, address{}, address(engine_, index_, slot, incarnation)));
    shard_counters::bump(counters_.sent);
  }
  if (acc::state(*a) & st_stopping) {
    // It failed to start (it is not restarted: its first start failed) or
    // stopped itself in on_start.
    if (start_failure.empty()) {
      end_actor(*a, exit_kind::normal, "stopped");
    } else {
      end_actor(*a, exit_kind::failed, "failed: " + start_failure, true);
    }
  }
}

// ---------------------------------------------------------------- running

bool shard::step() {
  bool work = drain_inbound();
  work |= run_control();
  work |= run_replies();
  work |= run_ready();
  work |= run_timers();
  work |= flush_outbound();
  if (router_) router_->flush();
  // Socket completions: looked for when the shard has nothing else to do,
  // and every few passes while it is busy, so that neither waits long.
  if (reactor_ && reactor_->in_flight() > 0 && (!work || (++io_passes_ & 15) == 0)) {
    work |= reactor_->run_once(false) > 0;
  }
  if (work)
    activity_.store(activity_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  return work;
}

void shard::run() {
  if (router_) router_->start();
  while (phase_ != shutdown_phase::closed) {
    if (step()) continue;
    // Out of work: poll the lanes a little, then sleep in the kernel.
    if (!dirty_.empty()) continue;  // lanes still spill: keep flushing
    const auto spin_end = clk::now() + spin_;
    bool found = false;
    for (unsigned i = 0; !found && ((i & 63) != 0 || clk::now() < spin_end); ++i) {
      for (envelope_ring* r : in_) {
        if (r && !r->empty_hint()) {
          found = true;
          break;
        }
      }
      found = found || outside_pending_.load(std::memory_order_acquire);
      // Sockets in flight: their completions are looked for too, or a
      // reply from another engine would wait out the spin.
      if (!found && (i & 63) == 63 && reactor_ && reactor_->in_flight() > 0) {
        found = reactor_->run_once(false) > 0;
      }
    }
    if (!found) {
      const auto slept_from = clk::now();
      sleep_until_work();
      const auto slept = clk::now() - slept_from;
      if (slept < spin_) {
        spin_ = std::min<clk::duration>(spin_ * 2, spin_max);
      } else if (slept > 16 * spin_) {
        spin_ = std::max<clk::duration>(spin_ / 2, spin_min);
      }
    }
  }
}

void shard::sleep_until_work() {
  sleeping_.store(true, std::memory_order_seq_cst);
  // Dekker with wake(): a producer publishes, then reads `sleeping_`; we
  // set `sleeping_`, then look at the lanes. One of us sees the other.
  bool pending = outside_pending_.load(std::memory_order_seq_cst) || replies_head_ || ready_head_ ||
                 control_head_;
  for (envelope_ring* r : in_) pending = pending || (r && !r->empty_hint());
  if (!pending) {
    sys_.note_idle();  // stop() may be waiting for the shards to go quiet
    std::optional<time_point> deadline;
    if (!timers_.empty()) deadline = timers_.front().when;
    reactor_->run_once(true, deadline);
  }
  sleeping_.store(false, std::memory_order_seq_cst);
}

void shard::wake() noexcept {
  // The fence orders the caller's publish (a release store) before this
  // load; without it the two may pass each other and a sleeper is missed.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed) && sleeping_.exchange(false)) {
    if (reactor_) reactor_->wake();
  }
}

bool shard::drain_inbound() {
  bool work = false;
  for (envelope_ring* r : in_) {
    if (!r) continue;
    work |= r->consume(ring_batch, [this](envelope* e) { deliver_inbound(e); }) > 0;
  }
  if (outside_pending_.load(std::memory_order_acquire)) {
    envelope* list;
    {
      std::lock_guard g(outside_lock_);
      list = outside_head_;
      outside_head_ = outside_tail_ = nullptr;
      outside_pending_.store(false, std::memory_order_release);
    }
    while (list) {
      envelope* next = list->next;
      deliver_here(list);
      list = next;
      work = true;
    }
  }
  return work;
}

void shard::post_outside(envelope* e) {
  e->next = nullptr;
  {
    std::lock_guard g(outside_lock_);
    if (outside_tail_)
      outside_tail_->next = e;
    else
      outside_head_ = e;
    outside_tail_ = e;
    outside_pending_.store(true, std::memory_order_seq_cst);
  }
  wake();
}

bool shard::flush_outbound() {
  const std::size_t before = overflowed_;
  for (std::uint16_t d : dirty_) {
    lane& l = out_[d];
    while (l.overflow_head && l.ring->push(l.overflow_head)) {
      l.overflow_head = l.overflow_head->next;
      if (!l.overflow_head) l.overflow_tail = nullptr;
      --overflowed_;
    }
    if (l.ring->publish()) sys_.shard_at(d).wake();
  }
  // Lanes that still spill stay dirty until the consumer makes room.
  dirty_.erase(std::remove_if(dirty_.begin(), dirty_.end(),
                              [this](std::uint16_t d) { return out_[d].overflow_head == nullptr; }),
               dirty_.end());
  return overflowed_ != before;
}

bool shard::links_full() const noexcept {
  return router_ && router_->backlog() > link_backlog_limit;
}

bool shard::run_ready() {
  if (!ready_head_ || overflowed_ > lane_backlog_limit) return false;
  // Back-pressure from links to other engines: their unsent bytes bound
  // what this shard's actors may add.
  if (links_full()) return false;
  // Up to `ready_budget` actor turns, including actors made ready by those
  // turns, before the loop looks at its lanes and timers again: a local
  // conversation runs without a full loop pass per message.
  unsigned messages = 0;
  for (unsigned turns = 0; turns < ready_budget && ready_head_ &&
                           overflowed_ <= lane_backlog_limit && messages < ready_message_budget;
       ++turns) {
    actor_base* a = ready_head_;
    ready_head_ = acc::next_ready(*a);
    if (!ready_head_) ready_tail_ = nullptr;
    acc::state(*a) &= static_cast<std::uint16_t>(~st_ready);
    if (acc::state(*a) & st_retired) {
      delete a;  // ended or replaced while it waited here
      continue;
    }
    messages += run_actor(*a);
  }
  return true;
}

unsigned shard::run_actor(actor_base& a) {
  unsigned n = 0;
  while (n < throughput_) {
    envelope* e = acc::head(a);
    if (!e) return n;
    acc::head(a) = e->next;
    if (!e->next) acc::tail(a) = nullptr;
    --acc::queued(a);
    ++n;
    if (!handle(a, e)) return n;
    if (links_full()) break;  // the rest waits until the links have sent
  }
  if (acc::head(a)) make_ready(a);
  return n;
}

bool shard::handle(actor_base& a, envelope* e) {
  if (e->type == type_id<exit_request>()) [[unlikely]] {
    const std::uint32_t slot = acc::slot(a);
    if (has_children(slot)) {
      // Children end first; the actor handles its exit request after.
      acc::state(a) |= st_held;
      ending_[slot] = ending{exit_kind::requested, "exit requested", e};
      end_children(slot, false);
      return false;
    }
  }
  acc::current(a) = e;
  if (acc::fiber_slot(a)) return handle_on_fiber(a, e);
  bool handled = true;
  std::optional<failure> f;  // empty costs nothing on the way of a message
  in_dispatch_ = &a;
  try {
    handled = acc::dispatch(a, *e);
  } catch (const std::exception& ex) {
    f.emplace(caught(&ex));
  } catch (...) {
    f.emplace(caught(nullptr));
  }
  in_dispatch_ = nullptr;
  if (!f && sync_failure_) [[unlikely]]
    f.emplace(std::exchange(sync_failure_, {}));
  if (acc::state(a) & st_waiting) return false;  // a coroutine handler owns `e` now
  return finish_message(a, e, handled, f ? &*f : nullptr);
}

bool shard::finish_message(actor_base& a, envelope* e, bool handled, failure* fp) {
  acc::current(a) = nullptr;
  bool forwarded = false;
  failure given;  // fail_with()'s
  if (acc::state(a) & (st_failing | st_forwarded)) [[unlikely]] {
    if (acc::state(a) & st_failing) {
      auto it = self_failures_.find(acc::slot(a));
      if (!fp) {  // a throw wins over fail_with()
        given = std::move(it->second);
        fp = &given;
      }
      self_failures_.erase(it);
    }
    forwarded = (acc::state(a) & st_forwarded) != 0;
    acc::state(a) &= static_cast<std::uint16_t>(~(st_failing | st_forwarded));
    if (forwarded && (fp || !handled)) {
      forwarded = false;  // it failed after all: the message is its own again
      e->target = a.self();
    }
  }
  if (handled && !fp) [[likely]] {
    shard_counters::bump(counters_.delivered);
    if (forwarded) [[unlikely]] {
      e->flags &= ~std::uint64_t{flag_retried};
      send(e);  // target, sender and request as forward() left them
      if (!(acc::state(a) & st_stopping)) return true;
      e = nullptr;
    } else if (!(acc::state(a) & st_stopping)) [[likely]] {
      destroy_envelope(e);
      return true;
    }
  }
  if (fp && !(acc::state(a) & st_stopping)) return on_failure(a, e, *fp);
  exit_kind kind = exit_kind::normal;
  std::string reason = "stopped";
  if (fp) {
    kind = exit_kind::failed;
    reason = "failed: " + describe(*fp);
    shard_counters::bump(counters_.failures);
    poison_message(a, e, reason.substr(8));
  } else if (!handled) {
    if (e->type == type_id<undelivered>() || e->type == type_id<child_exited>()) {
      shard_counters::bump(counters_.delivered);  // notices it does not ask for
      destroy_envelope(e);
    } else {
      dead_letter(e, dead_reason::unhandled, &a);
    }
  } else if (e) {  // handled, and it stops now (counted above)
    if (e->type == type_id<exit_request>()) {
      kind = phase_ == shutdown_phase::running ? exit_kind::requested : exit_kind::shutdown;
      reason = phase_ == shutdown_phase::running ? "exit requested" : "shutdown";
    }
    destroy_envelope(e);
  }
  if (acc::state(a) & st_stopping) {
    if (auto f = ending_.find(acc::slot(a)); f != ending_.end()) {
      kind = f->second.kind;
      reason = std::move(f->second.reason);
      ending_.erase(f);
    }
    return end_actor(a, kind, std::move(reason), false);
  }
  return true;
}

void shard::count_unknown_type(std::string_view name, const address& target) {
  shard_counters::bump(counters_.sent);  // it arrived here, and ends here
  shard_counters::bump(counters_.dead[static_cast<std::size_t>(dead_reason::unknown_type)]);
  if (may_log()) {
    spdlog::info("dead letter (unknown type): '{}' to {} from another engine", name,
                 target.to_string());
  }
}

void shard::count_peer_lost(std::size_t n) {
  // Encoded for the link and counted as gone to it; they never left.
  for (std::size_t i = 0; i < n; ++i) {
    shard_counters::drop(counters_.remote_out);
    shard_counters::bump(counters_.dead[static_cast<std::size_t>(dead_reason::peer_lost)]);
  }
}

void shard::peer_lost(std::uint32_t engine, std::string why) {
  sys_.fail_outside_asks(engine, why);
  for (std::size_t i = 0; i < shard_count(); ++i) {
    envelope* e = make_envelope(peer_lost_msg{engine, why}, address{},
                                address(engine_, static_cast<std::uint16_t>(i), 0, 0));
    e->flags |= flag_control;
    send(e);
  }
}

void shard::notify_watcher(const address& watcher, const address& who, std::string reason) {
  send(make_envelope(terminated{who, std::move(reason)}, who, watcher));
}

void shard::begin_task(actor_base& a) noexcept { acc::state(a) |= st_waiting; }

void shard::end_task(actor_base& a, envelope* e, failure f) noexcept {
  acc::state(a) &= static_cast<std::uint16_t>(~st_waiting);
  if (in_dispatch_ == &a) {  // finished before its first suspension
    sync_failure_ = std::move(f);
    return;
  }
  acc::current(a) = e;
  if (finish_message(a, e, true, f ? &f : nullptr) && acc::head(a)) make_ready(a);
}

void shard::request_failure(actor_base& a, std::string reason) {
  failure& f = self_failures_[acc::slot(a)];
  f.failed = true;
  f.reason = std::move(reason);
  acc::state(a) |= st_failing;
}

// ---------------------------------------------------------------- entry points

void send(shard& s, envelope* e) { s.send(e); }
void send_reply(shard& s, const envelope& request, envelope* reply) {
  s.send_reply(request, reply);
}
void start_ask(shard& s, pending_ask& p, envelope* request, duration timeout) {
  s.start_ask(p, request, timeout);
}
timer_id start_timer(shard& s, duration after, envelope* e) { return s.start_timer(after, e); }
bool cancel_timer(shard& s, timer_id id) noexcept { return s.cancel_timer(id); }
void sleep(shard& s, duration d, std::coroutine_handle<> h) { s.sleep(d, h); }
void begin_task(actor_base& a) noexcept { acc::home(a)->begin_task(a); }
void end_task(actor_base& a, envelope* e, failure f) noexcept {
  acc::home(a)->end_task(a, e, std::move(f));
}
void request_failure(actor_base& a, std::string reason) {
  acc::home(a)->request_failure(a, std::move(reason));
}
bool failing(const actor_base& a) noexcept {
  return (acc::state(const_cast<actor_base&>(a)) & (st_failing | st_forwarded)) != 0;
}
void forward_current(actor_base& a, const address& to) {
  envelope* e = acc::current(a);
  if (!e || (acc::state(a) & st_forwarded)) {
    throw std::logic_error("forward() called outside a handler, or twice for one message");
  }
  e->target = to;
  acc::state(a) |= st_forwarded;
}
void request_stop(actor_base& a) noexcept { acc::state(a) |= st_stopping; }
void set_dead_letter_handler(shard& s, const address& handler) {
  for (std::size_t i = 0; i < s.shard_count(); ++i) {
    envelope* e = make_envelope(set_dead_letter_handler_msg{handler}, handler,
                                address(s.engine(), static_cast<std::uint16_t>(i), 0, 0));
    e->flags |= flag_control;
    s.send(e);
  }
}
void watch(shard& s, const address& watcher, const address& target) {
  if (target.is_null() || (target.engine() == s.engine() && target.shard() >= s.shard_count())) {
    s.notify_watcher(watcher, target, "not alive: no route to " + target.to_string());
    return;
  }
  // On another engine: the watch crosses its link, and the link's end
  // fires it ("engine lost") if the answer cannot come.
  envelope* e = make_envelope(watch_request{watcher}, watcher, target);
  e->flags |= flag_control;
  s.send(e);
}
std::size_t shard_count(const shard& s) noexcept { return s.shard_count(); }

}  // namespace troupe::internal

namespace troupe {

void sleep_for::await_suspend(std::coroutine_handle<> h) const {
  internal::shard* s = internal::this_shard;
  if (!s) throw std::logic_error("troupe::sleep_for awaited outside an actor's shard");
  s->sleep(d, h);
}

}  // namespace troupe
