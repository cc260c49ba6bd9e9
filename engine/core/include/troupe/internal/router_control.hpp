#pragma once
// Control messages for routers that spread work over other actors, on this
// engine or others (troupe/convention_pool.hpp): a load sample of a
// worker's mailbox, and the end of an ask given to a worker that was lost.
// Both are answered by a shard, from its loop, without any actor.

#include <cstdint>
#include <string>

#include "troupe/address.hpp"
#include "troupe/result.hpp"

namespace troupe::internal {

/// Control message, addressed to the actor in question: its shard (on this
/// engine or another, across the link like a watch) answers the sender
/// with a mailbox_depth. Trivially copyable: it crosses as its bytes.
struct mailbox_depth_query {
  std::uint64_t seq = 0;  ///< returned in the answer
};

/// The answer: a plain message to the asker. `alive` is 0 when no actor
/// of that incarnation lives there (ended, or not installed yet).
struct mailbox_depth {
  address who;
  std::uint64_t seq = 0;
  std::uint32_t queued = 0;  ///< messages in its mailbox, not counting the one it runs
  std::uint32_t alive = 0;   ///< 1 or 0 (no bool: the wire form is the bytes)
};

/// Control message, addressed to an asker (an actor; its shard holds the
/// ask): the ask `request` ends with this error if it still waits, and
/// nothing happens if it has ended (no late reply). A router sends it for
/// the asks it gave a worker whose engine was lost.
struct abandon_ask {
  std::uint64_t request = 0;
  errc code = errc::peer_lost;
  std::string text;
};

}  // namespace troupe::internal
