// The directory: names of actors, each kept by one shard chosen by a hash of
// the name, so that two spawns of one name from anywhere meet at one place
// and yield one actor (Thespian's globalName). Lookups are asks to that
// shard; each shard caches the answers it has seen, and a name's shard tells
// every shard to forget it when its actor ends. Between engines the same
// hash will pick the engine first, then the shard.

#include <spdlog/spdlog.h>

#include "actor_access.hpp"
#include "shard.hpp"
#include "system_impl.hpp"

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

envelope* control_to(auto&& payload, const address& from, const address& to) {
  envelope* e = make_envelope(std::forward<decltype(payload)>(payload), from, to);
  e->flags |= flag_control;
  return e;
}

}  // namespace

address shard::directory_for(std::string_view name) const {
  const auto n = static_cast<std::uint64_t>(shard_count());
  return address(engine_, static_cast<std::uint16_t>(name_hash(name) % n), 0, 0);
}

std::optional<address> shard::cached_name(const std::string& name) const {
  auto it = name_cache_.find(name);
  if (it == name_cache_.end()) return std::nullopt;
  return it->second;
}

bool shard::handle_name_control(envelope* e) {
  if (e->type == type_id<name_claim>()) {
    name_claim& m = e->as<name_claim>();
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
  } else if (e->type == type_id<name_lookup>()) {
    const std::string& name = e->as<name_lookup>().name;
    if (auto it = directory_.find(name); it != directory_.end()) {
      send_reply(*e, make_envelope(address(it->second), e->target, e->sender));
    } else {
      queue_failure(*e, errc::not_found, "no actor is named '" + name + "'");
    }
  } else if (e->type == type_id<name_release>()) {
    name_release& m = e->as<name_release>();
    if (auto it = directory_.find(m.name); it != directory_.end() && it->second == m.who) {
      directory_.erase(it);
      for (std::size_t i = 0; i < shard_count(); ++i) {
        send(control_to(name_forget{m.name, m.who}, address{},
                        address(engine_, static_cast<std::uint16_t>(i), 0, 0)));
      }
    }
  } else if (e->type == type_id<name_forget>()) {
    name_forget& m = e->as<name_forget>();
    if (auto it = name_cache_.find(m.name); it != name_cache_.end() && it->second == m.who) {
      name_cache_.erase(it);
    }
  } else {
    return false;
  }
  destroy_envelope(e);
  return true;
}

void shard::forget_names_of(std::uint32_t engine) {
  std::erase_if(name_cache_, [&](const auto& kv) { return kv.second.engine() == engine; });
  std::erase_if(directory_, [&](const auto& kv) { return kv.second.engine() == engine; });
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
  return control_to(name_claim{std::move(name), a, factory, target, o.mailbox_limit}, sender, dir);
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
