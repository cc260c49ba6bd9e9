// A pool spread over the convention (see troupe/convention_pool.hpp): where
// its messages go, how it samples its workers' mailboxes, when it places,
// moves, drops and stops workers, and the helpers that place them.

#include "troupe/convention_pool.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>

#include "cluster/convention.hpp"
#include "cluster/convention_layer.hpp"
#include "cluster/convention_pool_support.hpp"
#include "core/actor_access.hpp"
#include "core/shard.hpp"
#include "troupe/requirements.hpp"
#include "troupe/wire.hpp"

namespace troupe {

namespace {
std::string ms_text(duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}
}  // namespace

result<done> check_convention_pool_options(const std::string& type,
                                           const convention_pool_options& o) {
  if (type.empty()) {
    return error(errc::misuse,
                 "convention pool: no worker type given (the name it was registered with)");
  }
  const std::string of = "convention pool of '" + type + "': ";
  if (o.max_workers == 0) return error(errc::misuse, of + "max_workers must be at least 1");
  if (o.min_workers == 0) {
    return error(errc::misuse,
                 of + "min_workers must be at least 1 (a pool keeps a worker to send to)");
  }
  if (o.min_workers > o.max_workers) {
    return error(errc::misuse, of + "min_workers (" + std::to_string(o.min_workers) +
                                   ") is more than max_workers (" + std::to_string(o.max_workers) +
                                   ")");
  }
  if (o.grow_at == 0) return error(errc::misuse, of + "grow_at must be at least 1");
  const std::pair<const char*, duration> times[] = {{"idle", o.idle},
                                                    {"sample_every", o.sample_every},
                                                    {"retry_every", o.retry_every},
                                                    {"where.timeout", o.where.timeout}};
  for (const auto& [name, d] : times) {
    if (d <= duration::zero()) {
      return error(errc::misuse, of + name + " must be positive, not " + ms_text(d));
    }
  }
  result<requirements> req = requirements::parse(o.where.requirements);
  if (!req) return error(errc::misuse, of + req.err().text());
  return done{};
}

void to_json(nlohmann::json& j, const convention_pool_stats& s) {
  std::vector<std::string> addrs;
  for (const address& a : s.worker_addresses) addrs.push_back(a.to_string());
  j = {{"type", s.type},
       {"workers", s.workers},
       {"placing", s.placing},
       {"retiring", s.retiring},
       {"peak", s.peak},
       {"workers_per_engine", s.workers_per_engine},
       {"forwarded_per_engine", s.forwarded_per_engine},
       {"worker_addresses", addrs},
       {"forwarded", s.forwarded},
       {"refused", s.refused},
       {"abandoned_asks", s.abandoned_asks},
       {"placed", s.placed},
       {"grown", s.grown},
       {"moved", s.moved},
       {"shrunk", s.shrunk},
       {"dropped", s.dropped},
       {"failed_placements", s.failed_placements},
       {"last_error", s.last_error}};
}

void from_json(const nlohmann::json& j, convention_pool_stats& s) {
  s.type = j.at("type").get<std::string>();
  s.workers = j.at("workers").get<std::uint32_t>();
  s.placing = j.at("placing").get<std::uint32_t>();
  s.retiring = j.at("retiring").get<std::uint32_t>();
  s.peak = j.at("peak").get<std::uint32_t>();
  s.workers_per_engine = j.at("workers_per_engine").get<std::map<std::uint32_t, std::uint32_t>>();
  s.forwarded_per_engine =
      j.at("forwarded_per_engine").get<std::map<std::uint32_t, std::uint64_t>>();
  s.worker_addresses.clear();
  for (const auto& text : j.at("worker_addresses")) {
    std::optional<address> a = address::parse(text.get<std::string>());
    if (!a) throw std::invalid_argument("worker_addresses: not an address");
    s.worker_addresses.push_back(*a);
  }
  s.forwarded = j.at("forwarded").get<std::uint64_t>();
  s.refused = j.at("refused").get<std::uint64_t>();
  s.abandoned_asks = j.at("abandoned_asks").get<std::uint64_t>();
  s.placed = j.at("placed").get<std::uint32_t>();
  s.grown = j.at("grown").get<std::uint32_t>();
  s.moved = j.at("moved").get<std::uint32_t>();
  s.shrunk = j.at("shrunk").get<std::uint32_t>();
  s.dropped = j.at("dropped").get<std::uint32_t>();
  s.failed_placements = j.at("failed_placements").get<std::uint32_t>();
  s.last_error = j.at("last_error").get<std::string>();
}

}  // namespace troupe

