// Membership in etcd: see etcd_membership.hpp.

#include "cluster/etcd_membership.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster/etcd_names.hpp"
#include "core/system_impl.hpp"

namespace troupe::internal {

namespace {

std::string encode(const member_record& r) {
  const std::vector<std::uint8_t> cbor = nlohmann::json::to_cbor(nlohmann::json(r));
  return std::string(cbor.begin(), cbor.end());
}

std::optional<member_record> decode(const std::string& bytes) {
  try {
    return nlohmann::json::from_cbor(bytes).get<member_record>();
  } catch (const std::exception&) {
    return std::nullopt;  // not a record of ours: ignored
  }
}

}  // namespace

etcd_membership::etcd_membership(system_impl& sys, std::vector<std::string> endpoints,
                                 std::string convention, std::uint32_t engine, duration ttl)
    : sys_(sys), client_(std::move(endpoints), std::chrono::milliseconds(3000)), engine_(engine),
      prefix_("/troupe/" + convention + "/members/"), key_(prefix_ + std::to_string(engine)),
      ttl_(std::max<std::chrono::seconds>(std::chrono::seconds(2),
                                          std::chrono::ceil<std::chrono::seconds>(ttl))) {
  thread_ = std::thread([this] { run(); });
}

etcd_membership::~etcd_membership() { close(); }

void etcd_membership::close() {
  {
    std::lock_guard g(lock_);
    if (closed_) return;
    closed_ = stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  watch_.reset();
  if (registered_) (void)client_.remove(key_);  // it left: the others see its record go at once
  if (lease_ > 0) (void)client_.revoke(lease_);
}

void etcd_membership::join(const member_record& me) {
  {
    std::lock_guard g(lock_);
    if (stopping_) return;
    me_ = me;
    dirty_ = true;
    joined_ = true;
  }
  wake_.notify_all();
}

void etcd_membership::update(const member_record& me) {
  {
    std::lock_guard g(lock_);
    me_ = me;
    dirty_ = true;
  }
  wake_.notify_all();
}

bool etcd_membership::register_here() {
  std::int64_t lease = 0;
  {
    std::lock_guard g(lock_);
    lease = lease_;
  }
  if (lease <= 0) {
    auto granted = client_.grant_lease(ttl_);
    if (!granted) {
      spdlog::warn("engine {}: membership in etcd: {}", engine_, granted.err().describe());
      return false;
    }
    // A record of this engine id on a lease this process never held: an
    // earlier run of this engine (killed, restarted with the same id) whose
    // lease has not expired yet. Its actors are gone: revoke it, so that its
    // names are free now rather than when the lease runs out.
    if (auto old = client_.read(key_); old && old->kv && old->kv->lease != 0 &&
                                       old->kv->lease != mine_ && old->kv->lease != *granted) {
      if (auto revoked = client_.revoke(old->kv->lease); revoked) {
        spdlog::info(
            "engine {}: revoked lease {} of an earlier run of engine {} (its names go now)",
            engine_, old->kv->lease, engine_);
      }
    }
    lease = *granted;
    mine_ = lease;
    {
      std::lock_guard g(lock_);
      lease_ = lease;
      registered_ = false;
    }
    if (auto* names = dynamic_cast<etcd_names*>(sys_.names_backend())) names->set_lease(lease);
  }
  std::string record;
  {
    std::lock_guard g(lock_);
    if (!joined_) return true;  // the lease is kept alive; the record waits for join()
    record = encode(me_);
    dirty_ = false;
  }
  if (auto put = client_.put(key_, record, lease); !put) {
    spdlog::warn("engine {}: membership in etcd: {}", engine_, put.err().describe());
    if (put.err().code() == errc::not_found) {  // the lease expired meanwhile: take another
      {
        std::lock_guard g(lock_);
        lease_ = 0;
      }
      if (auto* names = dynamic_cast<etcd_names*>(sys_.names_backend())) names->set_lease(0);
    }
    return false;
  }
  auto all = client_.range_prefix(prefix_);
  if (!all) {
    spdlog::warn("engine {}: membership in etcd: {}", engine_, all.err().describe());
    return false;
  }
  {
    std::lock_guard g(lock_);
    table_.clear();
    for (const etcd_kv& kv : all->kvs) {
      if (auto r = decode(kv.value)) table_[r->info.engine] = *r;
    }
    registered_ = true;
  }
  post_view({});
  watch_.reset();
  watch_ = client_.watch_prefix(
      prefix_, all->revision + 1, [this](const std::vector<etcd_event>& e) { on_events(e); },
      [this](const error& e, bool final) {
        spdlog::warn("engine {}: membership watch: {}{}", engine_, e.describe(),
                     final ? " (registering again)" : "");
        if (final) {
          std::lock_guard g(lock_);
          lease_ = -1;  // the loop registers again and reads the table afresh
          registered_ = false;
          wake_.notify_all();
        }
      });
  spdlog::info("engine {}: registered in etcd as {} (lease {}, ttl {} s)", engine_, key_, lease,
               ttl_.count());
  return true;
}

void etcd_membership::run() {
  std::unique_lock g(lock_);
  // Registering is due: no lease yet, or joined and the record not in etcd.
  auto due = [&] { return lease_ <= 0 || (joined_ && !registered_); };
  while (!stopping_) {
    if (due()) {
      g.unlock();
      const bool ok = register_here();
      g.lock();
      if (!ok) {
        wake_.wait_for(g, std::chrono::milliseconds(500), [&] { return stopping_; });
        continue;
      }
    }
    // A record changed before the engine joined waits for the join.
    wake_.wait_for(g, ttl_ / 3, [&] { return stopping_ || (dirty_ && registered_) || due(); });
    if (stopping_ || due()) continue;
    const std::int64_t lease = lease_;
    const bool put = dirty_ && registered_;
    const std::string record = put ? encode(me_) : std::string();
    if (put) dirty_ = false;
    g.unlock();
    if (put) (void)client_.put(key_, record, lease);
    auto alive = client_.keep_alive(lease);
    g.lock();
    if (!alive && alive.err().code() == errc::not_found) {
      spdlog::warn("engine {}: its etcd lease expired; registering again", engine_);
      lease_ = 0;
      registered_ = false;
      if (auto* names = dynamic_cast<etcd_names*>(sys_.names_backend())) names->set_lease(0);
    }
  }
}

void etcd_membership::on_events(const std::vector<etcd_event>& events) {
  std::vector<conv_view::gone_entry> gone;
  {
    std::lock_guard g(lock_);
    for (const etcd_event& e : events) {
      if (e.type == etcd_event::kind::put) {
        if (auto r = decode(e.value)) table_[r->info.engine] = *r;
        continue;
      }
      for (auto it = table_.begin(); it != table_.end(); ++it) {
        if (prefix_ + std::to_string(it->first) == e.key) {
          gone.push_back(
              {it->first, false, "its record in etcd is gone (left, or its lease expired)"});
          table_.erase(it);
          break;
        }
      }
    }
  }
  post_view(std::move(gone));
}

void etcd_membership::post_view(std::vector<conv_view::gone_entry> gone) {
  conv_view v;
  address agent;
  {
    std::lock_guard g(lock_);
    for (const auto& [engine, r] : table_) v.members.push_back(r);
    agent = me_.agent;  // the agent that joined; the system may not hold its address yet
  }
  v.gone = std::move(gone);
  if (agent.is_null() || sys_.stopped()) return;
  sys_.outside_send(make_envelope(std::move(v), address{}, agent));
}

}  // namespace troupe::internal
