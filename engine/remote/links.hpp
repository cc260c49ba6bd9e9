#pragma once
// The links layer as an extension of a system (troupe::with_links): it
// gives every shard a link_table as its router, owns the listener and
// installs the handlers of the links' control messages.

#include <cstdint>
#include <string>

#include "troupe/extension.hpp"
#include "troupe/remote.hpp"

namespace troupe::internal {

class system_impl;

class links_layer final : public extension {
 public:
  explicit links_layer(link_options o) : opts_(std::move(o)) {}
  std::string_view name() const noexcept override { return "links"; }

  /// The options it links with. A layer above may add peers in its
  /// configure() (the convention adds its leader); not after attach.
  link_options& options() noexcept { return opts_; }
  const link_options& options() const noexcept { return opts_; }
  /// The bound listener's port (0: none) and the host it listens on.
  std::uint16_t listen_port() const noexcept { return listen_port_; }
  const std::string& listen_host() const noexcept { return listen_host_; }

  /// The links layer of `sys`; null if it has none. Any thread.
  static links_layer* of(const system_impl& sys) noexcept;

 private:
  void attach(system_impl& sys) override;

  link_options opts_;
  std::uint16_t listen_port_ = 0;
  std::string listen_host_;
};

}  // namespace troupe::internal