namespace troupe::internal {

void to_json(nlohmann::json& j, const abandon_ask& m) {
  j = {{"request", m.request}, {"code", static_cast<int>(m.code)}, {"text", m.text}};
}
void from_json(const nlohmann::json& j, abandon_ask& m) {
  m.request = j.at("request").get<std::uint64_t>();
  const int code = j.at("code").get<int>();
  if (code < 0 || code > static_cast<int>(errc::peer_lost)) {
    throw std::invalid_argument("abandon_ask: no such error code");
  }
  m.code = static_cast<errc>(code);
  m.text = j.at("text").get<std::string>();
}

void register_convention_pool_messages() {
  register_message<mailbox_depth_query>("troupe.mailbox_depth_query");
  register_message<mailbox_depth>("troupe.mailbox_depth");
  register_message<abandon_ask>("troupe.abandon_ask");
  register_message<convention_pool_stats_query>("troupe.convention_pool.stats_query");
  register_message<convention_pool_stats>("troupe.convention_pool.stats");
}

namespace {

using acc = actor_access;

/// Starts a helper's one job.
struct cpool_go {};

/// One job of a pool's, off its message path (which never waits): place
/// a worker through the convention agent, or fetch this engine's own
/// member record. It reports to the pool and ends.
class cpool_helper : public actor<cpool_helper, cpool_go> {
 public:
  /// Places: among `among` in that order, or where the agent picks when
  /// it is empty.
  cpool_helper(address pool, std::uint64_t id, place_request req, std::vector<std::uint32_t> among)
      : pool_(pool), id_(id), req_(std::move(req)), among_(std::move(among)) {}
  /// Fetches this engine's member record.
  explicit cpool_helper(address pool) : pool_(pool) {}

  task<void> on(const cpool_go&) {
    const address agent = convention_agent_of(*this_shard);
    if (id_ == 0) {
      members_query q;
      result<std::vector<member>> r =
          co_await ask<std::vector<member>>(agent, std::move(q), std::chrono::seconds(5));
      cpool_home h;
      if (r && !r.value().empty()) {
        h.ok = true;
        h.me = r.value().front();  // this engine first
      }
      tell(pool_, std::move(h));
      stop();
      co_return;
    }
    const duration timeout = placement_timeout(req_.options);
    cpool_placed p;
    p.id = id_;
    if (among_.empty()) {
      place_request q = req_;
      report(p, co_await ask<address>(agent, std::move(q), timeout));
    } else {
      place_among_request q{req_, among_};
      report(p, co_await ask<address>(agent, std::move(q), timeout));
    }
    tell(pool_, std::move(p));
    stop();
  }

 private:
  static void report(cpool_placed& p, result<address> r) {
    if (r) {
      p.worker = r.value();
    } else {
      p.code = r.err().code();
      p.error = r.err().text();
    }
  }

  address pool_;
  std::uint64_t id_ = 0;
  place_request req_;
  std::vector<std::uint32_t> among_;
};

/// An ask given to a worker, perhaps not answered yet.
struct given_ask {
  address asker;
  std::uint64_t request = 0;
  std::uint64_t index = 0;  ///< the worker's `given` once it was given
};

/// Asks remembered per worker at most (the oldest are dropped beyond it;
/// samples keep far fewer: only those that may still be waiting).
constexpr std::size_t max_remembered_asks = 1 << 16;

struct worker_entry {
  address addr;
  std::uint64_t given = 0;
  std::uint64_t given_at_query = 0;   ///< when the query in flight was sent
  std::uint64_t given_at_sample = 0;  ///< when the query last answered was sent
  std::uint64_t given_at_tick = 0;
  std::uint32_t depth = 0;  ///< waiting in its mailbox, as last sampled
  bool sampled = false;
  std::uint64_t seq_sent = 0;
  std::uint64_t seq_seen = 0;
  time_point queried{};
  time_point busy_at{};
  std::deque<given_ask> asks;

