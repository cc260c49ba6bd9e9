#pragma once
// One placement of a new actor on a member of the convention (the
// convention agent spawns one per place_request, see convention_agent.cpp):
// the members that fit, tried in turn, with the type's module sent to one
// that lacks it (module_installer.hpp takes it there).

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/convention.hpp"
#include "cluster/convention_pool_support.hpp"
#include "troupe/actor.hpp"
#include "troupe/convention.hpp"

namespace troupe::internal {

/// Where a placement may go, best first.
struct candidate {
  std::uint32_t engine;
  address agent;  ///< null for this engine
  /// A member known from the view whose link was not up yet: the placer
  /// waits for the link until then. Default: linked.
  time_point link_due{};
};

/// Why a member known from the view was not placed on.
std::string no_link(std::uint32_t engine, duration waited);

/// One placement: tries the candidates in turn, waiting for the link to
/// one that has none yet (bounded) and sending the type's module to one
/// that lacks it, and answers the asker. One per request, so that a slow
/// member, a link coming up or a module in transit holds up nothing else.
class placer : public actor<placer, place_request, place_among_request> {
 public:
  placer(std::vector<candidate> c, std::uint32_t home, duration link_wait)
      : candidates_(std::move(c)), home_(home), link_wait_(link_wait) {}

  task<result<address>> on(const place_request& r) { return place(r); }
  task<result<address>> on(const place_among_request& r) { return place(r.request); }

 private:
  // A copy: the message ends with the handler.
  task<result<address>> place(place_request req);

  /// On `c`, once its link is up; with the type's module sent first if
  /// that engine lacks the type.
  task<result<address>> place_on(candidate c);

  /// True once a link to `engine` is up; false if none is by `due` (nor
  /// by the place timeout). The agent has asked the links for it. Looked
  /// at every few milliseconds: no message reaches this actor while it
  /// waits, and the links are on this shard.
  task<bool> link_up(std::uint32_t engine, time_point due);

  task<result<done>> send_module(candidate c, std::string type, duration timeout);

  std::vector<candidate> candidates_;
  std::uint32_t home_;
  duration link_wait_;
  place_request req_;
};

}  // namespace troupe::internal
