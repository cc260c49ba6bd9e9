// The directory: names of actors, each kept by one shard chosen by a hash of
// the name, so that two spawns of one name from anywhere meet at one place
// and yield one actor (Thespian's globalName). Lookups are asks to that
// shard; each shard caches the answers it has seen, and a name's shard tells
// every shard to forget it when its actor ends.
//
// Between engines the name picks its engine first, by rendezvous hashing
// over the engines this one knows to be up, then the shard there. A named
// spawn whose directory is on another engine reserves the name there (an
// ask), spawns the actor here and binds it; claims that arrive meanwhile
// wait for the bind. The directory remembers which engines looked a name
// up and tells them when its actor ends; an engine that is lost takes its
// names and reservations with it. When an engine comes up, each shard hands
// the names that now hash to another engine to that engine's directory.
//
// With membership in etcd, names live there instead (engine/etcd_names.hpp):
// each engine's shard for a name asks etcd and caches the answer, and none
// of the hashing, reservations or handoffs below take part.

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/actor_access.hpp"
#include "core/shard.hpp"
#include "core/system_impl.hpp"

namespace troupe::internal {

namespace {

/// FNV-1a: stable across builds and processes, unlike std::hash.
std::uint64_t name_hash(std::string_view name) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

/// splitmix64's finaliser: spreads the rendezvous scores.
std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

envelope* control_to(auto&& payload, const address& from, const address& to) {
  envelope* e = make_envelope(std::forward<decltype(payload)>(payload), from, to);
  e->flags |= flag_control;
  return e;
}

}  // namespace

address shard::local_directory_for(std::string_view name) const {
  const auto n = static_cast<std::uint64_t>(shard_count());
  return address(engine_, static_cast<std::uint16_t>(name_hash(name) % n), 0, 0);
}

address shard::directory_for(std::string_view name) const {
  if (!sys_.has_router() || sys_.names_backend()) return local_directory_for(name);
  const std::uint64_t h = name_hash(name);
  std::uint32_t best = engine_;
  std::uint64_t best_score = 0;
  bool first = true;
  for (std::uint32_t e : sys_.known_engines()) {  // sorted: ties go to the lower id
    const std::uint64_t score = mix(h ^ (std::uint64_t{e} * 0x9E3779B97F4A7C15ULL));
    if (first || score > best_score) {
      best = e;
      best_score = score;
      first = false;
    }
  }
  if (best == engine_) return local_directory_for(name);
  return address(best, 0, 0, 0);  // its link picks the shard there
}

std::optional<address> shard::cached_name(const std::string& name) const {
  auto it = name_cache_.find(name);
  if (it == name_cache_.end()) return std::nullopt;
  return it->second;
}

bool shard::handle_name_control(envelope* e) {
  if (name_backend* backend = sys_.names_backend()) {
    if (backend->handle(*this, e, phase_ == shutdown_phase::running)) return true;
  }
  // Each step returns true if it took `e` (forwarded or parked it).
  using step = bool (shard::*)(envelope*);
  static const std::pair<const message_type*, step> steps[] = {
      {type_id<name_claim>(), &shard::on_name_claim},
      {type_id<name_lookup>(), &shard::on_name_lookup},
      {type_id<name_release>(), &shard::on_name_release},
      {type_id<rehome_names>(), &shard::on_rehome_names},
      {type_id<name_handoff>(), &shard::on_name_handoff},
      {type_id<name_reserve>(), &shard::on_name_reserve},
      {type_id<name_bind>(), &shard::on_name_bind},
      {type_id<name_forget>(), &shard::on_name_forget},
  };
  for (const auto& [type, run] : steps) {
    if (type != e->type) continue;
    if (!(this->*run)(e)) destroy_envelope(e);
    return true;
  }
  return false;
}

bool shard::on_name_claim(envelope* e) {
  name_claim& m = e->as<name_claim>();
  const address dir = directory_for(m.name);
  if (dir.engine() != engine_) {
    claim_remote_name(e, dir);
    return true;
  }
  if (dir.shard() != index_) {  // the engines changed since it was sent
    e->target = dir;
    send(e);
    return true;
  }
  if (auto r = reserved_.find(m.name); r != reserved_.end()) {
    r->second.parked.push_back(e);  // another engine is spawning it: wait for its bind
    return true;
  }
  if (auto it = directory_.find(m.name); it != directory_.end()) {
    delete m.actor;  // the name is taken: the one that lives answers
    if (m.factory) m.factory->release();
    send_reply(*e, make_envelope(address(it->second), e->target, e->sender));
  } else if (phase_ != shutdown_phase::running) {
    delete m.actor;
    if (m.factory) m.factory->release();
    queue_failure(*e, errc::shutting_down, "the engine is shutting down");
  } else {
    address addr;
    if (m.target_shard == index_) {
      addr = spawn_local(m.actor, m.factory, address{}, nullptr, m.mailbox_limit, &m.name);
    } else {
      shard& t = sys_.shard_at(m.target_shard);
      addr = address(engine_, m.target_shard, t.reserve_slot(), 1);
      send(control_to(install_actor{m.actor, m.factory, address{}, false, m.mailbox_limit,
                                    supervision_policy{}, m.name},
                      address{}, addr));
    }
    directory_[m.name] = addr;
    send_reply(*e, make_envelope(address(addr), e->target, e->sender));
  }
  return false;
}

bool shard::on_name_lookup(envelope* e) {
  const std::string& name = e->as<name_lookup>().name;
  // Being spawned by another engine, which has answered its own claim: the
  // lookup waits for its bind (or fails if that engine is lost), rather
  // than saying no actor has a name that one has by now.
  switch (answer_known_name(e, name)) {
    case known_name::answered: return false;
    case known_name::parked: return true;
    case known_name::unknown: break;
  }
  queue_failure(*e, errc::not_found, "no actor is named '" + name + "'");
  return false;
}

shard::known_name shard::answer_known_name(envelope* e, const std::string& name) {
  if (auto it = directory_.find(name); it != directory_.end()) {
    subscribe_name(name, e->sender.engine());
    send_reply(*e, make_envelope(address(it->second), e->target, e->sender));
    return known_name::answered;
  }
  if (auto r = reserved_.find(name); r != reserved_.end()) {
    r->second.parked.push_back(e);
    return known_name::parked;
  }
  return known_name::unknown;
}

bool shard::on_name_release(envelope* e) {
  name_release& m = e->as<name_release>();
  if (auto it = directory_.find(m.name); it != directory_.end() && it->second == m.who) {
    directory_.erase(it);
    for (std::size_t i = 0; i < shard_count(); ++i) {
      send(control_to(name_forget{m.name, m.who}, address{},
                      address(engine_, static_cast<std::uint16_t>(i), 0, 0)));
    }
    notify_name_subscribers(m.name, m.who);
  }
  return false;
}

bool shard::on_rehome_names(envelope*) {
  for (auto it = directory_.begin(); it != directory_.end();) {
    const address dir = directory_for(it->first);
    if (dir.engine() == engine_) {
      ++it;
      continue;
    }
    name_handoff h{it->first, it->second, {}};
    if (auto sub = name_subscribers_.find(it->first); sub != name_subscribers_.end()) {
      h.subscribers = std::move(sub->second);
      name_subscribers_.erase(sub);
    }
    send(control_to(std::move(h), control_self(), dir));
    it = directory_.erase(it);
  }
  return false;
}

bool shard::on_name_handoff(envelope* e) {
  name_handoff& m = e->as<name_handoff>();
  const address dir = directory_for(m.name);
  if ((dir.engine() != engine_ && m.hops < 8) ||
      (dir.engine() == engine_ && dir.shard() != index_)) {
    // It moved on again: on to its owner by this engine's view (a few
    // times at most, while the engines' views of each other settle).
    if (dir.engine() != engine_) ++m.hops;
    e->target = dir;
    send(e);
    return true;
  }
  if (!directory_.contains(m.name)) {
    directory_[m.name] = m.who;
    for (std::uint32_t s : m.subscribers) subscribe_name(m.name, s);
    subscribe_name(m.name, m.who.engine());
    answer_parked_names(m.name, m.who);
  }
  return false;
}

bool shard::on_name_reserve(envelope* e) {
  const std::string& name = e->as<name_reserve>().name;
  switch (answer_known_name(e, name)) {
    case known_name::answered: return false;
    case known_name::parked: return true;
    case known_name::unknown: break;
  }
  if (phase_ != shutdown_phase::running) {
    queue_failure(*e, errc::shutting_down, "the engine is shutting down");
  } else {
    reserved_.emplace(name, reservation{e->sender.engine()});
    send_reply(*e, make_envelope(address{}, e->target, e->sender));  // yours: spawn it
  }
  return false;
}

bool shard::on_name_bind(envelope* e) {
  const name_bind& m = e->as<name_bind>();
  auto r = reserved_.find(m.name);
  if (r != reserved_.end() && r->second.engine == m.who.engine()) {
    directory_[m.name] = m.who;
    subscribe_name(m.name, m.who.engine());
    answer_parked_names(m.name, m.who);
  }
  return false;
}

bool shard::on_name_forget(envelope* e) {
  name_forget& m = e->as<name_forget>();
  if (auto it = name_cache_.find(m.name); it != name_cache_.end() && it->second == m.who) {
    name_cache_.erase(it);
  }
  return false;
}

void shard::forget_names_of(std::uint32_t engine) {
  std::erase_if(name_cache_, [&](const auto& kv) { return kv.second.engine() == engine; });
  if (name_backend* backend = sys_.names_backend()) backend->forget_engine(*this, engine);
  for (auto it = directory_.begin(); it != directory_.end();) {
    if (it->second.engine() == engine) {
      const std::string name = it->first;
      const address who = it->second;
      it = directory_.erase(it);
      notify_name_subscribers(name, who);
    } else {
      ++it;
    }
  }
  for (auto it = reserved_.begin(); it != reserved_.end();) {
    if (it->second.engine != engine) {
      ++it;
      continue;
    }
    for (envelope* p : it->second.parked) {
      if (p->type == type_id<name_claim>()) {
        name_claim& m = p->as<name_claim>();
        delete m.actor;
        if (m.factory) m.factory->release();
      }
      queue_failure(*p, errc::peer_lost,
                    "engine " + std::to_string(engine) + ", which was spawning '" + it->first +
                        "', was lost");
      destroy_envelope(p);
    }
    it = reserved_.erase(it);
  }
  for (auto& [name, engines] : name_subscribers_) std::erase(engines, engine);
}

void shard::subscribe_name(const std::string& name, std::uint32_t engine) {
  if (engine == engine_ || engine == 0) return;
  auto& list = name_subscribers_[name];
  if (std::find(list.begin(), list.end(), engine) == list.end()) list.push_back(engine);
}

void shard::notify_name_subscribers(const std::string& name, const address& who) {
  auto it = name_subscribers_.find(name);
  if (it == name_subscribers_.end()) return;
  for (std::uint32_t engine : it->second) {
    send(control_to(name_forget{name, who}, control_self(), address(engine, 0, 0, 0)));
  }
  name_subscribers_.erase(it);
}

void shard::answer_parked_names(const std::string& name, const address& who) {
  auto r = reserved_.find(name);
  if (r == reserved_.end()) return;
  std::vector<envelope*> parked = std::move(r->second.parked);
  reserved_.erase(r);
  for (envelope* p : parked) {
    if (p->type == type_id<name_claim>()) {
      name_claim& m = p->as<name_claim>();
      delete m.actor;
      if (m.factory) m.factory->release();
    } else {
      subscribe_name(name, p->sender.engine());
    }
    send_reply(*p, make_envelope(address(who), p->target, p->sender));
    destroy_envelope(p);
  }
}

namespace {

/// A named spawn waiting for the name's directory on another engine.
struct remote_claim final : pending_ask {
  shard* home;
  envelope* claim;  ///< the name_claim, with the actor to spawn
  address dir;
  void complete(envelope* reply) noexcept override {
    home->finish_remote_claim(claim, dir, reply);
    delete this;
  }
};

}  // namespace

void shard::claim_remote_name(envelope* e, const address& dir) {
  auto* rc = new remote_claim;
  rc->home = this;
  rc->claim = e;
  rc->dir = dir;
  start_ask(*rc, control_to(name_reserve{e->as<name_claim>().name}, control_self(), dir),
            std::chrono::seconds(10));
}

void shard::finish_remote_claim(envelope* claim, const address& dir, envelope* reply) {
  name_claim& m = claim->as<name_claim>();
  address answer;
  bool spawned = false;
  if (reply->type == type_id<ask_failure>()) {
    const ask_failure& f = reply->as<ask_failure>();
    queue_failure(*claim, f.code, f.text);
  } else if (reply->type == type_id<address>()) {
    answer = reply->as<address>();
    if (answer.is_null() && phase_ == shutdown_phase::running) {
      // Reserved for this engine: the actor lives here, the name there.
      answer = spawn_local(m.actor, m.factory, address{}, nullptr, m.mailbox_limit, &m.name);
      spawned = true;
      send(control_to(name_bind{m.name, answer}, control_self(), dir));
    }
    if (answer.is_null()) {
      queue_failure(*claim, errc::shutting_down, "the engine is shutting down");
    } else {
      send_reply(*claim, make_envelope(address(answer), claim->target, claim->sender));
    }
  } else {
    queue_failure(*claim, errc::type_mismatch, "the name's directory answered with another type");
  }
  if (!spawned) {
    delete m.actor;
    if (m.factory) m.factory->release();
  }
  destroy_envelope(reply);
  destroy_envelope(claim);
}

void shard::release_name(std::uint32_t slot, const address& who) {
  auto it = slot_names_.find(slot);
  if (it == slot_names_.end()) return;
  std::string name = std::move(it->second);
  slot_names_.erase(it);
  const address dir = directory_for(name);
  send(control_to(name_release{std::move(name), who}, who, dir));
}

// ---------------------------------------------------------------- entry points

envelope* make_name_claim(shard* from, system_impl* sys, const address& sender, std::string name,
                          actor_base* a, actor_factory* factory, const spawn_options& o) {
  system_impl& s = from ? from->owner() : *sys;
  const std::uint16_t target = s.place(o, from);
  const address dir = s.shard_at(0).directory_for(name);
  // A directory on another engine: the shard the actor would live on
  // reserves the name there and spawns it.
  const address to = dir.engine() == s.engine() ? dir : address(s.engine(), target, 0, 0);
  return control_to(name_claim{std::move(name), a, factory, target, o.mailbox_limit}, sender, to);
}

envelope* make_name_lookup(shard* from, system_impl* sys, const address& sender, std::string name) {
  system_impl& s = from ? from->owner() : *sys;
  const address dir = s.shard_at(0).directory_for(name);
  return control_to(name_lookup{std::move(name)}, sender, dir);
}

std::optional<address> cached_name(shard& s, const std::string& name) {
  return s.cached_name(name);
}

void cache_name(shard& s, const std::string& name, const address& a) { s.cache_name(name, a); }

}  // namespace troupe::internal