  /// Waiting for it now, as far as the pool can tell: the last sample and
  /// what it was given since that query left.
  std::uint64_t estimate() const noexcept { return depth + (given - given_at_sample); }
};

struct member_entry {
  member info;
  bool fits = false;
  time_point backoff_until{};
  unsigned failures = 0;
};

enum class why_placed : std::uint8_t { minimum, growth, move };
const char* to_string(why_placed w) {
  switch (w) {
    case why_placed::minimum: return "to keep min_workers";
    case why_placed::growth: return "for load";
    case why_placed::move: return "onto a member that had none";
  }
  return "?";
}

struct placement {
  std::uint64_t id = 0;
  std::uint32_t target = 0;  ///< where it is expected to land (0: unknown)
  why_placed why = why_placed::minimum;
};

time_point now() { return this_shard->now(); }

}  // namespace

struct convention_pool_core::state {
  std::string type;
  nlohmann::json args;
  convention_pool_options o;
  std::vector<address> initial;
  requirements req;
  address agent;
  std::uint32_t home = 0;
  std::vector<worker_entry> workers;
  std::vector<worker_entry> retiring;  ///< told to exit, finishing what they were given
  std::map<std::uint32_t, member_entry> members;
  std::vector<placement> in_flight;
  std::uint64_t next_id = 1;
  std::uint64_t next_seq = 0;
  std::size_t cursor = 0;
  bool ticking = false;
  bool loaded = false;  ///< every worker had grow_at waiting at its last sample
  time_point retry_at{};
  convention_pool_stats st;
  std::map<std::uint32_t, std::uint64_t> forwarded_gone;  ///< by workers no longer listed
  std::string logged_error;

  std::string name(const actor_base& self) const {
    return "convention pool " + self.self().to_string() + " ('" + type + "')";
  }

  std::uint32_t count_on(std::uint32_t engine) const {
    std::uint32_t n = 0;
    for (const worker_entry& w : workers) n += w.addr.engine() == engine;
    for (const placement& p : in_flight) n += p.target == engine;
    return n;
  }

  bool fits(const member& m) const {
    if (!req.matches(m.capabilities)) return false;
    // The type's own check, when the type is known here (else the agent
    // and the member decide).
    const std::optional<actor_type> t = actor_type_named(type);
    return !(t && t->fits && !t->fits(m.capabilities, args));
  }

  /// The members a new worker may go to, best first: one with none of
  /// this pool's workers, then the fewest per shard, the shortest
  /// mailboxes, the fewest actors per shard. Members that refused a
  /// placement lately come last.
  std::vector<std::uint32_t> rank(time_point t) const {
    struct candidate {
      std::uint32_t engine;
      bool backing_off;
      bool none;
      double per_shard;
      double depth;
      double load;
    };
    std::vector<candidate> c;
    for (const auto& [engine, m] : members) {
      if (!m.fits) continue;
      const std::uint32_t n = count_on(engine);
      if (o.max_per_member != 0 && n >= o.max_per_member) continue;
      double depth = 0;
      std::uint32_t here = 0;
      for (const worker_entry& w : workers) {
        if (w.addr.engine() == engine) {
          depth += w.depth;
          ++here;
        }
      }
      const double shards = std::max<std::uint32_t>(1, m.info.shards);
      c.push_back({engine, t < m.backoff_until, n == 0, n / shards, here ? depth / here : 0.0,
                   static_cast<double>(m.info.actors) / shards});
    }
    std::stable_sort(c.begin(), c.end(), [](const candidate& a, const candidate& b) {
      if (a.backing_off != b.backing_off) return b.backing_off;
      if (a.none != b.none) return a.none;
      if (a.per_shard != b.per_shard) return a.per_shard < b.per_shard;
      if (a.depth != b.depth) return a.depth < b.depth;
      if (a.load != b.load) return a.load < b.load;
      return a.engine < b.engine;
    });
    std::vector<std::uint32_t> out;
    out.reserve(c.size());
    for (const candidate& x : c) out.push_back(x.engine);
    return out;
  }

  void update_loaded() {
    loaded = !workers.empty() && std::all_of(workers.begin(), workers.end(), [&](const auto& w) {
      return w.sampled && w.depth >= o.grow_at;
    });
  }

