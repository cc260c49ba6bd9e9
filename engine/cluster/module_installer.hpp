#pragma once
// The receiving end of module shipping: a member's placer sends a module
// this engine lacks (placer.hpp), and the convention agent hands the offer
// to a module_installer of its own (convention_agent.cpp).

#include <cstdint>
#include <string>

#include "cluster/convention.hpp"
#include "troupe/actor.hpp"

namespace troupe::internal {

class system_impl;

/// Installs a module another member sent: checks its hash, writes it to
/// the module cache and loads it, off the shard (a large module must not
/// hold up the links' heartbeats), then answers the sender.
class module_installer : public actor<module_installer, module_offer> {
 public:
  explicit module_installer(std::string cache) : cache_(std::move(cache)) {}

  task<result<done>> on(const module_offer& m);

 private:
  static result<done> install(system_impl& sys, const module_offer& m, const std::string& cache,
                              std::uint32_t from, std::uint32_t here);

  std::string cache_;
};

}  // namespace troupe::internal
