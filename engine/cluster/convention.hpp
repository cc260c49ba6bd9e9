#pragma once
// The convention's machinery inside one engine: its agent, an actor on
// shard 0 that keeps the member table, and the messages agents exchange.
//
//   engine ──hello──▶ linked engine   (on every link-up: who it is)
//   leader ──view───▶ every member    (on every change: the whole table)
//   member ──caps───▶ leader          (update_capabilities)
//   member ──load───▶ every member    (every load_every: live actors)
//   placer ──module─▶ another agent   (a module that engine lacks)
//
// The hello travels as a control message to shard 0 of the other engine, which
// hands it to its agent; everything else goes agent to agent by address
// (the view carries each member's agent). Members link to each other: the
// engine with the higher id dials the lower.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/common.h>

#include "remote/link.hpp"
#include "troupe/address.hpp"
#include "troupe/convention.hpp"
#include "troupe/message.hpp"

namespace troupe {
void to_json(nlohmann::json& j, const log_line& m);
void from_json(const nlohmann::json& j, log_line& m);
}  // namespace troupe

namespace troupe::internal {

class system_impl;

struct agent_options {
  /// "host:port" of the leader's link listener.
  std::string leader;
  /// This engine leads: its own link address is the leader's.
  bool is_leader = false;
  /// "host:port" other members dial to reach this engine.
  std::string advertise;
  nlohmann::json capabilities = nlohmann::json::object();
  /// How often each member tells the others its load.
  duration load_every = std::chrono::seconds(1);
  /// Where modules received from other members are written before loading.
  std::string module_cache;
  /// Introduce this engine at once; false: on convention_join.
  bool join_at_start = true;
  /// Pass log_line on to the leader.
  bool forward_logs = false;
  /// Membership is kept in etcd (etcd_membership), not by a leader.
  bool in_etcd = false;
  /// How long a placement waits for the link to a member known from the
  /// view whose link is not up yet (the peer timeout) before it tries the
  /// next member that fits.
  duration link_wait = std::chrono::seconds(3);
};

/// A member as agents describe it to each other.
struct member_record {
  member info;
  address agent;
};
void to_json(nlohmann::json& j, const member_record& m);
void from_json(const nlohmann::json& j, member_record& m);

/// Member → leader (control, to the leader's shard 0).
struct conv_hello {
  member_record me;
};
/// Leader → members: the whole table, and who went since the last view.
struct conv_view {
  std::uint64_t epoch = 0;
  std::vector<member_record> members;
  struct gone_entry {
    std::uint32_t engine = 0;
    bool left = false;  ///< stopped cleanly (else lost)
    std::string why;
  };
  std::vector<gone_entry> gone;
};
/// Member → leader: its capabilities changed.
struct conv_caps {
  std::uint32_t engine = 0;
  nlohmann::json capabilities;
};
/// Member → members: its load.
struct conv_load {
  std::uint32_t engine = 0;
  std::uint64_t actors = 0;
  std::uint32_t shards = 1;
};
/// Placer → another engine's agent (an ask; the reply is `done`): load
/// this module, whose file has this SHA-256, unless it is loaded already.
struct module_offer {
  std::string name;
  std::string file_name;
  std::string sha256;
  std::string bytes;
};
void to_json(nlohmann::json& j, const conv_hello& m);
void from_json(const nlohmann::json& j, conv_hello& m);
void to_json(nlohmann::json& j, const conv_view& m);
void from_json(const nlohmann::json& j, conv_view& m);
void to_json(nlohmann::json& j, const conv_caps& m);
void from_json(const nlohmann::json& j, conv_caps& m);
void to_json(nlohmann::json& j, const conv_load& m);
void from_json(const nlohmann::json& j, conv_load& m);
/// module_offer crosses by a codec of its own (a header, then the bytes).
void register_module_offer(const std::string& name);
/// The convention's messages cross between engines by these names from now
/// on (troupe.conv.*). Idempotent; any thread.
void register_convention_messages();

// Local messages to this engine's agent.

/// Ask: the member table (std::vector<member>), this engine first.
struct members_query {};
/// `who` gets convention_update from now on (or no longer).
struct convention_subscription {
  address who;
  bool on = true;
};
/// Introduce this engine to the convention now (see join_at_start).
struct convention_join {};
/// Ask: this engine's capabilities are now these (done).
struct capabilities_update {
  nlohmann::json capabilities;
};

/// How long an asker waits for a placement: a member tried, the type's
/// module sent to it, and tried again.
inline duration placement_timeout(const place_options& o) noexcept { return o.timeout * 3; }

/// Spawns the agent on shard 0 (after the shards run) and returns it.
address start_convention_agent(system_impl& sys, agent_options o);

}  // namespace troupe::internal
