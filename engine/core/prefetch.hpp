#pragma once
// Cache hints for memory another core wrote last.

namespace troupe::internal {

/// Fetches the line at `p` in exclusive state, before this core writes it,
/// so that the write does not stall the store buffer while ownership moves.
/// x86 PREFETCHW; a no-op on cores without it.
inline void prefetch_for_write(const void* p) noexcept {
#if defined(__x86_64__)
  asm volatile("prefetchw (%0)" : : "r"(p));
#else
  __builtin_prefetch(p, 1);
#endif
}

}  // namespace troupe::internal
