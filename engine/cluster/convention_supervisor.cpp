// convention_supervisor (troupe/convention_supervisor.hpp): one actor per
// placed_child kept alive somewhere in the convention.

#include "troupe/convention_supervisor.hpp"

#include <spdlog/spdlog.h>

#include <utility>

namespace troupe {

convention_supervisor::convention_supervisor(std::vector<placed_child> specs, duration retry_every)
    : specs_(std::move(specs)), children_(specs_.size()), retry_every_(retry_every) {}

void convention_supervisor::on_start() {
  for (std::size_t i = 0; i < specs_.size(); ++i) tell(self(), internal::place_child{i});
}

task<void> convention_supervisor::on(const internal::place_child& m) {
  const std::size_t i = m.index;
  if (i >= specs_.size() || !children_[i].is_null()) co_return;
  const placed_child spec = specs_[i];  // the message ends with this handler; keep a copy
  result<address> a = co_await troupe::spawn_placed(*this, spec.type, spec.args, spec.where);
  if (!a) {
    spdlog::warn("engine {}: placing child {} ('{}') failed: {}; trying again in {} ms",
                 self().engine(), i, spec.type, a.err().describe(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(retry_every_).count());
    wakeup_after(retry_every_, internal::place_child{i});
    co_return;
  }
  ++placements_;
  children_[i] = a.value();
  watch(children_[i]);
}

void convention_supervisor::on(const exit_request&) {
  stopping_ = true;
  for (address& child : children_) {
    if (!child.is_null()) tell(std::exchange(child, address{}), exit_request{});
  }
}

void convention_supervisor::on(const terminated& t) {
  if (stopping_) return;
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (children_[i] != t.who) continue;
    spdlog::info("engine {}: child {} ('{}') at {} ended ({}); placing it again", self().engine(),
                 i, specs_[i].type, t.who.to_string(), t.reason);
    children_[i] = address{};
    tell(self(), internal::place_child{i});
  }
}

placed_children convention_supervisor::on(const placed_children_query&) const {
  const std::uint64_t first = specs_.size();
  return {children_, placements_ > first ? placements_ - first : 0};
}

}  // namespace troupe
