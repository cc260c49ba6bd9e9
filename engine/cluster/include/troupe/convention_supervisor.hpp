#pragma once
// Supervision across the convention: actors placed on members that fit
// their requirements, placed again on a surviving member that fits when
// theirs is lost (or when they end).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "troupe/actor.hpp"
#include "troupe/convention.hpp"

namespace troupe {

/// One child of a convention_supervisor: an actor of a registered type,
/// made from `args`, on a member that fits `where`.
struct placed_child {
  std::string type;
  nlohmann::json args = nullptr;
  place_options where{};
};

/// Ask a convention_supervisor for this to see its children.
struct placed_children_query {};
struct placed_children {
  /// By spec, in order; null while that child is being placed.
  std::vector<address> children;
  /// Placements after the first, over all children.
  std::uint64_t replacements = 0;
};

namespace internal {
struct place_child {
  std::size_t index;
};
}  // namespace internal

/// An actor that keeps one actor per placed_child alive somewhere in the
/// convention (Thespian's convention-wide restarts). Each child is placed
/// with spawn_placed and watched; when it ends — its engine lost, or it
/// stopped or failed past its own engine's restarts — it is placed again,
/// on a member that fits now. A placement that fails (nothing fits yet) is
/// retried every `retry_every`, and logged.
///
/// Threads: like any actor. Its children are supervised in place by their
/// own engine's root guardian (a handler that throws restarts there); this
/// actor acts when one is gone. Stopping it (an exit request, or its
/// engine's shutdown) sends each child an exit request where it lives.
class convention_supervisor : public actor<convention_supervisor, terminated, placed_children_query,
                                           internal::place_child, exit_request> {
 public:
  explicit convention_supervisor(std::vector<placed_child> specs,
                                 duration retry_every = std::chrono::milliseconds(500));

  void on_start();
  task<void> on(const internal::place_child& m);
  void on(const terminated& t);
  placed_children on(const placed_children_query&) const;
  void on(const exit_request&);

 private:
  std::vector<placed_child> specs_;
  std::vector<address> children_;  ///< null while being placed
  std::uint64_t placements_ = 0;
  duration retry_every_;
  bool stopping_ = false;
};

}  // namespace troupe
