#pragma once
// The convention: engines that find each other through a leader, announce
// their capabilities, and take actors placed on them by those capabilities
// (Thespian's convention of admins). The cluster layer; it runs over links
// (troupe/remote.hpp):
//
//     troupe::system sys({.engine_id = 2},
//                        troupe::with_links({.listen = "127.0.0.1:0"}),
//                        troupe::with_convention({.leader = "127.0.0.1:7000"}));
//     auto where = troupe::spawn_placed(sys, "demo.worker", nullptr,
//                                       {.requirements = {{"gpu", true}}});
//
//     # the same from the command line, the leader, then a member:
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
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "troupe/address.hpp"
#include "troupe/extension.hpp"
#include "troupe/message.hpp"
#include "troupe/result.hpp"
#include "troupe/task.hpp"

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
/// convention_options::forward_logs): the leader logs it with its origin.
struct log_line {
  std::uint32_t engine = 0;
  address actor;
  log_level level = log_level::info;
  std::string text;
};

namespace internal {
/// Ask, to this engine's convention agent: place a new actor of a
/// registered type over the convention (troupe::spawn_placed).
struct place_request {
  std::string type;
  nlohmann::json args;
  place_options options;
};
}  // namespace internal

class system;
class actor_base;

/// How an engine takes part in a convention.
struct convention_options {
  /// "host:port" of the convention's leader: this engine joins it, or
  /// leads it when that is its own links' `listen` address. Empty: the
  /// membership is kept in etcd (below).
  std::string leader{};
  /// "etcd://HOST:PORT[,HOST:PORT...]": membership kept in etcd (leases,
  /// a watch) instead of by a leader; then `leader` stays empty.
  std::string membership{};
  /// What this engine offers placement: a JSON object.
  nlohmann::json capabilities = nlohmann::json::object();
  /// "host:port" other members dial to reach this engine; empty: the links'
  /// `listen` host with the port it got.
  std::string advertise{};
  /// Where modules sent by other members are written; empty: a directory
  /// of its own under the system's temporary directory.
  std::string module_cache{};
  /// How often members tell each other their load.
  duration load_every = std::chrono::seconds(1);
  /// Introduce this engine to the convention as the system starts; false:
  /// at join_convention() (after loading modules, so that placements that
  /// come at once find their types).
  bool join_at_start = true;
  /// Lines actors log (actor_base::write_log) also go to the convention's
  /// leader, which logs them with their engine and actor.
  bool forward_logs = false;
};

/// The etcd endpoints ("host:port" each) of a membership URL
/// ("etcd://HOST:PORT[,HOST:PORT...]"), or errc::misuse naming what is
/// wrong with it. Any thread.
result<std::vector<std::string>> parse_membership_url(std::string_view url);

/// The convention layer, for troupe::system's constructor, after
/// troupe::with_links (it needs the links, and a `listen` address). The
/// system's constructor throws std::invalid_argument naming a bad option.
extension_ptr with_convention(convention_options options);

/// The engines of `sys`'s convention, this one first, as it last heard of
/// them. errc::misuse if it is in no convention. Any outside thread.
result<std::vector<member>> members(system& sys, duration timeout = std::chrono::seconds(5));
/// `who` (an actor of this engine) gets a troupe::convention_update for
/// every member that joins, leaves, is lost or changes capabilities, and
/// at once one `joined` per member already known; `on = false` stops it.
/// It ends by itself when `who` ends.
void subscribe_convention(system& sys, const address& who, bool on = true);
/// Introduces `sys` to its convention, when it was started with
/// join_at_start = false; nothing otherwise.
void join_convention(system& sys);
/// This engine's capabilities are now `capabilities` (a JSON object); the
/// convention hears of it through its leader.
result<done> update_capabilities(system& sys, nlohmann::json capabilities);
/// A new actor of the registered type `type_name`, made from `args`, on a
/// member that fits `o` (see troupe::place_options): this engine or
/// another; the type's module is sent to a member that lacks it.
/// errc::not_found naming each member's refusal if none fits; errc::misuse
/// if `sys` is in no convention. Blocks the calling (outside) thread.
result<address> spawn_placed(system& sys, std::string type_name, nlohmann::json args = nullptr,
                             place_options o = {});
/// The same from an actor's coroutine handler (`self` is the actor):
/// `auto a = co_await troupe::spawn_placed(*this, "demo.worker", args);`.
task<result<address>> spawn_placed(actor_base& self, std::string type_name,
                                   nlohmann::json args = nullptr, place_options o = {});
/// The convention agent of the engine `self` lives on; null if it is in
/// no convention. From `self`'s handlers.
address convention_agent(const actor_base& self) noexcept;

}  // namespace troupe
