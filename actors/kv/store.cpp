#include "store.hpp"

#include <chrono>

#include "commands.hpp"

namespace troupe::kv {

namespace {
constexpr auto sweep_every = std::chrono::milliseconds(100);
/// Buckets looked at per sweep: a bounded pause, whatever the table's size.
constexpr std::size_t sweep_budget = 4096;
}  // namespace

store::~store() {
  if (service_->local_store(shard_index()) == this)
    service_->set_local_store(shard_index(), nullptr);
}

void store::on_start() { service_->set_local_store(shard_index(), this); }

shard_batch store::on(shard_batch& b) {
  run(b);
  return std::move(b);
}

void store::run(shard_batch& b) {
  run_batch(table_, b, args_, unix_ms());
  if (table_.volatile_count() > 0) arm_sweep();
}

void store::arm_sweep() {
  if (sweep_armed_) return;
  sweep_armed_ = true;
  wakeup_after(sweep_every, sweep_tick{});
}

void store::on(const sweep_tick&) {
  sweep_armed_ = false;
  table_.sweep(unix_ms(), sweep_budget);
  if (table_.volatile_count() > 0) arm_sweep();
}

}  // namespace troupe::kv
