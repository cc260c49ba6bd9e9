#pragma once
// The admin endpoint of `troupe serve`: HTTP/1.1, served by actors on the
// engine's own sockets (127.0.0.1:7700 by default).
//
//   GET  /status          engine, shards, dead letters by reason, peers, modules (JSON)
//   GET  /metrics         the same counters in Prometheus text format
//   GET  /modules         the loaded modules
//   POST /spawn           {"type", "name"?, "shard"?, "args"?}        → {"address"}
//   POST /tell            {"to": address or name, "type": wire name, "body": JSON}
//   POST /ask             {"to", "type", "body", "timeout_ms"?}      → {"type", "reply"}
//   POST /modules/load    {"path"}
//   POST /modules/unload  {"name", "stop"?}
//   POST /stop            stops the engine as SIGTERM does
//
// Every bad request gets a 4xx with {"error": "..."}; with a token, every
// request must carry "Authorization: Bearer <token>".

#include <string>

#include "troupe/net.hpp"
#include "troupe/system.hpp"

namespace troupe {

struct admin_options {
  std::string token;  ///< empty: none asked
};

/// Serves the admin endpoint on `listener` (bound by the caller) from an
/// actor on shard 0 until the system stops. Returns the listener's address.
address start_admin(system& sys, net::socket listener, admin_options o);

}  // namespace troupe