  bool needs_tick() const {
    if (workers.size() != o.min_workers || !in_flight.empty() || !retiring.empty()) return true;
    return std::any_of(workers.begin(), workers.end(), [](const worker_entry& w) {
      return w.depth > 0 || w.seq_sent != w.seq_seen || w.given != w.given_at_sample;
    });
  }

  /// Ticks only while there is something to watch: an idle pool at its
  /// minimum costs nothing.
  void arm(actor_base& self) {
    if (ticking || !needs_tick()) return;
    ticking = true;
    self.wakeup_after(o.sample_every, cpool_tick{});
  }

  void place(actor_base& self, why_placed why, std::vector<std::uint32_t> among) {
    const std::uint64_t id = next_id++;
    in_flight.push_back({id, among.empty() ? 0 : among.front(), why});
    place_request req{type, args, o.where};
    const address helper =
        self.spawn<cpool_helper>(spawn_options{.shard = static_cast<int>(self.shard_index())},
                                 self.self(), id, std::move(req), std::move(among));
    self.tell(helper, cpool_go{});
  }

  /// The placement decisions: keep min_workers, grow under load, move a
  /// worker onto a member that has none when at max_workers.
  void evaluate(actor_base& self) {
    const time_point t = now();
    const auto non_moves = static_cast<std::size_t>(
        std::count_if(in_flight.begin(), in_flight.end(),
                      [](const placement& p) { return p.why != why_placed::move; }));
    if (workers.size() + non_moves < o.min_workers) {
      if (t < retry_at) return;
      for (std::size_t n = o.min_workers - workers.size() - non_moves; n > 0; --n) {
        place(self, why_placed::minimum, rank(t));  // nothing known to fit: the agent picks
      }
      return;
    }
    if (!loaded || t < retry_at) return;
    const std::size_t total = workers.size() + in_flight.size();
    if (non_moves == 0 && total < o.max_workers) {
      std::vector<std::uint32_t> among = rank(t);
      if (!among.empty()) {
        place(self, why_placed::growth, std::move(among));
        return;
      }
    }
    if (total < o.max_workers || in_flight.size() != non_moves) return;
    // At the maximum: a member that fits and has none takes one from the
    // member with the most (a new member is used at once).
    std::map<std::uint32_t, std::uint32_t> per;
    for (const worker_entry& w : workers) ++per[w.addr.engine()];
    const bool donor =
        std::any_of(per.begin(), per.end(), [](const auto& e) { return e.second > 1; });
    if (!donor) return;
    for (const auto& [engine, m] : members) {
      if (m.fits && !per.contains(engine) && t >= m.backoff_until) {
        place(self, why_placed::move, {engine});
        return;
      }
    }
  }

  /// The worker to stop first: on the member with the most, the one with
  /// the least waiting; `skip_engine` keeps its member's workers.
  std::optional<std::size_t> pick_retiree(std::uint32_t skip_engine, bool idle_only,
                                          time_point t) const {
    std::map<std::uint32_t, std::uint32_t> per;
    for (const worker_entry& w : workers) ++per[w.addr.engine()];
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < workers.size(); ++i) {
      const worker_entry& w = workers[i];
      if (w.addr.engine() == skip_engine) continue;
      if (idle_only && t - w.busy_at < o.idle) continue;
      if (!best) {
        best = i;
        continue;
      }
      const worker_entry& b = workers[*best];
      const std::uint32_t pw = per[w.addr.engine()], pb = per[b.addr.engine()];
      if (pw > pb || (pw == pb && w.estimate() < b.estimate())) best = i;
    }
    return best;
  }

