#pragma once
// Links to other engines: the remote layer. An engine with links accepts
// peer engines on `listen` and dials `peers`; addresses of actors on those
// engines then work like local ones (tell, ask, watch, spawn_on), with the
// order kept per sender and receiver while a link lives.
//
//     troupe::system a({.engine_id = 1}, troupe::with_links({.listen = "127.0.0.1:7001"}));
//     troupe::system b({.engine_id = 2}, troupe::with_links({.peers = {"127.0.0.1:7001"}}));
//     auto echo = b.spawn_on(1, "demo.echo");  // an actor of engine 1, made from engine 2
//
// Without links, a message to another engine's address is a dead letter
// (no route) and an ask to one fails with errc::peer_lost.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "troupe/extension.hpp"
#include "troupe/message.hpp"

namespace troupe {

class system;

/// How an engine links to its peers.
struct link_options {
  /// "host:port" to accept peer engines on (port 0: any free port, see
  /// listen_port()); empty: none.
  std::string listen{};
  /// "host:port" of peer engines to connect to, and reconnect to.
  std::vector<std::string> peers{};
  /// Engines link only within one convention (of this name).
  std::string convention = "troupe";
  /// A shared secret: a peer must prove it knows it (HMAC-SHA256
  /// challenge-response). Empty: no proof asked.
  std::string secret{};
  /// A link sends a heartbeat when it has been quiet this long, and is
  /// declared dead after `peer_timeout` without hearing anything.
  duration heartbeat = std::chrono::milliseconds(500);
  duration peer_timeout = std::chrono::seconds(3);
  /// The largest frame a link accepts, in bytes.
  std::size_t max_frame = 16u << 20;
};

/// The links layer, for troupe::system's constructor. The system's
/// constructor throws std::invalid_argument for a peer or listen address
/// that is not host:port or for inline mode (links need shard threads), and
/// std::runtime_error when it cannot listen.
extension_ptr with_links(link_options options = {});

/// The port peer engines connect to: the one bound for `listen` (the
/// chosen one for port 0); 0 without links or without a listener. Any
/// thread.
std::uint16_t listen_port(const system& sys) noexcept;

/// The options `sys` links with; null if it has no links. Any thread; the
/// object lives as long as `sys`.
const link_options* links_of(const system& sys) noexcept;

}  // namespace troupe
