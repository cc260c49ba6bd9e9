#pragma once
// A key-value server built from actors that speaks RESP2, the Redis
// protocol: redis-cli, redis-benchmark and Redis client libraries talk to it.
//
//     troupe::system sys;
//     troupe::kv::server kv = troupe::kv::start(sys, {.port = 0});
//     std::cout << "port " << kv.port << "\n";
//
// The actors (store.hpp, connection.hpp, listener.hpp):
//
//     client ──▶ listener ──spawn──▶ connection (one per client, spread over the shards)
//                                       │  run directly: the store on its own shard
//                                       └─ ask (batch) ─▶ store (one per shard, owns its keys)

#include <cstdint>
#include <string>
#include <vector>

#include <troupe/troupe.hpp>

namespace troupe::kv {

struct options {
  /// The IPv4 address to listen on.
  std::string host = "127.0.0.1";
  /// The TCP port; 0: any free port (see server::port).
  std::uint16_t port = 6379;
};

/// A running server: its actors live in the system that started it and end
/// with it.
struct server {
  address listener;
  std::uint16_t port = 0;       ///< the port bound
  std::vector<address> stores;  ///< one per shard, index = shard
};

/// Starts a server in `sys`: one store actor per shard, and a listener that
/// is bound when this returns. From an outside thread (it waits for the
/// listener's answer). Throws std::runtime_error, naming the cause, when the
/// port cannot be bound.
server start(troupe::system& sys, const options& o);

}  // namespace troupe::kv
