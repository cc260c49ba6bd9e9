#include "table.hpp"

#include <chrono>
#include <vector>

namespace troupe::kv {

std::int64_t unix_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

entry* table::find(std::string_view key, std::int64_t now) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  if (it->second.expires_at != 0 && it->second.expires_at <= now) {
    erase_at(it);
    return nullptr;
  }
  return &it->second;
}

entry& table::upsert(std::string_view key, std::int64_t now, bool& created) {
  auto it = map_.find(key);
  if (it != map_.end()) {
    entry& e = it->second;
    created = e.expires_at != 0 && e.expires_at <= now;
    if (created) {  // expired: it starts again as a new key
      set_expiry(e, 0);
      e.value.clear();
    }
    return e;
  }
  created = true;
  return map_.try_emplace(std::string(key)).first->second;
}

bool table::erase(std::string_view key, std::int64_t now) {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  const bool alive = it->second.expires_at == 0 || it->second.expires_at > now;
  erase_at(it);
  return alive;
}

void table::set_expiry(entry& e, std::int64_t at) noexcept {
  if ((e.expires_at != 0) != (at != 0)) at != 0 ? ++volatile_ : --volatile_;
  e.expires_at = at;
}

void table::erase_at(map::iterator it) noexcept {
  if (it->second.expires_at != 0) --volatile_;
  map_.erase(it);
}

void table::clear() noexcept {
  map_.clear();
  volatile_ = 0;
  sweep_cursor_ = 0;
}

std::size_t table::sweep(std::int64_t now, std::size_t budget) {
  if (volatile_ == 0 || map_.empty()) return 0;
  std::vector<std::string_view> expired;
  const std::size_t buckets = map_.bucket_count();
  for (std::size_t i = 0; i < budget && i < buckets; ++i) {
    const std::size_t b = sweep_cursor_++ % buckets;
    for (auto it = map_.begin(b); it != map_.end(b); ++it) {
      if (it->second.expires_at != 0 && it->second.expires_at <= now) expired.push_back(it->first);
    }
  }
  // Each view points into the node it names, which lives until it is erased.
  std::size_t removed = 0;
  for (std::string_view k : expired) {
    auto it = map_.find(k);
    if (it != map_.end()) {
      erase_at(it);
      ++removed;
    }
  }
  return removed;
}

}  // namespace troupe::kv
