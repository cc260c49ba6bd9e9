#pragma once
// Size-class allocator for envelopes, coroutine frames and actors.
//
// Each thread keeps a free list per size class (no lock, no atomic on the
// hot path). A list that grows past two batches hands one batch to a global
// depot; an empty list takes a batch from the depot before carving new
// memory. Memory freed on another shard than the one that allocated it
// (a cross-shard envelope) thus flows back through the depot in batches.

#include <cstddef>

namespace troupe::internal {

/// Largest size served from the pool; larger requests go to operator new.
inline constexpr std::size_t pool_max_size = 1024;

/// Any thread. Never returns nullptr (throws std::bad_alloc).
void* pool_allocate(std::size_t size);
/// Any thread; `size` must be the size given to pool_allocate.
void pool_deallocate(void* p, std::size_t size) noexcept;

}  // namespace troupe::internal
