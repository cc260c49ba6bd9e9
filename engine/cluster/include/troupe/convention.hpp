#pragma once
// The convention: engines that find each other through a leader, announce
// their capabilities, and take actors placed on them by those capabilities
// (Thespian's convention of admins).
//
//     # the leader, then a member:
//     troupe serve --engine-id 1 --listen 127.0.0.1:7000 --convention 127.0.0.1:7000
//     troupe serve --engine-id 2 --listen 127.0.0.1:0 --convention 127.0.0.1:7000
//                  --capabilities '{"gpu": true, "zone": "ams"}'
//
// An engine whose link address is the convention's leads it; the others
// join it, announcing their engine id, link address and capabilities. The
// leader tells every member of joins, leaves, losses and capability
// changes; members link to each other directly, so they keep routing when
// the leader is gone, and register again when it returns.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "troupe/address.hpp"
#include "troupe/message.hpp"

namespace troupe {

/// One engine of the convention, as this engine last heard of it.
struct member {
  std::uint32_t engine = 0;
  std::string link_address;  ///< "host:port" its links listen on
  nlohmann::json capabilities = nlohmann::json::object();
  bool leader = false;
  /// Its live actors and shards, as it last reported them (load-aware
  /// placement divides the one by the other).
  std::uint64_t actors = 0;
  std::uint32_t shards = 1;
};

/// Sent to the actors subscribed to the convention (system::
/// subscribe_convention, Thespian's ActorSystemConventionUpdate): one
/// engine joined, left (stopped cleanly), was lost (its link died), or
/// changed its capabilities. A new subscriber is first told of every
/// member it has not seen yet, as `joined`.
struct convention_update {
  enum class change : std::uint8_t { joined, left, lost, capabilities };
  change what = change::joined;
  member who;
  std::string why;  ///< for left and lost: the reason the link gave
};
const char* to_string(convention_update::change c) noexcept;

/// Where an actor placed over the convention may go.
///
/// `requirements` is a predicate over a member's capabilities
/// (troupe::requirements: {"gpu": true, "cores": {"$gte": 8}}; null: any
/// member). An actor type may also carry its own check (a static
/// `capability_check(capabilities, args)` in the class registered with
/// register_actor, Thespian's actorSystemCapabilityCheck); both must pass.
struct place_options {
  nlohmann::json requirements = nullptr;
  /// Among the members that fit: this engine if it fits (true), or the
  /// least loaded one, counting actors placed since it last reported.
  bool prefer_local = true;
  spawn_options spawn{};
  duration timeout = std::chrono::seconds(10);
};

/// A line an actor logged, on its way to the convention's leader (with
/// system_options::forward_logs): the leader logs it with its origin.
struct log_line {
  std::uint32_t engine = 0;
  address actor;
  log_level level = log_level::info;
  std::string text;
};

namespace internal {
/// Ask, to this engine's convention agent: place a new actor of a
/// registered type over the convention (system::spawn_placed).
struct place_request {
  std::string type;
  nlohmann::json args;
  place_options options;
};
}  // namespace internal

}  // namespace troupe