  void retire(actor_base& self, std::size_t i) {
    worker_entry w = std::move(workers[i]);
    workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(i));
    self.tell(w.addr, exit_request{});  // behind what it was given
    retiring.push_back(std::move(w));
  }

  /// Ends, for a worker lost with its member, the asks it may not have
  /// answered: errc::peer_lost, by the asker's shard for those that still
  /// wait there (abandon_ask). An asker outside the engine's shards gets
  /// the failure as a reply from the pool, which is a late reply (counted
  /// and discarded) if the worker had answered.
  void fail_asks(actor_base& self, worker_entry& w, const std::string& why) {
    const std::string text = "worker " + w.addr.to_string() + " of " + name(self) +
                             " was lost with engine " + std::to_string(w.addr.engine()) + ": " +
                             why;
    for (const given_ask& a : w.asks) {
      envelope* e;
      if (a.asker.shard() == address::outside_shard) {
        e = make_envelope(ask_failure{errc::peer_lost, text}, self.self(), a.asker);
        e->request = a.request;
        e->flags |= flag_reply;
      } else {
        e = make_envelope(abandon_ask{a.request, errc::peer_lost, text}, self.self(), a.asker);
        e->flags |= flag_control;
      }
      send(*this_shard, e);
      ++st.abandoned_asks;
    }
    w.asks.clear();
  }

  void forget(worker_entry& w) { forwarded_gone[w.addr.engine()] += w.given; }

  /// Drops the workers (and retiring ones) on `engine`: it left or was lost.
  void drop_engine(actor_base& self, std::uint32_t engine, bool lost, const std::string& why) {
    std::uint32_t n = 0;
    for (std::vector<worker_entry>* list : {&workers, &retiring}) {
      for (std::size_t i = list->size(); i-- > 0;) {
        worker_entry& w = (*list)[i];
        if (w.addr.engine() != engine) continue;
        if (lost) fail_asks(self, w, why);
        if (list == &workers) {
          ++n;
          ++st.dropped;
        }
        forget(w);
        list->erase(list->begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if (n > 0) {
      spdlog::info("{}: dropped {} worker(s) on engine {}, which {} ({})", name(self), n, engine,
                   lost ? "was lost" : "left", why);
    }
  }

  worker_entry* find(const address& a) {
    for (std::vector<worker_entry>* list : {&workers, &retiring}) {
      for (worker_entry& w : *list) {
        if (w.addr == a) return &w;
      }
    }
    return nullptr;
  }

  void adopt(actor_base& self, const address& a) {
    worker_entry w;
    w.addr = a;
    w.busy_at = now();
    workers.push_back(std::move(w));
    self.watch(a);  // at once if it has already ended
  }

  void count_peak() { st.peak = std::max(st.peak, static_cast<std::uint32_t>(workers.size())); }
};

convention_pool_core::convention_pool_core(std::string type, nlohmann::json args,
                                           convention_pool_options o, std::vector<address> workers)
    : s_(std::make_unique<state>()) {
  s_->type = std::move(type);
  s_->args = std::move(args);
  s_->o = std::move(o);
  s_->initial = std::move(workers);
  s_->st.type = s_->type;
}
convention_pool_core::convention_pool_core(convention_pool_core&&) noexcept = default;
convention_pool_core::~convention_pool_core() = default;

void convention_pool_core::start(actor_base& self) {
  state& s = *s_;
  if (result<done> ok = check_convention_pool_options(s.type, s.o); !ok) {
    spdlog::error("{} (actor {})", ok.err().text(), self.self().to_string());
    self.fail_with(ok.err().text());
    return;
  }
  s.agent = convention_agent_of(*this_shard);
  if (s.agent.is_null()) {
    const std::string why = "convention pool of '" + s.type +
                            "': this engine is in no convention (start it with a convention "
                            "leader to join)";
    spdlog::error("{}", why);
    self.fail_with(why);
    return;
  }
  s.req = requirements::parse(s.o.where.requirements).value();  // checked above
  s.home = self.self().engine();
  for (const address& a : s.initial) {
    s.adopt(self, a);
    ++s.st.placed;
  }
  s.initial.clear();
  s.count_peak();
  self.tell(s.agent, convention_subscription{self.self(), true});
  const address helper = self.spawn<cpool_helper>(
      spawn_options{.shard = static_cast<int>(self.shard_index())}, self.self());
  self.tell(helper, cpool_go{});
  s.evaluate(self);
  s.arm(self);
}

address convention_pool_core::route(actor_base& self) {
  state& s = *s_;
  const std::size_t n = s.workers.size();
  if (n == 0) return {};
  // The fewest waiting; among equals, the next in turn.
  std::size_t best = s.cursor % n;
  std::uint64_t least = s.workers[best].estimate();
  for (std::size_t k = 1; k < n && least > 0; ++k) {
    const std::size_t i = (s.cursor + k) % n;
    const std::uint64_t e = s.workers[i].estimate();
    if (e < least) {
      best = i;
      least = e;
    }
  }
  s.cursor = best + 1;
  worker_entry& w = s.workers[best];
  ++w.given;
  ++s.st.forwarded;
  const envelope* cur = acc::current(self);
  if (cur && cur->request != 0 && !cur->sender.is_null()) {
    w.asks.push_back({cur->sender, cur->request, w.given});
    if (w.asks.size() > max_remembered_asks) w.asks.pop_front();
  }
  s.arm(self);
  return w.addr;
}

result<done> convention_pool_core::refuse(actor_base& self) {
  state& s = *s_;
  ++s.st.refused;
  const envelope* cur = acc::current(self);
  if (cur && cur->request != 0 && !cur->sender.is_null()) {
    std::string why = s.name(self) + " has no worker";
    why += s.in_flight.empty() ? " now" : " yet (placing one)";
    if (!s.st.last_error.empty()) why += "; last placement failed: " + s.st.last_error;
    return error(errc::dead_actor, std::move(why));
  }
  self.forward(address{});  // a tell: a dead letter, counted and logged
  return done{};
}

void convention_pool_core::on_update(actor_base& self, const convention_update& u) {
  state& s = *s_;
  const std::uint32_t engine = u.who.engine;
  if (engine == s.home) return;
  switch (u.what) {
    case convention_update::change::joined:
    case convention_update::change::capabilities: {
      member_entry& m = s.members[engine];
      m.info = u.who;
      m.fits = s.fits(u.who);
      if (u.what == convention_update::change::joined) {
        m.backoff_until = {};
        m.failures = 0;
      }
      break;
    }
    case convention_update::change::left:
    case convention_update::change::lost:
      s.members.erase(engine);
      s.drop_engine(self, engine, u.what == convention_update::change::lost, u.why);
      s.update_loaded();
      break;
  }
  s.evaluate(self);
  s.arm(self);
}

void convention_pool_core::on_terminated(actor_base& self, const terminated& t) {
  state& s = *s_;
  const bool lost = t.reason.starts_with("engine lost");
  for (std::vector<worker_entry>* list : {&s.workers, &s.retiring}) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      worker_entry& w = (*list)[i];
      if (w.addr != t.who) continue;
      if (lost) s.fail_asks(self, w, t.reason);
      if (list == &s.workers) {
        ++s.st.dropped;
        spdlog::info("{}: worker {} ended ({}); dropped", s.name(self), t.who.to_string(),
                     t.reason);
      }
      s.forget(w);
      list->erase(list->begin() + static_cast<std::ptrdiff_t>(i));
      s.update_loaded();
      s.evaluate(self);
      s.arm(self);
      return;
    }
  }
}

