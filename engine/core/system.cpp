#include "troupe/system.hpp"

#include <spdlog/spdlog.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <stdexcept>

#include "core/actor_access.hpp"
#include "core/system_impl.hpp"

namespace troupe::internal {

namespace {

// Lane capacity between two shards. Past it, a producer spills into an
// order-keeping overflow list, so a burst never blocks nor drops.
constexpr std::size_t lane_capacity = 8192;
// How long stop() waits for the engine to fall quiet at each step before it
// moves on regardless (and says so).
constexpr auto quiet_limit = std::chrono::seconds(30);

}  // namespace

system_impl::system_impl(system_options options, std::vector<extension_ptr> extensions)
    : options_(std::move(options)), extensions_(std::move(extensions)) {
  unsigned n = options_.inline_mode ? 1u
               : options_.shards    ? options_.shards
                                    : std::max(1u, std::thread::hardware_concurrency());
  if (n >= address::outside_shard) {
    throw std::invalid_argument("system_options::shards must be below 65535, got " +
                                std::to_string(n));
  }
  rings_.resize(static_cast<std::size_t>(n) * n);
  for (unsigned s = 0; s < n; ++s) {
    shards_.push_back(std::make_unique<shard>(*this, static_cast<std::uint16_t>(s),
                                              options_.engine_id, options_.inline_mode,
                                              options_.throughput));
  }
  for (unsigned src = 0; src < n; ++src) {
    for (unsigned dst = 0; dst < n; ++dst) {
      if (src != dst) rings_[src * n + dst] = std::make_unique<envelope_ring>(lane_capacity);
    }
  }
  for (unsigned s = 0; s < n; ++s) {
    std::vector<envelope_ring*> in(n), out(n);
    for (unsigned o = 0; o < n; ++o) {
      in[o] = rings_[o * n + s].get();
      out[o] = rings_[s * n + o].get();
    }
    shards_[s]->connect(std::move(in), std::move(out));
  }
  shard::add_core_controls(controls_);
  blocking_pool::add_controls(controls_);
  for (auto& x : extensions_) {
    if (!x) throw std::invalid_argument("a null extension");
    x->configure(*this);
  }
  for (auto& x : extensions_) x->attach(*this);
  if (options_.inline_mode) {
    shard* saved = this_shard;
    shards_[0]->attach(options_.io);
    this_shard = saved;
  } else {
    start_threads();
  }
  for (auto& x : extensions_) x->started(*this);
}

void system_impl::set_router(std::size_t shard, std::unique_ptr<remote_router> r) {
  if (options_.inline_mode) {
    throw std::invalid_argument("links to other engines need shard threads, not inline mode");
  }
  shards_.at(shard)->set_router(std::move(r));
  has_router_ = true;
}

void system_impl::start_threads() {
  // The threads outlive this function's frame: the gate they wait on is
  // shared with them, not borrowed.
  struct start_gate {
    std::mutex lock;
    std::condition_variable cv;
    std::size_t attached = 0;
    bool go = false, abort = false;
    std::string failure;
  };
  auto gate = std::make_shared<start_gate>();
  const io::backend_choice io = options_.io;
  std::vector<int> cpus;
  if (options_.pin_shards) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
      for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
      }
    }
    if (cpus.size() < shards_.size()) cpus.clear();  // would share cores: leave it to the OS
  }
  for (auto& sp : shards_) {
    shard* s = sp.get();
    const int cpu = cpus.empty() ? -1 : cpus[s->index()];
    threads_.emplace_back([gate, s, io, cpu] {
      if (cpu >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);
      }
      std::string failure;
      try {
        s->attach(io);
      } catch (const std::exception& ex) {
        failure = ex.what();
      }
      std::unique_lock g(gate->lock);
      if (!failure.empty() && gate->failure.empty()) gate->failure = failure;
      ++gate->attached;
      gate->cv.notify_all();
      gate->cv.wait(g, [&] { return gate->go || gate->abort; });
      if (gate->abort) return;
      g.unlock();
      s->run();
    });
  }
  std::unique_lock g(gate->lock);
  gate->cv.wait(g, [&] { return gate->attached == shards_.size(); });
  if (!gate->failure.empty()) {
    gate->abort = true;
    gate->cv.notify_all();
    g.unlock();
    for (auto& t : threads_) t.join();
    threads_.clear();
    stopped_ = true;
    throw io::setup_error(gate->failure);
  }
  gate->go = true;
  gate->cv.notify_all();
  g.unlock();
  spdlog::debug("engine {}: {} shards on {}", options_.engine_id, shards_.size(),
                shards_[0]->io_description());
}

