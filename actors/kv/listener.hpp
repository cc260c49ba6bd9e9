#pragma once
// The listener actor: accepts clients and gives each a connection actor.

#include <cstdint>
#include <memory>
#include <string>

#include <troupe/net.hpp>
#include <troupe/troupe.hpp>

#include "service.hpp"

namespace troupe::kv {

/// Asks a listener to bind its port; the reply is a listen_reply.
struct open_port {};
struct listen_reply {
  std::uint16_t port = 0;  ///< the port bound (the one chosen, for port 0)
  std::string error;       ///< empty, or why the port could not be bound
};
/// Starts the accept loop (a listener sends it to itself once bound).
struct accept_clients {};

/// Listens on host:port and spawns a connection actor for each client,
/// spread over the shards in turn. A failed accept (out of descriptors,
/// say) is logged and retried after a pause; the loop ends with the engine.
///
/// Threads: its shard's. The connections are its children.
class listener : public actor<listener, open_port, accept_clients> {
 public:
  listener(std::shared_ptr<service> s, std::string host, std::uint16_t port)
      : service_(std::move(s)), host_(std::move(host)), port_(port) {}

  listen_reply on(const open_port&);
  task<void> on(const accept_clients&);

 private:
  std::shared_ptr<service> service_;
  std::string host_;
  std::uint16_t port_;
  net::socket socket_;
};

}  // namespace troupe::kv