void convention_pool_core::on_depth(actor_base& self, const mailbox_depth& d) {
  state& s = *s_;
  worker_entry* w = s.find(d.who);
  if (!w || d.seq != w->seq_sent || d.seq == w->seq_seen) return;  // gone, or an old answer
  w->seq_seen = d.seq;
  if (!d.alive) return;  // not installed yet, or ended (its watch tells)
  w->depth = d.queued;
  w->sampled = true;
  w->given_at_sample = w->given_at_query;
  // Those given before the query, beyond what waited then and the one it
  // ran, have been handled: their asks are answered.
  const std::uint64_t done_upto =
      w->given_at_query > std::uint64_t{d.queued} + 1 ? w->given_at_query - d.queued - 1 : 0;
  while (!w->asks.empty() && w->asks.front().index <= done_upto) w->asks.pop_front();
  s.arm(self);
}

void convention_pool_core::on_tick(actor_base& self) {
  state& s = *s_;
  s.ticking = false;
  const time_point t = now();
  s.update_loaded();
  for (worker_entry& w : s.workers) {
    if (!w.sampled || w.depth > 0 || w.given != w.given_at_tick) w.busy_at = t;
    w.given_at_tick = w.given;
  }
  // Idle ones above the minimum stop, from the most crowded member first.
  while (s.workers.size() > s.o.min_workers) {
    std::optional<std::size_t> i = s.pick_retiree(0, true, t);
    if (!i) break;
    ++s.st.shrunk;
    spdlog::debug("{}: worker {} idle for {}; stopping it", s.name(self),
                  s.workers[*i].addr.to_string(), ms_text(s.o.idle));
    s.retire(self, *i);
  }
  s.evaluate(self);
  // Samples: one query in flight per worker (sent again if its answer is
  // long overdue).
  for (std::vector<worker_entry>* list : {&s.workers, &s.retiring}) {
    for (worker_entry& w : *list) {
      if (w.seq_sent != w.seq_seen && t - w.queried < 4 * s.o.sample_every) continue;
      w.seq_sent = ++s.next_seq;
      w.given_at_query = w.given;
      w.queried = t;
      envelope* e = make_envelope(mailbox_depth_query{w.seq_sent}, self.self(), w.addr);
      e->flags |= flag_control;
      send(*this_shard, e);
    }
  }
  s.arm(self);
}

