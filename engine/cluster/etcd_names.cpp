// The directory's names in etcd: see etcd_names.hpp.

#include "cluster/etcd_names.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "core/shard.hpp"
#include "core/system_impl.hpp"

namespace troupe::internal {

namespace {

using nlohmann::json;

/// A binding's value in etcd: the actor's address and its engine.
std::string encode(const address& who) {
  return json{{"address", who.to_string()}, {"engine", who.engine()}}.dump();
}

std::optional<address> decode(const std::string& value) {
  const json j = json::parse(value, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto it = j.find("address");
  if (it == j.end() || !it->is_string()) return std::nullopt;
  auto a = address::parse(it->get_ref<const std::string&>());
  if (!a || a->is_null()) return std::nullopt;
  return a;
}

std::string shown_name(std::string_view name) {
  constexpr std::size_t shown = 80;
  if (name.size() <= shown) return "'" + std::string(name) + "'";
  return "'" + std::string(name.substr(0, shown)) + "...'";
}

/// Why `name` cannot be a key of ours, if it cannot.
std::optional<std::string> bad_name(const std::string& name) {
  if (name.empty()) return std::string("a name kept in etcd must not be empty");
  if (name.size() > etcd_names::max_name_bytes) {
    return "name " + shown_name(name) + " is " + std::to_string(name.size()) +
           " bytes long; names kept in etcd are at most " +
           std::to_string(etcd_names::max_name_bytes) + " bytes";
  }
  return std::nullopt;
}

envelope* control_to(auto&& payload, const address& from, const address& to) {
  envelope* e = make_envelope(std::forward<decltype(payload)>(payload), from, to);
  e->flags |= flag_control;
  return e;
}

void answer(shard& s, const envelope& request, const address& who) {
  s.send_reply(request, make_envelope(address(who), request.target, request.sender));
}

void fail(shard& s, const envelope& request, errc code, std::string text) {
  if (request.sender.is_null()) return;
  s.send_reply(request,
               make_envelope(ask_failure{code, std::move(text)}, request.target, request.sender));
}

/// A claim that spawns nothing: its actor is never installed.
void drop_actor(name_claim& m) {
  delete m.actor;
  m.actor = nullptr;
  if (m.factory) m.factory->release();
  m.factory = nullptr;
}

bool is_ask(const envelope* e) {
  return e->type == type_id<name_claim>() || e->type == type_id<name_lookup>();
}

}  // namespace

etcd_names::etcd_names(system_impl& sys, std::vector<std::string> endpoints,
                       const std::string& convention)
    : sys_(sys), prefix_("/troupe/" + convention + "/names/"),
      client_(std::move(endpoints), std::chrono::milliseconds(3000)) {
  for (std::size_t i = 0; i < sys_.shard_count(); ++i) {
    sides_.push_back(std::make_unique<shard_side>());
  }
  thread_ = std::thread([this] { run(); });
}

etcd_names::~etcd_names() { close(); }

// ---------------------------------------------------------------- shard side

bool etcd_names::handle(shard& s, envelope* e, bool running) {
  if (e->type == type_id<name_claim>()) {
    on_claim(s, e, running);
  } else if (e->type == type_id<name_lookup>()) {
    on_lookup(s, e);
  } else if (e->type == type_id<name_release>()) {
    on_release(s, e);
  } else if (e->type == type_id<name_etcd_result>()) {
    on_result(s, e, running);
  } else if (e->type == type_id<name_changed>()) {
    const name_changed& m = e->as<name_changed>();
    auto& bound = sides_[s.index()]->bound;
    if (m.all)
      s.forget_cached_names();
    else
      s.forget_cached_name(m.name, m.now);
    if (m.all) {
      bound.clear();
    } else if (auto it = bound.find(m.name); it != bound.end() && it->second != m.now) {
      bound.erase(it);
    }
    destroy_envelope(e);
  } else {
    return false;
  }
  return true;
}

void etcd_names::forget_engine(shard& s, std::uint32_t engine) {
  std::erase_if(sides_[s.index()]->bound,
                [&](const auto& kv) { return kv.second.engine() == engine; });
}

void etcd_names::on_claim(shard& s, envelope* e, bool running) {
  name_claim& m = e->as<name_claim>();
  if (auto why = bad_name(m.name)) {
    drop_actor(m);
    fail(s, *e, errc::misuse, *why);
    destroy_envelope(e);
    return;
  }
  if (const address home = s.local_directory_for(m.name); home.shard() != s.index()) {
    e->target = home;  // not this shard's name: on to the one that keeps it
    s.send(e);
    return;
  }
  shard_side& side = *sides_[s.index()];
  if (auto b = side.busy.find(m.name); b != side.busy.end()) {
    b->second.push_back(e);
    return;
  }
  if (auto it = side.bound.find(m.name); it != side.bound.end()) {
    drop_actor(m);  // the name is taken: the one that lives answers
    answer(s, *e, it->second);
    destroy_envelope(e);
    return;
  }
  if (!running) {
    drop_actor(m);
    fail(s, *e, errc::shutting_down, "the engine is shutting down");
    destroy_envelope(e);
    return;
  }
  // The address the actor will have if the claim wins: etcd records it
  // before the actor exists, and messages to it wait on its shard.
  const std::uint16_t target = m.target_shard;
  const address who(s.engine(), target, sys_.shard_at(target).reserve_slot(), 1);
  side.busy.try_emplace(m.name);
  if (!submit(job{job::kind::claim, m.name, s.index(), who, e})) {
    side.busy.erase(m.name);
    drop_actor(m);
    fail(s, *e, errc::shutting_down, "the engine is shutting down");
    destroy_envelope(e);
  }
}

void etcd_names::on_lookup(shard& s, envelope* e) {
  const std::string& name = e->as<name_lookup>().name;
  if (auto why = bad_name(name)) {
    fail(s, *e, errc::misuse, *why);
    destroy_envelope(e);
    return;
  }
  if (const address home = s.local_directory_for(name); home.shard() != s.index()) {
    e->target = home;
    s.send(e);
    return;
  }
  shard_side& side = *sides_[s.index()];
  if (auto b = side.busy.find(name); b != side.busy.end()) {
    b->second.push_back(e);
    return;
  }
  if (auto it = side.bound.find(name); it != side.bound.end()) {
    answer(s, *e, it->second);
    destroy_envelope(e);
    return;
  }
  side.busy.try_emplace(name);
  if (!submit(job{job::kind::lookup, name, s.index(), address{}, e})) {
    side.busy.erase(name);
    fail(s, *e, errc::shutting_down, "the engine is shutting down");
    destroy_envelope(e);
  }
}

void etcd_names::on_release(shard& s, envelope* e) {
  const name_release& m = e->as<name_release>();
  if (const address home = s.local_directory_for(m.name); home.shard() != s.index()) {
    e->target = home;
    s.send(e);
    return;
  }
  shard_side& side = *sides_[s.index()];
  if (auto b = side.busy.find(m.name); b != side.busy.end()) {
    b->second.push_back(e);  // after the request in flight, in order
    return;
  }
  if (auto it = side.bound.find(m.name); it != side.bound.end() && it->second == m.who) {
    side.bound.erase(it);
  }
  // This engine's shards drop it at once; other engines when etcd's delete
  // reaches their watch.
  for (std::size_t i = 0; i < s.shard_count(); ++i) {
    s.send(control_to(name_forget{m.name, m.who}, address{},
                      address(s.engine(), static_cast<std::uint16_t>(i), 0, 0)));
  }
  // Claims and lookups of the name wait until etcd has deleted it.
  side.busy.try_emplace(m.name);
  if (!submit(job{job::kind::release, m.name, s.index(), m.who, nullptr})) {
    side.busy.erase(m.name);  // closed: the lease's end takes the key
  }
  destroy_envelope(e);
}

void etcd_names::on_result(shard& s, envelope* e, bool running) {
  name_etcd_result& r = e->as<name_etcd_result>();
  shard_side& side = *sides_[s.index()];
  std::vector<envelope*> waiting;
  if (auto b = side.busy.find(r.name); b != side.busy.end()) {
    waiting = std::move(b->second);
    side.busy.erase(b);
  }
  if (r.ok && !r.who.is_null() && r.cacheable) {
    side.bound[r.name] = r.who;
  } else {
    side.bound.erase(r.name);
  }
  if (envelope* q = r.request) {
    if (q->type == type_id<name_claim>()) {
      name_claim& m = q->as<name_claim>();
      if (r.ok && r.created) {
        s.send(control_to(install_actor{m.actor, m.factory, address{}, false, m.mailbox_limit,
                                        supervision_policy{}, m.name},
                          address{}, r.who));
        m.actor = nullptr;
        m.factory = nullptr;
      } else {
        drop_actor(m);
      }
      if (r.ok && !r.who.is_null()) {
        answer(s, *q, r.who);
      } else {
        fail(s, *q, r.ok ? errc::failed : r.code,
             r.ok ? "etcd neither bound nor held name " + shown_name(r.name) : r.text);
      }
    } else if (r.ok && !r.who.is_null()) {
      answer(s, *q, r.who);
    } else if (r.ok) {
      fail(s, *q, errc::not_found, not_found_text(r.name));
    } else {
      fail(s, *q, r.code, r.text);
    }
    destroy_envelope(q);
  }
  // What waited: answered by this result while it can be (the same answer,
  // as of the same moment); from a release or a claim that must be made
  // on, handled afresh, in order (they wait again behind a new request).
  bool afresh = r.what == name_etcd_result::op::release && !r.ok;
  for (envelope* p : waiting) {
    if (!afresh && is_ask(p)) {
      const bool claim = p->type == type_id<name_claim>();
      if (r.ok && !r.who.is_null()) {
        if (claim) drop_actor(p->as<name_claim>());
        answer(s, *p, r.who);
        destroy_envelope(p);
        continue;
      }
      if (r.ok && !claim) {
        fail(s, *p, errc::not_found, not_found_text(r.name));
        destroy_envelope(p);
        continue;
      }
      if (!r.ok) {
        if (claim) drop_actor(p->as<name_claim>());
        fail(s, *p, r.code, r.text);
        destroy_envelope(p);
        continue;
      }
    }
    afresh = true;
    handle(s, p, running);
  }
  destroy_envelope(e);
}

std::string etcd_names::not_found_text(const std::string& name) const {
  return "no actor is named " + shown_name(name) + " (etcd holds no " + shown_name(key_of(name)) +
         ")";
}

bool etcd_names::submit(job j) {
  {
    std::lock_guard g(lock_);
    if (closing_) return false;
    jobs_.push_back(std::move(j));
  }
  wake_.notify_all();
  return true;
}

// ---------------------------------------------------------------- etcd side

void etcd_names::set_lease(std::int64_t lease) {
  {
    std::lock_guard g(lock_);
    if (lease == lease_) return;
    lease_ = lease;
    if (lease > 0 && !closing_) {
      // The old lease ended (or is about to): what this engine held goes
      // onto the new one, if nobody took it meanwhile.
      for (const auto& [name, who] : owned_) {
        jobs_.push_back(job{job::kind::reclaim, name, 0, who, nullptr});
      }
    }
  }
  wake_.notify_all();
}

void etcd_names::close() {
  {
    std::lock_guard g(lock_);
    closing_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  watch_.reset();  // not under lock_: its callback takes it
}

std::int64_t etcd_names::wait_lease() {
  std::unique_lock g(lock_);
  wake_.wait_for(g, client_.timeout(), [&] { return lease_ > 0 || closing_; });
  return lease_;
}

void etcd_names::run() {
  using clock = std::chrono::steady_clock;
  std::unique_lock g(lock_);
  clock::time_point next_watch_try{};
  while (!closing_) {
    if (rewatch_ && clock::now() >= next_watch_try) {
      g.unlock();
      const bool ok = start_watch();
      g.lock();
      if (!ok) next_watch_try = clock::now() + std::chrono::milliseconds(500);
      continue;
    }
    if (jobs_.empty()) {
      if (rewatch_) {
        wake_.wait_until(g, next_watch_try);
      } else {
        wake_.wait(g);
      }
      continue;
    }
    job j = std::move(jobs_.front());
    jobs_.pop_front();
    g.unlock();
    run_job(j);
    g.lock();
  }
  // Closed: what is still queued fails, on the shards that asked.
  while (!jobs_.empty()) {
    job j = std::move(jobs_.front());
    jobs_.pop_front();
    g.unlock();
    if (j.what != job::kind::reclaim) {
      post(j, false, false, address{}, 0, errc::shutting_down, "the engine is shutting down");
    }
    g.lock();
  }
}

bool etcd_names::start_watch() {
  // Where the watch starts: any result read at this revision or later is
  // covered by it.
  auto now = client_.read(prefix_);
  if (!now) {
    spdlog::warn("engine {}: names in etcd: cannot watch {}: {}", sys_.engine(), prefix_,
                 now.err().describe());
    return false;
  }
  watch_.reset();  // a watch that ended for good: its thread is done
  {
    std::lock_guard g(lock_);
    last_event_ = std::max(last_event_, now->revision);
    watching_ = true;
    rewatch_ = false;
  }
  watch_ = client_.watch_prefix(
      prefix_, now->revision + 1, [this](const std::vector<etcd_event>& e) { on_events(e); },
      [this](const error& e, bool final) {
        spdlog::warn("engine {}: names watch: {}{}", sys_.engine(), e.describe(),
                     final ? " (cached names dropped; watching again)" : "");
        if (!final) return;
        {
          std::lock_guard g(lock_);
          watching_ = false;
          rewatch_ = true;
          broadcast_change({}, address{}, true);
        }
        wake_.notify_all();
      });
  return true;
}

void etcd_names::on_events(const std::vector<etcd_event>& events) {
  std::lock_guard g(lock_);
  for (const etcd_event& ev : events) {
    last_event_ = std::max(last_event_, ev.mod_revision);
    if (ev.key.compare(0, prefix_.size(), prefix_) != 0) continue;
    const std::string name = ev.key.substr(prefix_.size());
    address now;
    if (ev.type == etcd_event::kind::put) now = decode(ev.value).value_or(address{});
    broadcast_change(name, now, false);
  }
}

void etcd_names::broadcast_change(const std::string& name, const address& now, bool all) {
  for (std::size_t i = 0; i < sys_.shard_count(); ++i) {
    sys_.shard_at(i).post_outside(
        control_to(name_changed{name, now, all}, address{},
                   address(sys_.engine(), static_cast<std::uint16_t>(i), 0, 0)));
  }
}

void etcd_names::post(job& j, bool ok, bool created, address who, std::int64_t revision, errc code,
                      std::string text) {
  using op = name_etcd_result::op;
  const op what = j.what == job::kind::claim    ? op::claim
                  : j.what == job::kind::lookup ? op::lookup
                                                : op::release;
  std::lock_guard g(lock_);
  // Cached only if the watch will tell of every change after `revision`,
  // and has told of none yet: its next name_changed comes after this.
  const bool cacheable = ok && watching_ && revision > 0 && last_event_ <= revision;
  envelope* e = control_to(name_etcd_result{what, j.name, std::exchange(j.request, nullptr), ok,
                                            created, cacheable, who, code, std::move(text)},
                           address{}, address(sys_.engine(), j.shard, 0, 0));
  sys_.shard_at(j.shard).post_outside(e);
}

void etcd_names::run_job(job& j) {
  const std::string key = key_of(j.name);
  const auto failed = [&](const error& err) {
    post(j, false, false, address{}, 0, err.code(),
         "name " + shown_name(j.name) + ": " + err.text());
  };
  switch (j.what) {
    case job::kind::claim: {
      const std::int64_t lease = wait_lease();
      if (lease <= 0) {
        post(j, false, false, address{}, 0, errc::io,
             "name " + shown_name(j.name) + ": engine " + std::to_string(sys_.engine()) +
                 " has no lease in etcd (its membership record is not registered; is etcd "
                 "reachable?)");
        return;
      }
      const std::string value = encode(j.who);
      auto r = client_.create_or_read(key, value, lease);
      if (!r) {
        // The txn may have been applied and its answer lost: take back a
        // binding to an actor that will not be installed.
        if (auto undo = client_.remove_if(key, value); !undo) {
          spdlog::warn(
              "engine {}: name {} may stay bound in etcd to {}, which was never spawned, until "
              "this engine's lease ends: {}",
              sys_.engine(), shown_name(j.name), j.who.to_string(), undo.err().describe());
        }
        failed(r.err());
        return;
      }
      if (r->created) {
        bool moved;
        {
          std::lock_guard g(lock_);
          owned_[j.name] = j.who;
          moved = lease_ != lease && lease_ > 0;
          if (moved) jobs_.push_back(job{job::kind::reclaim, j.name, 0, j.who, nullptr});
        }
        post(j, true, true, j.who, r->revision, errc::failed, {});
        return;
      }
      auto holder = decode(r->holder.value);
      if (!holder) {
        failed(error(errc::failed, "etcd holds " + key +
                                       " with a value that is not an actor's "
                                       "address: " +
                                       shown_name(r->holder.value)));
        return;
      }
      post(j, true, false, *holder, r->revision, errc::failed, {});
      return;
    }
    case job::kind::lookup: {
      auto r = client_.read(key);
      if (!r) {
        failed(r.err());
        return;
      }
      if (!r->kv) {
        post(j, true, false, address{}, r->revision, errc::not_found, {});
        return;
      }
      auto holder = decode(r->kv->value);
      if (!holder) {
        failed(error(errc::failed, "etcd holds " + key +
                                       " with a value that is not an actor's "
                                       "address: " +
                                       shown_name(r->kv->value)));
        return;
      }
      post(j, true, false, *holder, r->revision, errc::failed, {});
      return;
    }
    case job::kind::release: {
      {
        std::lock_guard g(lock_);
        if (auto it = owned_.find(j.name); it != owned_.end() && it->second == j.who) {
          owned_.erase(it);
        }
      }
      auto r = client_.remove_if(key, encode(j.who));
      if (!r) {
        spdlog::warn("engine {}: name {} stays in etcd until this engine's lease ends: {}",
                     sys_.engine(), shown_name(j.name), r.err().describe());
        failed(r.err());
        return;
      }
      post(j, true, false, address{}, 0, errc::failed, {});
      return;
    }
    case job::kind::reclaim: {
      std::int64_t lease;
      {
        std::lock_guard g(lock_);
        auto it = owned_.find(j.name);
        if (it == owned_.end() || it->second != j.who) return;  // ended meanwhile
        lease = lease_;
      }
      if (lease <= 0) return;  // a newer lease claims it again
      const std::string value = encode(j.who);
      auto r = client_.create_or_read(key, value, lease);
      bool kept = r && r->created;
      if (r && !kept && r->holder.value == value) {
        auto moved = client_.reattach(key, value, lease);
        kept = moved && *moved;
      }
      if (kept) {
        spdlog::info("engine {}: name {} of {} claimed again on lease {}", sys_.engine(),
                     shown_name(j.name), j.who.to_string(), lease);
        return;
      }
      if (!r) {
        spdlog::warn("engine {}: cannot claim name {} of {} again: {}", sys_.engine(),
                     shown_name(j.name), j.who.to_string(), r.err().describe());
        return;
      }
      spdlog::warn(
          "engine {}: name {} was taken by {} while this engine's lease had ended; its actor {} "
          "lives on without it",
          sys_.engine(), shown_name(j.name),
          decode(r->holder.value).value_or(address{}).to_string(), j.who.to_string());
      std::lock_guard g(lock_);
      if (auto it = owned_.find(j.name); it != owned_.end() && it->second == j.who) {
        owned_.erase(it);
      }
      return;
    }
  }
}

}  // namespace troupe::internal
