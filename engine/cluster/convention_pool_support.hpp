#pragma once
// What the rest of the engine does for convention pools
// (troupe/convention_pool.hpp): the convention agent places a worker on
// the member a pool chose, and every engine of a convention knows the
// pool's wire messages (a worker's shard answers its load samples).

#include <cstdint>
#include <vector>

#include "troupe/convention.hpp"

namespace troupe::internal {

/// Ask, to this engine's convention agent: `request`, but only on one of
/// `engines`, tried in this order (the first that fits and takes it), with
/// the agent's checks, load accounting and module shipping. The reply is
/// the new actor's address, or an error naming each listed engine's
/// refusal. Local only: it never crosses the wire.
struct place_among_request {
  place_request request;
  std::vector<std::uint32_t> engines;
};

/// Registers the wire names of the mailbox depth query and answer and of
/// the pools' stats. Called as an engine starts its convention agent;
/// again is harmless.
void register_convention_pool_messages();

}  // namespace troupe::internal