void convention_pool_core::on_placed(actor_base& self, const cpool_placed& p) {
  state& s = *s_;
  auto it = std::find_if(s.in_flight.begin(), s.in_flight.end(),
                         [&](const placement& x) { return x.id == p.id; });
  if (it == s.in_flight.end()) return;
  const placement done_one = *it;
  s.in_flight.erase(it);
  const time_point t = now();
  if (!p.error.empty()) {
    ++s.st.failed_placements;
    s.st.last_error = p.error;
    if (done_one.why == why_placed::move) {
      // The member may not be linked from here yet: try it again soon.
      if (auto m = s.members.find(done_one.target); m != s.members.end()) {
        const unsigned shift = std::min(m->second.failures++, 5u);
        m->second.backoff_until = t + std::min(s.o.retry_every, s.o.sample_every * (1u << shift));
      }
      spdlog::debug("{}: moving a worker onto engine {} failed: {}", s.name(self), done_one.target,
                    p.error);
    } else {
      s.retry_at = t + s.o.retry_every;
      if (p.error != s.logged_error) {
        spdlog::warn("{}: placing a worker {} failed: {}; trying again in {}", s.name(self),
                     to_string(done_one.why), p.error, ms_text(s.o.retry_every));
        s.logged_error = p.error;
      }
    }
  } else {
    s.logged_error.clear();
    const address a = p.worker;
    s.adopt(self, a);
    ++s.st.placed;
    if (done_one.why == why_placed::growth) ++s.st.grown;
    if (auto m = s.members.find(a.engine()); m != s.members.end()) m->second.failures = 0;
    std::string retired;
    if (done_one.why == why_placed::move) ++s.st.moved;
    while (s.workers.size() > s.o.max_workers) {
      std::optional<std::size_t> i = s.pick_retiree(a.engine(), false, t);
      if (!i) break;
      retired += (retired.empty() ? "; stopping " : ", ") + s.workers[*i].addr.to_string();
      s.retire(self, *i);
    }
    s.count_peak();
    spdlog::info("{}: worker {} placed on engine {} {}{} ({} now)", s.name(self), a.to_string(),
                 a.engine(), to_string(done_one.why), retired, s.workers.size());
  }
  s.update_loaded();
  s.evaluate(self);
  s.arm(self);
}

void convention_pool_core::on_home(actor_base& self, const cpool_home& h) {
  state& s = *s_;
  if (!h.ok) return;
  member_entry& m = s.members[s.home];
  m.info = h.me;
  m.fits = s.fits(h.me);
  s.evaluate(self);
  s.arm(self);
}

void convention_pool_core::on_exit(actor_base& self) {
  state& s = *s_;
  for (std::vector<worker_entry>* list : {&s.workers, &s.retiring}) {
    for (worker_entry& w : *list) self.tell(w.addr, exit_request{});
    list->clear();
  }
  // The agent drops the subscription when this pool ends (it watches it).
}

convention_pool_stats convention_pool_core::stats() const {
  const state& s = *s_;
  convention_pool_stats st = s.st;
  st.workers = static_cast<std::uint32_t>(s.workers.size());
  st.placing = static_cast<std::uint32_t>(s.in_flight.size());
  st.retiring = static_cast<std::uint32_t>(s.retiring.size());
  st.forwarded_per_engine = s.forwarded_gone;
  for (const std::vector<worker_entry>* list : {&s.workers, &s.retiring}) {
    for (const worker_entry& w : *list) st.forwarded_per_engine[w.addr.engine()] += w.given;
  }
  for (const worker_entry& w : s.workers) {
    ++st.workers_per_engine[w.addr.engine()];
    st.worker_addresses.push_back(w.addr);
  }
  return st;
}

}  // namespace troupe::internal