system_impl::~system_impl() { stop(); }

std::uint16_t system_impl::place(const spawn_options& o, shard* from) {
  const std::size_t n = shards_.size();
  if (o.shard >= 0) return static_cast<std::uint16_t>(static_cast<std::size_t>(o.shard) % n);
  switch (o.where) {
    case placement::local: return from ? from->index() : 0;
    case placement::automatic:
      if (from) return from->index();
      [[fallthrough]];
    case placement::round_robin:
      if (from) {
        return static_cast<std::uint16_t>(from->round_robin_++ % n);
      }
      return static_cast<std::uint16_t>(round_robin_.fetch_add(1, std::memory_order_relaxed) % n);
    case placement::least_loaded: {
      std::size_t best = 0;
      for (std::size_t i = 1; i < n; ++i) {
        if (shards_[i]->live_actors() < shards_[best]->live_actors()) best = i;
      }
      return static_cast<std::uint16_t>(best);
    }
  }
  return 0;
}

void system_impl::dead_letter_outside(envelope* e, dead_reason why) {
  shard_counters::bump(outside_counters.dead[static_cast<std::size_t>(why)]);
  if (e->request && e->sender.shard() == address::outside_shard) {
    auto* r = make_envelope(
        ask_failure{why == dead_reason::shutting_down ? errc::shutting_down : errc::dead_actor,
                    "cannot deliver to " + e->target.to_string() + ": " + to_string(why)},
        e->target, e->sender);
    r->request = e->request;
    r->flags |= flag_reply;
    shard_counters::bump(outside_counters.sent);
    if (deliver_outside(r)) {
      shard_counters::bump(outside_counters.delivered);
    } else {
      shard_counters::bump(
          outside_counters.dead[static_cast<std::size_t>(dead_reason::late_reply)]);
      destroy_envelope(r);
    }
  }
  destroy_envelope(e);
}

void system_impl::outside_send(envelope* e) {
  const bool control = (e->flags & flag_control) != 0;
  if (!control) shard_counters::bump(outside_counters.sent);
  const address to = e->target;
  dead_reason why = dead_reason::count_;
  if (stopped())
    why = dead_reason::shutting_down;
  else if (to.engine() != options_.engine_id && ((to.is_null() && !control) || !has_router_))
    why = to.is_null() && !control ? dead_reason::no_such_actor : dead_reason::no_route;
  else if (to.engine() != options_.engine_id) {
    shards_[0]->post_outside(e);  // shard 0 holds the links to other engines
    return;
  } else if (to.shard() >= shards_.size())
    why = dead_reason::no_such_actor;
  if (why != dead_reason::count_) {
    if (control && e->request && e->sender.shard() == address::outside_shard &&
        to.engine() != options_.engine_id) {
      // A spawn or name on another engine, and no links at all.
      auto* r = make_envelope(
          ask_failure{errc::peer_lost, "no link to engine " + std::to_string(to.engine())},
          e->target, e->sender);
      r->request = e->request;
      r->flags |= flag_reply;
      if (!deliver_outside(r)) destroy_envelope(r);
      destroy_envelope(e);
      return;
    }
    if (control) {
      if (e->type == type_id<install_actor>()) {
        install_actor& m = e->as<install_actor>();
        delete m.actor;
        if (m.factory) m.factory->release();
      }
      destroy_envelope(e);
      return;
    }
    dead_letter_outside(e, why);
    return;
  }
  shards_[to.shard()]->post_outside(e);
}

std::vector<std::uint32_t> system_impl::known_engines() const {
  std::lock_guard g(engines_lock_);
  std::vector<std::uint32_t> all = peers_up_;
  all.insert(std::upper_bound(all.begin(), all.end(), options_.engine_id), options_.engine_id);
  return all;
}

void system_impl::engine_up(std::uint32_t id) {
  std::lock_guard g(engines_lock_);
  auto at = std::lower_bound(peers_up_.begin(), peers_up_.end(), id);
  if (at == peers_up_.end() || *at != id) peers_up_.insert(at, id);
}

void system_impl::engine_down(std::uint32_t id) {
  std::lock_guard g(engines_lock_);
  std::erase(peers_up_, id);
}

