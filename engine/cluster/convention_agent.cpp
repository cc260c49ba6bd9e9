// The convention's agent (see convention.hpp): membership with a built-in
// leader, convention updates for subscribers, placement by capabilities and
// load, and modules sent to the members that lack them. A placement is a
// placer's (placer.hpp); a module another member sent, a
// module_installer's (module_installer.hpp).

#include "cluster/convention.hpp"
#include "cluster/convention_layer.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "cluster/convention_pool_support.hpp"
#include "cluster/module_installer.hpp"
#include "cluster/placer.hpp"
#include "core/shard.hpp"
#include "core/system_impl.hpp"
#include "remote/link.hpp"
#include "troupe/requirements.hpp"

namespace troupe {

const char* to_string(convention_update::change c) noexcept {
  switch (c) {
    case convention_update::change::joined: return "joined";
    case convention_update::change::left: return "left";
    case convention_update::change::lost: return "lost";
    case convention_update::change::capabilities: return "capabilities";
  }
  return "?";
}

}  // namespace troupe

namespace troupe::internal {

namespace {

struct load_tick {};

class convention_agent
    : public actor<convention_agent, link_changed, conv_hello, conv_view, conv_caps, conv_load,
                   module_offer, place_request, place_among_request, members_query,
                   convention_subscription, capabilities_update, terminated, load_tick,
                   convention_join, log_line> {
 public:
  explicit convention_agent(agent_options o) : opts_(std::move(o)) {}

  void on_start() {
    sys_ = &this_shard->owner();
    me_.info.engine = sys_->engine();
    me_.info.link_address = opts_.advertise;
    me_.info.capabilities = opts_.capabilities;
    me_.info.leader = opts_.is_leader;
    me_.info.shards = static_cast<std::uint32_t>(sys_->shard_count());
    me_.agent = self();
    if (opts_.is_leader) leader_ = me_.info.engine;
    wakeup_after(opts_.load_every, load_tick{});
    if (opts_.join_at_start) on(convention_join{});
  }

  void on(const convention_join&) {
    if (joined_) return;
    joined_ = true;
    // From here the links tell this agent of every engine linked, and it
    // introduces itself to each.
    if (link_table* links = link_table_of(*this_shard)) links->set_agent(self());
    if (opts_.in_etcd) {
      spdlog::info("engine {}: joining the convention kept in etcd", me_.info.engine);
      refresh_own_load();
      convention_layer::of(*sys_)->join_membership(
          me_);  // its record goes in now, not when the engine started
    } else {
      spdlog::info("engine {}: {} the convention at {}", me_.info.engine,
                   opts_.is_leader ? "leading" : "joining", opts_.leader);
    }
  }

  // --- links ---

  void on(const link_changed& m) {
    if (m.up) {
      peer& p = peers_[m.engine];
      p.linked = true;
      p.link_due = {};
      end_placement_dial(p.rec.info.link_address);
      if (!m.dialed.empty() && m.dialed == opts_.leader && !opts_.is_leader) leader_ = m.engine;
      // Every engine linked to this one hears who it is: the leader
      // registers it, a member learns of it even while the leader is away
      // or has not sent a view since.
      send_hello(m.engine);
      return;
    }
    auto it = peers_.find(m.engine);
    if (it == peers_.end()) return;
    it->second.linked = false;
    it->second.lost_here = true;
    if (!it->second.known) {
      if (!it->second.listed) peers_.erase(it);
      return;
    }
    const bool left = m.why.starts_with("the peer said goodbye");
    forget(it, left, m.why);
    if (opts_.is_leader) {
      gone_.push_back({m.engine, left, m.why});
      ++epoch_;
      broadcast_view();
    }
  }

  // --- membership ---

  void on(const conv_hello& m) {
    const member_record& r = m.me;
    if (r.info.engine == me_.info.engine) return;
    peer& p = peers_[r.info.engine];
    p.linked = true;  // it came over a link
    p.lost_here = false;
    if (r.info.leader) leader_ = r.info.engine;
    // An engine that introduces itself before this one did (its own hello
    // may have come before this engine joined) hears who this one is.
    if (!p.known && joined_) send_hello(r.info.engine);
    learn(p, r);
    if (opts_.is_leader) {
      ++epoch_;
      broadcast_view();
    }
  }

  void on(const conv_view& v) {
    if (opts_.is_leader) return;
    std::set<std::uint32_t> listed;
    for (const member_record& r : v.members) {
      if (r.info.leader) leader_ = r.info.engine;
      if (r.info.engine == me_.info.engine) continue;
      listed.insert(r.info.engine);
    }
    for (auto& [engine, p] : peers_) p.listed = listed.contains(engine);
    for (const member_record& r : v.members) {
      if (r.info.engine == me_.info.engine) continue;
      peer& p = peers_[r.info.engine];
      p.listed = true;
      // One this engine lost its link to is back when that link is (its
      // hello), not because the leader still lists it.
      if (!p.lost_here || p.linked) learn(p, r);
    }
    for (const auto& g : v.gone) {
      auto it = peers_.find(g.engine);
      if (it != peers_.end() && it->second.known && !listed.contains(g.engine)) {
        forget(it, g.left, g.why);
      }
    }
    // Absent from the view and not linked here: it is gone as far as this
    // engine can tell. Linked but absent (a leader that came back and has
    // not heard from it yet): kept.
    for (auto it = peers_.begin(); it != peers_.end();) {
      auto next = std::next(it);
      if (!it->second.listed && !it->second.linked) {
        if (it->second.known) {
          forget(it, false, "no longer in the convention");
        } else {
          peers_.erase(it);
        }
      }
      it = next;
    }
    redial();
  }

  void on(const conv_caps& m) {
    auto it = peers_.find(m.engine);
    if (it == peers_.end() || !it->second.known) return;
    if (it->second.rec.info.capabilities == m.capabilities) return;
    it->second.rec.info.capabilities = m.capabilities;
    emit(convention_update::change::capabilities, it->second.rec.info, {});
    if (opts_.is_leader) {
      ++epoch_;
      broadcast_view();
    }
  }

  void on(const conv_load& m) {
    auto it = peers_.find(m.engine);
    if (it == peers_.end()) return;
    it->second.rec.info.actors = m.actors;
    it->second.rec.info.shards = std::max<std::uint32_t>(1, m.shards);
    it->second.placed = 0;
  }

  void on(const load_tick&) {
    refresh_own_load();
    placed_here_ = 0;
    const time_point now = std::chrono::steady_clock::now();
    for (auto it = placement_dials_.begin(); it != placement_dials_.end();) {
      const auto next = std::next(it);
      if (it->second <= now) end_placement_dial(it->first);  // the placement waits no longer
      it = next;
    }
    for (const auto& [engine, p] : peers_) {
      if (p.known && p.linked && !p.rec.agent.is_null()) {
        tell(p.rec.agent, conv_load{me_.info.engine, me_.info.actors, me_.info.shards});
      }
    }
    wakeup_after(opts_.load_every, load_tick{});
  }

  // --- for this engine's users ---

  std::vector<member> on(const members_query&) {
    refresh_own_load();
    std::vector<member> out{me_.info};
    for (const auto& [engine, p] : peers_) {
      if (p.known) out.push_back(p.rec.info);
    }
    return out;
  }

  void on(const convention_subscription& s) {
    std::erase(subscribers_, s.who);
    if (!s.on) return;
    subscribers_.push_back(s.who);
    watch(s.who);
    for (const auto& [engine, p] : peers_) {
      if (p.known)
        tell(s.who, convention_update{convention_update::change::joined, p.rec.info, {}});
    }
  }

  void on(const terminated& t) { std::erase(subscribers_, t.who); }

  result<done> on(const capabilities_update& m) {
    if (!m.capabilities.is_object()) {
      return error(errc::misuse,
                   "capabilities must be a JSON object, got " + m.capabilities.dump());
    }
    me_.info.capabilities = m.capabilities;
    if (opts_.in_etcd) convention_layer::of(*sys_)->publish_member(me_);
    if (opts_.is_leader) {
      ++epoch_;
      broadcast_view();
    } else if (auto it = peers_.find(leader_);
               it != peers_.end() && it->second.linked && !it->second.rec.agent.is_null()) {
      tell(it->second.rec.agent, conv_caps{me_.info.engine, me_.info.capabilities});
    }  // else the next hello carries them
    for (auto& [engine, p] : peers_) {
      // Members learn it from the leader's view; the leader from this.
      if (p.known && p.linked && !p.rec.agent.is_null() && engine != leader_) {
        tell(p.rec.agent, conv_caps{me_.info.engine, me_.info.capabilities});
      }
    }
    return done{};
  }

  result<address> on(const place_request& r) { return place(r, nullptr); }
  /// A convention pool's: only on `engines`, in its order.
  result<address> on(const place_among_request& r) { return place(r.request, &r.engines); }

  result<address> place(const place_request& r, const std::vector<std::uint32_t>* among) {
    auto req = requirements::parse(r.options.requirements);
    if (!req) return req.err();
    const std::optional<actor_type> type = actor_type_named(r.type);
    auto fits = [&](const member& m, std::string& why) {
      if (!req->matches(m.capabilities)) {
        why = req->why_not(m.capabilities);
        return false;
      }
      if (type && type->fits && !type->fits(m.capabilities, r.args)) {
        why = "the type's capability_check refuses it";
        return false;
      }
      return true;
    };
    refresh_own_load();
    struct option {
      candidate c;
      double score;
      bool local;
      bool linked;
    };
    std::vector<option> options;
    std::string refusals;
    auto consider = [&](const member& m, const address& agent, std::uint64_t placed, bool linked) {
      std::string why;
      if (fits(m, why)) {
        const double score = static_cast<double>(m.actors + placed) / std::max(1u, m.shards);
        options.push_back({{m.engine, agent}, score, m.engine == me_.info.engine, linked});
      } else {
        refusals +=
            (refusals.empty() ? "" : "; ") + ("engine " + std::to_string(m.engine) + ": " + why);
      }
    };
    auto rank = [&](std::uint32_t engine) -> std::size_t {
      if (!among) return 0;
      return static_cast<std::size_t>(std::find(among->begin(), among->end(), engine) -
                                      among->begin());
    };
    if (!among || rank(me_.info.engine) < among->size()) {
      consider(me_.info, address{}, placed_here_, true);
    }
    const time_point now = std::chrono::steady_clock::now();
    for (const auto& [engine, p] : peers_) {
      if (among && rank(engine) == among->size()) continue;
      if (!p.known) {
        if (among) {
          refusals += (refusals.empty() ? "" : "; ") +
                      ("engine " + std::to_string(engine) + ": not a member yet");
        }
        continue;
      }
      std::string why;
      if (!p.linked && p.link_due != time_point{} && p.link_due <= now && fits(p.rec.info, why)) {
        // A placement waited for its link already, in vain: not again
        // until the link is up.
        refusals += (refusals.empty() ? "" : "; ") + no_link(engine, opts_.link_wait);
        continue;
      }
      consider(p.rec.info, p.rec.agent, p.placed, p.linked);
    }
    if (options.empty()) {
      return error(errc::not_found, "no member of the convention fits '" + r.type +
                                        "' (requirements " + r.options.requirements.dump() +
                                        "): " + refusals);
    }
    std::stable_sort(options.begin(), options.end(), [&](const option& a, const option& b) {
      if (among) return rank(a.c.engine) < rank(b.c.engine);
      if (r.options.prefer_local && a.local != b.local) return a.local;
      if (a.score != b.score) return a.score < b.score;
      return a.c.engine < b.c.engine;
    });
    // Counted until that engine next reports its load, so that a burst of
    // placements spreads instead of piling onto the last report's minimum.
    if (options.front().local) {
      ++placed_here_;
    } else {
      ++peers_[options.front().c.engine].placed;
    }
    std::vector<candidate> order;
    for (option& o : options) {
      // A member known from the view whose link is still coming up: the
      // placer waits for it (bounded), and the links are asked for it.
      if (!o.linked) o.c.link_due = want_link(peers_[o.c.engine], now);
      order.push_back(o.c);
    }
    forward(spawn<placer>(spawn_options{.shard = static_cast<std::int32_t>(shard_index())},
                          std::move(order), me_.info.engine, opts_.link_wait));
    return error(errc::misuse, "forwarded");  // not a reply: the placer answers
  }

  void on(const log_line& m) {
    if (opts_.is_leader) {
      if (m.engine == me_.info.engine) return;  // logged where it was said
      spdlog::log(spdlog_level(m.level), "engine {} actor {}: {}", m.engine, m.actor.to_string(),
                  m.text);
      return;
    }
    if (!opts_.forward_logs) return;
    auto it = peers_.find(leader_);
    if (it != peers_.end() && it->second.linked && !it->second.rec.agent.is_null()) {
      tell(it->second.rec.agent, m);  // else it stays in this engine's log only
    }
  }

  void on(const module_offer&) {
    forward(spawn<module_installer>(
        spawn_options{.shard = static_cast<std::int32_t>(shard_index())}, opts_.module_cache));
  }

 private:
  struct peer {
    member_record rec;
    bool known = false;      ///< a member (from the leader's view, or its hello)
    bool linked = false;     ///< a link to it is up
    bool listed = false;     ///< in the leader's last view: dialled while it is
    bool lost_here = false;  ///< its link to this engine died; known again on its hello
    std::uint64_t placed = 0;
    /// Set when a placement first waits for its link; reset when the link
    /// is up or it joins again.
    time_point link_due{};
  };
  using peer_map = std::map<std::uint32_t, peer>;

  void send_hello(std::uint32_t to) {
    refresh_own_load();
    envelope* e = make_envelope(conv_hello{me_}, self(), address(to, 0, 0, 0));
    e->flags |= flag_control;
    this_shard->send(e);
  }

  /// `p` is (still) a member, as `r` describes it.
  void learn(peer& p, const member_record& r) {
    const bool fresh = !p.known;
    const bool caps_changed = p.known && p.rec.info.capabilities != r.info.capabilities;
    const std::uint64_t actors = p.rec.info.actors;
    p.rec = r;
    if (!fresh) p.rec.info.actors = std::max(actors, r.info.actors);
    if (fresh) p.link_due = {};
    p.known = true;
    if (fresh) {
      spdlog::info("engine {}: engine {} ({}) joined the convention, capabilities {}",
                   me_.info.engine, r.info.engine, r.info.link_address, r.info.capabilities.dump());
      emit(convention_update::change::joined, r.info, {});
    } else if (caps_changed) {
      emit(convention_update::change::capabilities, r.info, {});
    }
  }

  void forget(peer_map::iterator it, bool left, const std::string& why) {
    const member info = it->second.rec.info;
    if (it->second.linked || it->second.listed) {
      // The link stays, or the leader still lists it: it may be back.
      it->second.known = false;
    } else {
      peers_.erase(it);
    }
    spdlog::info("engine {}: engine {} {} the convention: {}", me_.info.engine, info.engine,
                 left ? "left" : "was lost from", why);
    emit(left ? convention_update::change::left : convention_update::change::lost, info, why);
    if (!opts_.is_leader) redial();
  }

  /// Members link to each other: the higher engine id dials the lower.
  void redial() {
    link_table* links = link_table_of(*this_shard);
    if (!links) return;
    std::set<std::string> want;
    for (const auto& [engine, p] : peers_) {
      if ((p.known || p.listed) && !p.rec.info.leader && engine < me_.info.engine &&
          !p.rec.info.link_address.empty() && p.rec.info.link_address != opts_.leader) {
        want.insert(p.rec.info.link_address);
      }
    }
    for (const std::string& a : dialed_) {
      if (!want.contains(a) && !placement_dials_.contains(a)) links->undial(a);
    }
    for (const std::string& a : want) links->dial(a);
    dialed_ = std::move(want);
  }

  /// A placement waits for the link to `p`: until when. The links dial it
  /// at once (the higher id dials the lower, but a placement need not wait
  /// for that member to learn of this one) until it is up or the wait is
  /// over.
  time_point want_link(peer& p, time_point now) {
    if (p.link_due == time_point{}) p.link_due = now + opts_.link_wait;
    const std::string& a = p.rec.info.link_address;
    link_table* links = link_table_of(*this_shard);
    if (links && !a.empty()) {
      auto [it, added] = placement_dials_.try_emplace(a, p.link_due);
      if (added) links->dial(a);  // nothing if it is dialled already
      it->second = std::max(it->second, p.link_due);
    }
    return p.link_due;
  }

  /// No placement waits for the link to `address` any more: dialled only
  /// if the members' own rule (redial) wants it. By value: callers pass
  /// the key of the entry this erases.
  void end_placement_dial(std::string address) {
    if (placement_dials_.erase(address) == 0) return;
    link_table* links = link_table_of(*this_shard);
    if (links && !dialed_.contains(address)) links->undial(address);
  }

  void broadcast_view() {
    refresh_own_load();
    conv_view v;
    v.epoch = epoch_;
    v.members.push_back(me_);
    for (const auto& [engine, p] : peers_) {
      if (p.known) v.members.push_back(p.rec);
    }
    v.gone = std::move(gone_);
    gone_.clear();
    for (const auto& [engine, p] : peers_) {
      if (p.known && p.linked && !p.rec.agent.is_null()) tell(p.rec.agent, v);
    }
  }

  void emit(convention_update::change what, const member& who, const std::string& why) {
    for (const address& s : subscribers_) tell(s, convention_update{what, who, why});
  }

  void refresh_own_load() { me_.info.actors = sys_->counters().actors_live; }

  agent_options opts_;
  system_impl* sys_ = nullptr;
  member_record me_;
  peer_map peers_;
  std::uint32_t leader_ = 0;
  std::uint64_t epoch_ = 0;
  std::vector<conv_view::gone_entry> gone_;
  std::vector<address> subscribers_;
  std::set<std::string> dialed_;
  /// Dialled for placements waiting for those links, and until when.
  std::map<std::string, time_point> placement_dials_;
  std::uint64_t placed_here_ = 0;
  bool joined_ = false;
};

}  // namespace

address start_convention_agent(system_impl& sys, agent_options o) {
  register_convention_pool_messages();
  if (o.module_cache.empty()) {
    o.module_cache =
        (std::filesystem::temp_directory_path() /
         ("troupe-modules-" + std::to_string(sys.engine()) + "-" + std::to_string(::getpid())))
            .string();
  }
  spawn_options where{.shard = 0};
  return spawn_actor(nullptr, &sys, new convention_agent(std::move(o)), nullptr, address{}, nullptr,
                     where);
}

}  // namespace troupe::internal