void system_impl::fail_outside_asks(std::uint32_t engine, const std::string& why) {
  std::lock_guard g(waiters_lock_);
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    outside_waiter* w = it->second;
    if (w->target.engine() == engine && !w->reply) {
      w->reply = make_envelope(ask_failure{errc::peer_lost, why}, address{}, address{});
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  waiters_cv_.notify_all();
}

bool system_impl::deliver_outside(envelope* reply) {
  std::lock_guard g(waiters_lock_);
  auto it = waiters_.find(reply->request);
  if (it == waiters_.end()) return false;
  it->second->reply = reply;
  waiters_.erase(it);
  waiters_cv_.notify_all();
  return true;
}

envelope* system_impl::outside_ask(envelope* request, duration timeout) {
  if (this_shard && !options_.inline_mode) {
    destroy_envelope(request);
    return make_envelope(ask_failure{errc::misuse,
                                     "system::ask called on a shard thread; in an actor, use "
                                     "co_await ask<R>(...) or blocking_ask<R>(...)"},
                         address{}, address{});
  }
  outside_waiter w;
  const std::uint64_t id = next_request_.fetch_add(1, std::memory_order_relaxed);
  const address target = request->target;
  w.target = target;
  request->request = id;
  request->sender = address(options_.engine_id, address::outside_shard, 0, 1);
  {
    std::lock_guard g(waiters_lock_);
    waiters_[id] = &w;
  }
  outside_send(request);
  auto has_reply = [&] {
    std::lock_guard g(waiters_lock_);
    return w.reply != nullptr;
  };
  if (options_.inline_mode) {
    shard& s = *shards_[0];
    shard* saved = std::exchange(this_shard, &s);
    const time_point deadline = s.now() + timeout;
    while (!has_reply()) {
      if (s.step()) continue;
      auto next = s.next_timer();
      if (next && *next <= deadline) {
        s.advance_clock(std::max(s.now(), *next));
        continue;
      }
      s.advance_clock(deadline);  // nothing can answer before the deadline
      break;
    }
    this_shard = saved;
  } else {
    std::unique_lock g(waiters_lock_);
    waiters_cv_.wait_for(g, timeout, [&] { return w.reply != nullptr; });
  }
  std::lock_guard g(waiters_lock_);
  waiters_.erase(id);
  if (w.reply) return w.reply;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  return make_envelope(ask_failure{errc::timeout, "no reply from " + target.to_string() +
                                                      " within " + std::to_string(ms) + "ms"},
                       address{}, address{});
}

std::uint64_t system_impl::run_until_idle() {
  if (!options_.inline_mode) {
    throw std::logic_error(
        "system::run_until_idle is for inline mode (system_options::inline_mode)");
  }
  shard& s = *shards_[0];
  shard* saved = std::exchange(this_shard, &s);
  const std::uint64_t before = s.counters().delivered.load(std::memory_order_relaxed);
  for (;;) {
    if (s.step()) continue;
    auto next = s.next_timer();
    if (!next) break;
    s.advance_clock(std::max(s.now(), *next));
  }
  this_shard = saved;
  return s.counters().delivered.load(std::memory_order_relaxed) - before;
}

void system_impl::broadcast_phase(shutdown_phase p) {
  for (auto& s : shards_) {
    auto* e =
        make_envelope(enter_phase_msg{p}, address{}, address(options_.engine_id, s->index(), 0, 0));
    e->flags |= flag_control;
    s->post_outside(e);
  }
}

void system_impl::wait_quiet() {
  // Quiet: every shard asleep with nothing queued to it, twice in a row
  // with no shard having done any work in between.
  auto snapshot = [this](std::vector<std::uint64_t>& activity) {
    activity.clear();
    // A blocking job's end resumes a coroutine: not quiet while one runs.
    if (blocking_.busy() != 0) return false;
    for (auto& s : shards_) {
      if (!s->idle() || !s->outside_empty()) return false;
      activity.push_back(s->activity());
    }
    for (auto& r : rings_) {
      if (r && !r->empty_hint()) return false;
    }
    return true;
  };
  // Each shard signals (note_idle) when it falls asleep: a wait ends when
  // one does, never on a poll. Once all sleep, quiet is confirmed when none
  // wakes for a short grace period (an I/O completion or a lane can still
  // wake one) and a second look finds nothing done meanwhile.
  constexpr auto grace = std::chrono::microseconds(200);
  const auto limit = std::chrono::steady_clock::now() + quiet_limit;
  std::vector<std::uint64_t> first, second;
  quiet_watch_.store(true, std::memory_order_seq_cst);
  // Dekker with note_idle(): a shard sets `sleeping_`, then reads
  // `quiet_watch_`; we set `quiet_watch_`, then read `sleeping_` (below).
  // One of us sees the other, so no falling asleep goes unsignalled.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::unique_lock g(quiet_lock_);
  while (std::chrono::steady_clock::now() < limit) {
    const std::uint64_t epoch = idle_epoch_;
    auto slept_again = [&] { return idle_epoch_ != epoch; };
    g.unlock();
    const bool asleep = snapshot(first);
    g.lock();
    if (!asleep) {
      quiet_cv_.wait_until(g, limit, slept_again);
      continue;
    }
    if (quiet_cv_.wait_for(g, grace, slept_again)) continue;
    g.unlock();
    const bool quiet = snapshot(second) && first == second;
    g.lock();
    if (quiet) {
      quiet_watch_.store(false, std::memory_order_relaxed);
      return;
    }
  }
  quiet_watch_.store(false, std::memory_order_relaxed);
  spdlog::warn("engine {}: still busy after {}s of shutdown; closing anyway", options_.engine_id,
               quiet_limit.count());
}

void system_impl::note_idle() noexcept {
  if (!quiet_watch_.load(std::memory_order_seq_cst)) return;
  {
    std::lock_guard g(quiet_lock_);
    ++idle_epoch_;
  }
  quiet_cv_.notify_all();
}

void system_impl::stop() {
  std::lock_guard g(stop_lock_);
  if (stopped()) return;
  // A name backend answers its queued requests while the shards run.
  if (names_) names_->close();
  for (auto x = extensions_.rbegin(); x != extensions_.rend(); ++x) (*x)->stopping(*this);
  const shutdown_phase steps[] = {shutdown_phase::exit_requests, shutdown_phase::cancel_waits,
                                  shutdown_phase::closed};
  if (options_.inline_mode) {
    shard& s = *shards_[0];
    shard* saved = std::exchange(this_shard, &s);
    for (shutdown_phase p : steps) {
      broadcast_phase(p);
      while (s.step()) {
      }
    }
    this_shard = saved;
  } else {
    for (shutdown_phase p : steps) {
      broadcast_phase(p);
      if (p != shutdown_phase::closed) wait_quiet();
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  // No shard runs: no new blocking work can come. A job still running
  // (wait_quiet gave up on it) is waited for; its completion becomes a dead
  // letter below.
  blocking_.stop();
  stopped_.store(true, std::memory_order_release);
  // Whatever reached a closed shard becomes a dead letter here, on this
  // thread, now that no shard thread runs.
  for (int round = 0; round < 1000; ++round) {
    bool work = false;
    for (auto& s : shards_) work |= s->drain_after_close();
    if (!work) break;
  }
  const stats st = counters();
  spdlog::info(
      "engine {} stopped: {} sent, {} delivered, {} dead letters, {} poisoned; {} "
      "failures, {} restarts",
      options_.engine_id, st.sent, st.delivered, st.dead_letters, st.poisoned, st.failures,
      st.restarts);
}

namespace {
void add_counters(stats& st, const shard_counters& c) {
  st.sent += c.sent.load(std::memory_order_relaxed);
  st.delivered += c.delivered.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < st.dead_by_reason.size(); ++i) {
    st.dead_by_reason[i] += c.dead[i].load(std::memory_order_relaxed);
  }
  st.poisoned += c.poisoned.load(std::memory_order_relaxed);
  st.failures += c.failures.load(std::memory_order_relaxed);
  st.restarts += c.restarts.load(std::memory_order_relaxed);
  st.sent_remote += c.remote_out.load(std::memory_order_relaxed);
  st.links += c.links.load(std::memory_order_relaxed);
  st.actors_live += c.live.load(std::memory_order_relaxed);
  st.actors_spawned += c.spawned.load(std::memory_order_relaxed);
}
}  // namespace

stats system_impl::counters() const {
  stats st;
  add_counters(st, outside_counters);
  for (auto& s : shards_) add_counters(st, s->counters());
  for (auto d : st.dead_by_reason) st.dead_letters += d;
  return st;
}

std::vector<stats> system_impl::shard_counters_each() const {
  std::vector<stats> out(shards_.size());
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    add_counters(out[i], shards_[i]->counters());
    for (auto d : out[i].dead_by_reason) out[i].dead_letters += d;
  }
  return out;
}

std::string system_impl::io_description() const { return shards_[0]->io_description(); }

void system_impl::set_dead_letter_handler(const address& handler) {
  for (auto& s : shards_) {
    auto* e = make_envelope(set_dead_letter_handler_msg{handler}, handler,
                            address(options_.engine_id, s->index(), 0, 0));
    e->flags |= flag_control;
    s->post_outside(e);
  }
}

// ---------------------------------------------------------------- entry points

address spawn_actor(shard* from, system_impl* sys, actor_base* a, actor_factory* factory,
                    const address& parent, const supervision_policy* policy,
                    const spawn_options& o) {
  system_impl& s = from ? from->owner() : *sys;
  const std::uint16_t target = s.place(o, from);
  address addr;
  if (from && target == from->index()) {
    addr = from->spawn_local(a, factory, parent, policy, o.mailbox_limit);
  } else {
    shard& t = s.shard_at(target);
    addr = address(s.engine(), target, t.reserve_slot(), 1);
    envelope* e =
        make_envelope(install_actor{a, factory, parent, policy != nullptr, o.mailbox_limit,
                                    policy ? *policy : supervision_policy{}, std::string()},
                      address{}, addr);
    e->flags |= flag_control;
    if (from) {
      from->send(e);
    } else {
      s.outside_send(e);
    }
  }
  // A child on its parent's shard is linked to it by install; one
  // elsewhere is recorded here, on the parent's shard, before it can end.
  if (from && !parent.is_null() && target != from->index()) from->adopt(parent, addr);
  return addr;
}

void outside_send(system_impl& sys, envelope* e) { sys.outside_send(e); }

spdlog::level::level_enum spdlog_level(log_level l) noexcept {
  static constexpr spdlog::level::level_enum levels[] = {spdlog::level::debug, spdlog::level::info,
                                                         spdlog::level::warn, spdlog::level::err};
  return levels[static_cast<int>(l) & 3];
}

void actor_log(shard& s, const address& who, log_level level, std::string text) {
  spdlog::log(spdlog_level(level), "actor {}: {}", who.to_string(), text);
  if (log_forwarder* f = s.owner().log_forward()) f->forward(s, who, level, text);
}
envelope* outside_ask(system_impl& sys, envelope* request, duration timeout) {
  return sys.outside_ask(request, timeout);
}

}  // namespace troupe::internal

namespace troupe {

system::system(system_options options) : system(std::move(options), std::vector<extension_ptr>{}) {}
system::system(system_options options, std::vector<extension_ptr> extensions)
    : impl_(std::make_unique<internal::system_impl>(std::move(options), std::move(extensions))) {}
system::~system() = default;

std::uint64_t system::run_until_idle() { return impl_->run_until_idle(); }
void system::stop() { impl_->stop(); }
std::size_t system::shard_count() const noexcept { return impl_->shard_count(); }
std::uint32_t system::engine_id() const noexcept { return impl_->engine(); }
stats system::counters() const { return impl_->counters(); }
std::vector<stats> system::shard_counters() const { return impl_->shard_counters_each(); }
std::vector<std::uint32_t> system::engines() const { return impl_->known_engines(); }
std::string system::io_description() const { return impl_->io_description(); }
result<address> system::lookup_name(std::string name, duration timeout) {
  return internal::take_reply<address>(internal::outside_ask(
      *impl_, internal::make_name_lookup(nullptr, impl_.get(), address{}, std::move(name)),
      timeout));
}

result<address> system::spawn_type(const std::string& type_name, const nlohmann::json& args,
                                   spawn_options o, const std::string& name) {
  return impl_->spawn_type(type_name, args, o, name);
}

result<module_info> system::load_module(const std::string& path) {
  return impl_->load_module(path);
}
result<done> system::unload_module(const std::string& name, bool stop_actors) {
  return impl_->unload_module(name, stop_actors);
}
std::vector<module_info> system::modules() { return internal::loaded_modules(); }

void system::set_dead_letter_handler(const address& handler) {
  impl_->set_dead_letter_handler(handler);
}

}  // namespace troupe

namespace troupe::internal {

void control_registry::add(const message_type* t, handler h) {
  auto [it, fresh] = handlers_.try_emplace(t, std::move(h));
  if (!fresh) {
    throw std::logic_error("two handlers for the control message " + type_name(t));
  }
}

}  // namespace troupe::internal
